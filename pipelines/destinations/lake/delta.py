"""dlt's filesystem destination with solarsync's Delta jobs: merges that match the DuckDB warehouse.

dlt 1.31 merges Delta tables with ``upsert`` (one source row per key, else an error or a
duplicate), ``insert-only`` and ``cdc`` only. solarsync's sources rely on what the SQL
destinations do: ``delete-insert`` (rows deduplicated by primary key with ``dedup_sort``, a
``merge_key`` or ``destination_scope`` replacing a whole group, ``hard_delete`` markers) and
``scd2`` with ``source_filter`` / ``destination_scope`` (HEAT's schedule history). This module
keeps everything else of dlt's filesystem destination (layout, state and schema files, replace,
append) and loads each Delta table with one job that:

- reads the package's Parquet files for the table with DuckDB (memory-capped, spills),
- fills a day partition column (``x-lake-day-of`` names its timestamp column, in UTC),
- for ``delete-insert``: deduplicates as dlt's SQL does (``ROW_NUMBER() OVER (PARTITION BY
  primary key ORDER BY dedup_sort DESC)``, later rows first on ties), and turns deletions
  (keys of hard-deleted rows, rows of a replaced ``merge_key`` / ``destination_scope`` group)
  into delete actions of ONE Delta ``MERGE`` on the primary key,
- for ``scd2``: computes, from the table's active rows, the versions to retire (``valid_to`` =
  the package's boundary timestamp) and the new versions (``valid_from`` = boundary), exactly as
  dlt's ``gen_scd2_sql`` does, and applies both in ONE ``MERGE`` on (row hash, ``valid_from``),
- commits with a Delta app transaction ``(solarsync:<table>, <load id>)``: a job re-run after a
  kill that came between Delta's commit and dlt marking the job done is skipped, so an append
  is never applied twice.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Iterator, Sequence
from datetime import datetime
from typing import Any

import pyarrow as pa
from dlt.common.destination import DestinationCapabilitiesContext
from dlt.common.destination.client import HasFollowupJobs, RunnableLoadJob
from dlt.common.destination.exceptions import DestinationUndefinedEntity
from dlt.common.schema.utils import (
    get_active_record_timestamp,
    get_columns_names_with_prop,
    get_dedup_sort_tuple,
    get_first_column_name_with_prop,
    get_validity_column_names,
    is_nested_table,
)
from dlt.common.storages.load_package import load_package_state as current_load_package
from dlt.common.time import ensure_pendulum_datetime
from dlt.destinations.impl.filesystem.factory import filesystem as dlt_filesystem
from dlt.destinations.impl.filesystem.filesystem import (
    DeltaLoadFilesystemJob,
    FilesystemClient,
    ReferenceFollowupJob,
)
from dlt.destinations.impl.filesystem.sql_client import FilesystemSqlClient
from dlt.destinations.job_impl import FinalizedLoadJobWithFollowupJobs

from pipelines.destinations.lake.settings import settings as lake_settings
from pipelines.destinations.lake.tableviews import table_view_sql

logger = logging.getLogger("solarsync")

#: column hint naming the timestamp column a day partition column is derived from
DAY_OF_HINT = "x-lake-day-of"
#: merge strategies on Delta: ours first (the default, as on DuckDB), then dlt's own
LAKE_MERGE_STRATEGIES = ["delete-insert", "scd2", "upsert", "insert-only", "cdc"]
APP_ID_PREFIX = "solarsync:"
_ACTION = "_solarsync_action"
DELTA_LOCK = threading.RLock()


def q(name: str) -> str:
    """A DuckDB identifier."""
    return '"' + name.replace('"', '""') + '"'


def lit(value: Any) -> str:
    """A DuckDB literal for a timestamp (or NULL)."""
    if value is None:
        return "NULL"
    return f"TIMESTAMPTZ '{ensure_pendulum_datetime(value).in_tz('UTC').isoformat()}'"


# --------------------------------------------------------------------------- the destination
class filesystem(dlt_filesystem):  # dlt names a destination by its class name
    """dlt's filesystem destination whose Delta tables merge like the SQL destinations
    (``delete-insert``, ``scd2``). Configured under ``[destination.filesystem]`` as usual."""

    @property
    def client_class(self) -> type[FilesystemClient]:
        return LakeClient

    def _raw_capabilities(self) -> DestinationCapabilitiesContext:
        caps = super()._raw_capabilities()
        caps.supported_merge_strategies = list(LAKE_MERGE_STRATEGIES)
        return caps


class LakeClient(FilesystemClient):
    @property
    def sql_client_class(self) -> type[Any]:
        return LakeSqlClient

    @property
    def sql_client(self) -> Any:
        if not self._sql_client:
            self._sql_client = LakeSqlClient(self, self.dataset_name)
        return self._sql_client

    @sql_client.setter
    def sql_client(self, client: Any) -> None:
        self._sql_client = client

    @staticmethod
    def get_reference_followup_job_class(table: Any) -> type[ReferenceFollowupJob] | None:
        if table.get("table_format") == "delta":
            import dlt.common.libs.deltalake  # noqa: F401  (raises early if deltalake is missing)

            return LakeDeltaJob
        return FilesystemClient.get_reference_followup_job_class(table)

    def get_load_job_class(self, table: Any, file_path: str) -> type[Any]:
        job_class = super().get_load_job_class(table, file_path)
        if job_class is FinalizedLoadJobWithFollowupJobs:
            # the same, but run by the loader's pool: dlt's loader waits for a pool job to
            # finish, up to 1 s per round, and a job that never runs makes every load wait it
            return StagedFile
        return job_class

    def verify_schema(self, only_tables: Any = None, new_jobs: Any = None) -> list[Any]:
        """dlt's checks, with the placeholders this job expands: ``{table}`` and
        ``{staging_table}`` in ``destination_scope`` (evaluated by DuckDB, not by Delta)."""
        from dlt.destinations.utils import (
            verify_schema_merge_disposition,
            verify_schema_replace_disposition,
        )

        self._tables_with_jobs = {job.table_name for job in new_jobs or ()}
        loaded = super(FilesystemClient, self).verify_schema(only_tables, new_jobs)
        problems = verify_schema_merge_disposition(
            self.schema,
            loaded,
            self.capabilities,
            warnings=True,
            source_filter_placeholders=(),
            destination_scope_placeholders=("table", "staging_table"),
        )
        problems += verify_schema_replace_disposition(
            self.schema, loaded, self.capabilities, self.config.replace_strategy, warnings=True
        )
        for table in loaded:
            if is_nested_table(table) and table.get("write_disposition") == "merge":
                root = table.get("parent")
                problems.append(
                    ValueError(
                        f"table {table['name']} is a nested table of {root}: solarsync's Delta "
                        "merges load root tables only; keep nested data in JSON columns "
                        "(max_table_nesting=0 or a json column hint)"
                    )
                )
        problems = [p for p in problems if not type(p).__name__ == "WriteDispositionNotSupported"]
        for problem in problems:
            logger.error("%s", problem)
        if problems:
            raise problems[0]
        return loaded


class StagedFile(HasFollowupJobs, RunnableLoadJob):
    """A Parquet file of a Delta table: nothing to do, its table's Delta job follows."""

    def run(self) -> None:
        return None


class LakeSqlClient(FilesystemSqlClient):
    """dlt's SQL over the lake (``pipeline.sql_client()``, ``pipeline.dataset()``) without
    DuckDB's delta extension: a Delta table is read as its current Parquet files (local
    buckets) or through deltalake (remote buckets; copied into the in-memory DuckDB)."""

    def open_connection(self) -> Any:
        if self.remote_client.config.protocol == "file":
            return super().open_connection()
        # Delta tables of a remote bucket are read through deltalake: no DuckDB secret (whose
        # setup needs httpfs, which cannot be downloaded here)
        return super(FilesystemSqlClient, self).open_connection()

    def create_view_select(self, table_schema: Any, schema: Any = None) -> Any:
        schema = schema or self.schema
        name = table_schema["name"]
        if table_schema.get("table_format") != "delta" or name in schema.dlt_table_names():
            return super().create_view_select(table_schema, schema)
        client = self.remote_client
        delta = client.load_open_table("delta", name)  # DestinationUndefinedEntity if absent
        location = client.get_open_table_location("delta", name, schema_name=schema.name)
        if client.config.protocol == "file":
            return location, table_view_sql(delta, table_schema.get("columns") or {})
        alias = f"_solarsync_{schema.name}_{name}"
        self._conn.register(alias + "_arrow", delta.to_pyarrow_table())
        self._conn.execute(
            f"CREATE OR REPLACE TEMP TABLE {q(alias)} AS SELECT * FROM {q(alias + '_arrow')}"
        )
        self._conn.unregister(alias + "_arrow")
        return location, f"SELECT * FROM {q(alias)}"


# --------------------------------------------------------------------------- the job
class LakeDeltaJob(DeltaLoadFilesystemJob):
    """Loads the package's files of one table into its Delta table (see the module docstring)."""

    def run(self) -> None:
        # one Delta job at a time per process: deltalake's runtime, pulling a Python-backed
        # Arrow stream while another thread blocks in a deltalake call, deadlocked (seen with
        # 3 Delta jobs of one load in parallel on S3)
        with DELTA_LOCK:
            self._run()

    def _run(self) -> None:
        from dlt.common.libs.deltalake import deltalake_storage_options

        table = self._load_table
        config = self._job_client.config
        storage_options = deltalake_storage_options(
            config.credentials, config.deltalake_storage_options
        )
        try:
            delta = self._job_client.load_open_table("delta", self.load_table_name)
        except DestinationUndefinedEntity:
            delta = None
        app_id = APP_ID_PREFIX + self.load_table_name
        version = load_version(self._load_id)
        if delta is not None and delta.transaction_version(app_id) == version:
            logger.info(
                "lake %s: load %s was committed before (a rerun after a kill): skipped",
                self.load_table_name,
                self._load_id,
            )
            return
        from deltalake import CommitProperties, Transaction

        commit = CommitProperties(app_transactions=[Transaction(app_id, version)])
        location = self._job_client.get_open_table_location("delta", self.load_table_name)
        disposition = table["write_disposition"]
        strategy = table.get("x-merge-strategy") if disposition == "merge" else None
        with staged_files(self.file_paths, table) as staged:
            if strategy == "delete-insert":
                delete_insert(staged, delta, location, table, storage_options, commit)
            elif strategy == "scd2":
                scd2(staged, delta, location, table, storage_options, commit, boundary(table))
            elif strategy is not None and delta is not None:
                dlt_merge(staged, delta, table, commit, config.deltalake_streamed_exec)
            else:  # append, replace, a first merge of upsert/insert-only/cdc
                write(
                    staged.reader(),
                    delta,
                    location,
                    table,
                    storage_options,
                    commit,
                    mode="overwrite" if disposition == "replace" else "append",
                )


def load_version(load_id: str) -> int:
    """A Delta app-transaction version for a dlt load id (``1718000000.123456``)."""
    whole, _, fraction = load_id.partition(".")
    return int(whole) * 1_000_000 + int((fraction + "000000")[:6])


def boundary(table: dict[str, Any]) -> datetime:
    """The scd2 validity boundary: ``x-boundary-timestamp`` or the package's creation time."""
    value = table.get("x-boundary-timestamp") or current_load_package()["state"]["created_at"]
    return ensure_pendulum_datetime(value).in_tz("UTC")


# --------------------------------------------------------------------------- staged data
class Staged:
    """The package's rows of one table in an in-memory DuckDB, as view ``staging``."""

    def __init__(self, con: Any, table: dict[str, Any], columns: list[str]) -> None:
        self.con = con
        self.table = table
        #: every column of the dlt table schema, in its order (absent from the files: NULL)
        self.columns = columns

    def reader(self, sql: str | None = None) -> pa.RecordBatchReader:
        sql = sql or f"SELECT {cols(self.columns)} FROM staging"
        return self.con.sql(sql).to_arrow_reader(64 * 1024)

    def register_target(self, delta: Any, active_only: str | None = None) -> None:
        """The Delta table's rows as view ``target`` (through deltalake: works on any bucket)."""
        import pyarrow.dataset as ds

        dataset = delta.to_pyarrow_dataset()
        expression = None
        if active_only:
            expression = ds.field(active_only).is_null()
        self.con.register("target_rows", dataset.scanner(filter=expression).to_reader())
        self.con.execute("CREATE OR REPLACE TEMP TABLE target AS SELECT * FROM target_rows")
        self.con.unregister("target_rows")

    def empty_target(self) -> None:
        self.con.execute(
            f"CREATE OR REPLACE TEMP TABLE target AS SELECT {cols(self.columns)} FROM staging "
            "LIMIT 0"
        )


@contextlib.contextmanager
def staged_files(file_paths: Sequence[str], table: dict[str, Any]) -> Iterator[Staged]:
    import duckdb

    con = duckdb.connect(config={"memory_limit": lake_settings().job_memory, "threads": 2})
    try:
        files = ", ".join("'" + str(p).replace("'", "''") + "'" for p in file_paths)
        con.execute(
            "CREATE VIEW raw AS SELECT * FROM read_parquet(["
            + files
            + "], union_by_name = true, filename = '_solarsync_file', file_row_number = true)"
        )
        present = {r[0] for r in con.execute("DESCRIBE raw").fetchall()}
        columns = list(table["columns"].keys())
        select = []
        for name, column in table["columns"].items():
            origin = column.get(DAY_OF_HINT)
            if origin:  # the day partition: the UTC date of its timestamp column
                select.append(f"{day_of(origin)} AS {q(name)}")
            elif name in present:
                select.append(q(name))
            else:
                select.append(f"NULL AS {q(name)}")
        # file order, then row order: on a dedup tie the later row wins
        order = " ".join(
            f"WHEN '{str(p).replace(chr(39), chr(39) * 2)}' THEN {i}"
            for i, p in enumerate(file_paths)
        )
        select.append(f"CASE _solarsync_file {order} END AS _solarsync_file_no")
        select.append("file_row_number AS _solarsync_row_no")
        con.execute(f"CREATE VIEW staging AS SELECT {', '.join(select)} FROM raw")
        yield Staged(con, table, columns)
    finally:
        con.close()


def day_of(column: str) -> str:
    """The UTC date of a timestamp column (DuckDB without ICU: TIMESTAMPTZ -> TIMESTAMP is UTC)."""
    return f"CAST(CAST({q(column)} AS TIMESTAMP) AS DATE)"


def cols(names: Sequence[str], prefix: str = "") -> str:
    return ", ".join(prefix + q(n) for n in names)


# --------------------------------------------------------------------------- writing
def partition_by(table: dict[str, Any]) -> list[str]:
    return get_columns_names_with_prop(table, "partition")


def arrow_schema(table: dict[str, Any], delta: Any, staged_schema: pa.Schema) -> pa.Schema:
    """The schema rows are written with: the Delta table's columns (existing types win), then
    new ones as the staged files have them."""
    from dlt.common.libs.deltalake import ensure_delta_compatible_arrow_schema

    fields: dict[str, pa.Field] = {}
    if delta is not None:
        for field in pa.schema(delta.schema().to_arrow()):
            fields[field.name] = field
    for field in ensure_delta_compatible_arrow_schema(staged_schema):
        if field.name not in fields and not field.name.startswith("_solarsync_"):
            fields[field.name] = field.with_nullable(True)
    return pa.schema(list(fields.values()))


def conform(reader: pa.RecordBatchReader, schema: pa.Schema) -> pa.RecordBatchReader:
    """Batches cast to ``schema`` (columns missing from a batch: NULL)."""
    reader_schema = reader.schema

    def batches() -> Iterator[pa.RecordBatch]:
        for batch in reader:
            arrays = []
            for field in schema:
                if field.name in reader_schema.names:
                    column = batch.column(reader_schema.get_field_index(field.name))
                    arrays.append(_cast(column, field.type))
                else:
                    arrays.append(pa.nulls(batch.num_rows, field.type))
            yield pa.RecordBatch.from_arrays(arrays, schema=schema)

    return pa.RecordBatchReader.from_batches(schema, batches())


def _cast(column: pa.Array, to: pa.DataType) -> pa.Array:
    if column.type == to:
        return column
    if pa.types.is_string(to) or pa.types.is_large_string(to):
        if not (pa.types.is_string(column.type) or pa.types.is_large_string(column.type)):
            # DuckDB's JSON columns arrive as an extension type over strings
            storage = getattr(column, "storage", None)
            if storage is not None:
                column = storage
    return column.cast(to)


def write(
    reader: pa.RecordBatchReader,
    delta: Any,
    location: str,
    table: dict[str, Any],
    storage_options: dict[str, str],
    commit: Any,
    *,
    mode: str,
) -> None:
    from deltalake import write_deltalake

    schema = arrow_schema(table, delta if mode == "append" else None, reader.schema)
    write_deltalake(
        delta if delta is not None else location,
        conform(reader, schema),
        partition_by=partition_by(table) or None,
        mode=mode,
        schema_mode="merge" if mode == "append" else "overwrite",
        storage_options=None if delta is not None else storage_options,
        commit_properties=commit,
    )


def _evolve(delta: Any, schema: pa.Schema) -> None:
    from dlt.common.libs.deltalake import evolve_delta_table_schema

    evolve_delta_table_schema(delta, schema)


def dlt_merge(
    staged: Staged, delta: Any, table: dict[str, Any], commit: Any, streamed: bool
) -> None:
    """dlt's own ``upsert`` / ``insert-only`` / ``cdc`` merge, with our day column and commit."""
    from dlt.common.libs import deltalake as dlt_delta

    reader = staged.reader()
    schema = arrow_schema(table, delta, reader.schema)
    _evolve(delta, schema)
    original = delta.merge

    def merge(*args: Any, **kwargs: Any) -> Any:
        return original(*args, commit_properties=commit, **kwargs)

    delta.merge = merge
    try:
        dlt_delta.merge_delta_table(
            delta, conform(reader, schema), table, table["name"], streamed_exec=streamed
        )
    finally:
        delta.merge = original


# --------------------------------------------------------------------------- delete-insert
def _hard_delete(table: dict[str, Any]) -> tuple[str | None, str]:
    """(column, condition selecting rows that are NOT deletions) like dlt's SQL merge."""
    column = get_first_column_name_with_prop(table, "hard_delete")
    if column is None:
        return None, "TRUE"
    if table["columns"][column].get("data_type") == "bool":
        return column, f"({q(column)} IS NULL OR {q(column)} = FALSE)"
    return column, f"{q(column)} IS NULL"


def _conditions(table: dict[str, Any]) -> tuple[str, str | None]:
    source_filter = table.get("x-merge-source-filter")
    scope = table.get("x-merge-destination-scope")
    return (
        f"({source_filter.format()})" if source_filter else "TRUE",
        f"({scope.format(table='target', staging_table='staging')})" if scope else None,
    )


def delete_insert(
    staged: Staged,
    delta: Any,
    location: str,
    table: dict[str, Any],
    storage_options: dict[str, str],
    commit: Any,
) -> None:
    """dlt's ``delete-insert`` as one Delta merge (see the module docstring)."""
    keys = get_columns_names_with_prop(table, "primary_key")
    merge_keys = get_columns_names_with_prop(table, "merge_key")
    source_filter, scope = _conditions(table)
    _, not_deleted = _hard_delete(table)
    columns = staged.columns
    if not keys:
        if merge_keys or scope:
            raise ValueError(
                f"table {table['name']}: a merge_key or destination_scope without a primary key "
                "is not supported on the Delta lake; declare the table's primary key"
            )
        # without keys dlt's SQL merge appends: so does the lake
        write(staged.reader(), delta, location, table, storage_options, commit, mode="append")
        return
    sort = get_dedup_sort_tuple(table)
    order = f"{q(sort[0])} {sort[1].upper()}, " if sort else ""
    con = staged.con
    con.execute(f"""
        CREATE TEMP TABLE inserts AS
        SELECT * EXCLUDE (_rn) FROM (
            SELECT *, ROW_NUMBER() OVER (
                PARTITION BY {cols(keys)}
                ORDER BY {order}_solarsync_file_no DESC, _solarsync_row_no DESC) AS _rn
            FROM staging
        ) WHERE _rn = 1 AND {source_filter} AND {not_deleted}
    """)
    key_match = " AND ".join(f"i.{q(k)} IS NOT DISTINCT FROM d.{q(k)}" for k in keys)
    # keys whose rows go: every key the (filtered) staged rows name, but not inserted anew
    deletes = f"SELECT DISTINCT {cols(keys)} FROM staging WHERE {source_filter}"
    if delta is not None and (merge_keys or scope):
        # a whole group is replaced: the target rows of each staged merge_key / in scope
        staged.register_target(delta)
        if scope:
            group = scope
        else:
            group = " AND ".join(
                f"{q(k)} IN (SELECT {q(k)} FROM staging WHERE {source_filter})" for k in merge_keys
            )
        deletes += f" UNION SELECT DISTINCT {cols(keys)} FROM target WHERE {group}"
    con.execute(f"""
        CREATE TEMP TABLE deletes AS
        SELECT * FROM ({deletes}) AS d
        WHERE NOT EXISTS (SELECT 1 FROM inserts AS i WHERE {key_match})
    """)
    days = [c for c in partition_by(table) if table["columns"][c].get(DAY_OF_HINT) in keys]
    delete_cols = keys + [c for c in days if c not in keys]
    day_select = {c: f"{day_of(table['columns'][c][DAY_OF_HINT])} AS {q(c)}" for c in days}
    rows = (
        f"SELECT {cols(columns)}, 'u' AS {_ACTION} FROM inserts UNION ALL BY NAME "
        f"SELECT {', '.join(day_select.get(c, q(c)) for c in delete_cols)}, 'd' AS {_ACTION} "
        "FROM deletes"
    )
    if delta is None:  # a new table: nothing to delete
        write(
            staged.reader(f"SELECT {cols(columns)} FROM inserts"),
            None,
            location,
            table,
            storage_options,
            commit,
            mode="append",
        )
        return
    (count,) = con.execute(
        "SELECT (SELECT count(*) FROM inserts) + (SELECT count(*) FROM deletes)"
    ).fetchall()[0]
    if not count:
        _touch(delta, commit)
        return
    reader = staged.reader(rows)
    schema = arrow_schema(table, delta, reader.schema)
    _evolve(delta, schema)
    source_schema = schema.append(pa.field(_ACTION, pa.string()))
    # the partition columns first: Delta prunes the files the merge reads by them
    predicate = " AND ".join(
        [f"target.{q(c)} = source.{q(c)}" for c in days]
        + [f"target.{q(k)} = source.{q(k)}" for k in keys]
    )
    updates = {q(f.name): f"source.{q(f.name)}" for f in schema}
    (
        delta.merge(
            conform(reader, source_schema),
            predicate=predicate,
            source_alias="source",
            target_alias="target",
            commit_properties=commit,
        )
        .when_matched_delete(predicate=f"source.{_ACTION} = 'd'")
        .when_matched_update(updates=updates)
        .when_not_matched_insert(updates=updates, predicate=f"source.{_ACTION} = 'u'")
        .execute()
    )


def _touch(delta: Any, commit: Any) -> None:
    """Record the load's app transaction even when nothing changes (an empty merge)."""
    from deltalake import write_deltalake

    schema = pa.schema(delta.schema().to_arrow())
    write_deltalake(delta, schema.empty_table(), mode="append", commit_properties=commit)


# --------------------------------------------------------------------------- scd2
def scd2(
    staged: Staged,
    delta: Any,
    location: str,
    table: dict[str, Any],
    storage_options: dict[str, str],
    commit: Any,
    at: datetime,
) -> None:
    """dlt's ``gen_scd2_sql`` as one Delta merge on (row hash, valid_from)."""
    valid_from, valid_to = get_validity_column_names(table)
    row_hash = get_first_column_name_with_prop(table, "x-row-version")
    active = get_active_record_timestamp(table)
    is_active = f"{q(valid_to)} IS NULL" if active is None else f"{q(valid_to)} = {lit(active)}"
    source_filter, scope = _conditions(table)
    merge_keys = get_columns_names_with_prop(table, "merge_key")
    con = staged.con
    if delta is not None:
        staged.register_target(delta, active_only=valid_to if active is None else None)
        con.execute(f"DELETE FROM target WHERE NOT ({is_active})")
    else:
        staged.empty_target()
    partition = []
    if scope:
        partition.append(scope)
    elif merge_keys:
        partition.extend(
            f"{q(k)} IN (SELECT {q(k)} FROM staging WHERE {source_filter})" for k in merge_keys
        )
    retire_where = " AND ".join(
        [f"{q(row_hash)} NOT IN (SELECT {q(row_hash)} FROM staging WHERE {source_filter})"]
        + partition
    )
    others = [c for c in staged.columns if c not in (valid_from, valid_to)]
    at_literal = lit(at)
    con.execute(f"""
        CREATE TEMP TABLE changes AS
        SELECT * REPLACE ({at_literal} AS {q(valid_to)}) FROM target WHERE {retire_where}
        UNION ALL BY NAME
        SELECT {cols(others)}, {at_literal} AS {q(valid_from)}, {lit(active)} AS {q(valid_to)}
        FROM (
            SELECT *, ROW_NUMBER() OVER (
                PARTITION BY {q(row_hash)}
                ORDER BY _solarsync_file_no DESC, _solarsync_row_no DESC) AS _rn
            FROM staging
            WHERE {source_filter}
              AND {q(row_hash)} NOT IN (SELECT {q(row_hash)} FROM target)
        ) WHERE _rn = 1
    """)
    changes = f"SELECT {cols(staged.columns)} FROM changes"
    if delta is None:
        write(staged.reader(changes), None, location, table, storage_options, commit, mode="append")
        return
    (count,) = con.execute("SELECT count(*) FROM changes").fetchall()[0]
    if not count:
        _touch(delta, commit)
        return
    reader = staged.reader(changes)
    schema = arrow_schema(table, delta, reader.schema)
    _evolve(delta, schema)
    updates = {q(f.name): f"source.{q(f.name)}" for f in schema}
    (
        delta.merge(
            conform(reader, schema),
            predicate=f"target.{q(row_hash)} = source.{q(row_hash)} AND "
            f"target.{q(valid_from)} = source.{q(valid_from)}",
            source_alias="source",
            target_alias="target",
            commit_properties=commit,
        )
        .when_matched_update(updates={q(valid_to): f"source.{q(valid_to)}"})
        .when_not_matched_insert(updates=updates)
        .execute()
    )
