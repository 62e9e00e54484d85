"""After each load: a DuckDB file of views over each Delta table's current Parquet files.

For each dataset (schema ``<source>``) and Delta table: a view reading exactly the files of the
table's current version (``DeltaTable.file_uris()`` -> ``read_parquet([...])``, the partition
value taken from the ``day=...`` folder), with the types of dlt's schema (JSON columns as
DuckDB ``JSON``, as in the DuckDB warehouse). ``<source>._dlt_loads`` reads dlt's load records.
Then the ``analytics`` views of ``warehouse/views/<source>.sql`` (a view that cannot run over
the lake is skipped, with a note in the log).

The file is built as a copy next to the published one and renamed over it: a BI tool that has
the old file open keeps reading the old version (its Parquet files stay until ``vacuum``), and
never blocks a load. A lock file keeps two sources publishing at once from losing an update.

**Relocatable**: the views name each Parquet file relative to the views file's folder, through
the macro ``solarsync_lake_dir()``. DuckDB resolves a relative path against the process's
working directory, never against the database file, so the macro finds the file's folder
itself: a database opened as a file gets the temporary directory ``<file>.tmp`` by default
(``current_setting('temp_directory')``, absolute), whose folder is the file's. A copied,
moved or mounted lake opened by any reader (the CLI, a BI tool's JDBC/ODBC driver, DuckDB 1.x)
answers from where it is. Where that setting says nothing about the file (the file ATTACHed
into another database, or ``temp_directory`` set by the reader) the macro falls back to the
folder the file was published in.

Local buckets need no DuckDB extension. For a remote bucket (s3://, gs://, az://) DuckDB needs
its httpfs extension to read the files, which cannot be bound while publishing here: the same
views are written as a SQL script, kept **in the bucket** (``<bucket>/_views/<dataset>.sql``,
one part per dataset, each written only by that dataset's loads: two hosts loading different
sources never overwrite each other's), and assembled into a local copy (``views_file``, default
``$DLT_DATA_DIR/solarsync/lake_views/<bucket>.sql``) after each publish and by
``solarsync lake views``, to run in a DuckDB that has httpfs and the bucket's credentials.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import dlt
import duckdb

from pipelines.duckdb_storage import configured_version
from pipelines.duckdb_storage import create as create_database
from pipelines.publish import readable_copy
from pipelines.views import VIEWS_DIR, statements
from sources.common import redact

if TYPE_CHECKING:
    from pipelines.lake.warehouse import LakeWarehouse

logger = logging.getLogger("solarsync")

#: dlt data types -> DuckDB types of the view columns
DUCKDB_TYPES = {
    "text": "VARCHAR",
    "double": "DOUBLE",
    "bool": "BOOLEAN",
    "timestamp": "TIMESTAMPTZ",
    "bigint": "BIGINT",
    "binary": "BLOB",
    "json": "JSON",
    "date": "DATE",
    "time": "TIME",
    "decimal": "DECIMAL(38, 9)",
    "wei": "DECIMAL(38, 0)",
}
LOADS_TABLE = "_dlt_loads"
#: the macro the views of a local lake name their files with (see the module docstring)
LAKE_DIR = "solarsync_lake_dir"
#: the bucket's folder of views script parts, one ``<dataset>.sql`` each (remote lakes)
SCRIPT_PARTS = "_views"


def q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def s(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _path(uri: str) -> str:
    return uri[len("file://") :] if uri.startswith("file://") else uri


@contextlib.contextmanager
def views_lock(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_name(path.name + ".lock"), "a+") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def lake_dir_macro(views_file: Path) -> str:
    """``solarsync_lake_dir()``: the folder of the views file as the reader opened it, with a
    trailing slash; the folder it was published in where that cannot be known (see the module
    docstring)."""
    folder = str(views_file.resolve().parent).rstrip("/") + "/"
    tmp = "current_setting('temp_directory')"
    return (
        f"CREATE OR REPLACE MACRO main.{LAKE_DIR}() AS CASE "
        f"WHEN ends_with({tmp}, {s('/' + views_file.name + '.tmp')}) "
        f"THEN regexp_replace({tmp}, '[^/]*$', '') ELSE {s(folder)} END"
    )


class FileRefs:
    """How a view names files of the lake: relative to the views file's folder through
    :data:`LAKE_DIR` (local lakes), or by URL (remote lakes: the script runs anywhere)."""

    def __init__(self, base: Path | None = None) -> None:
        #: the views file's folder; None: absolute paths and URLs as they are
        self.base = base

    @classmethod
    def of(cls, lake: LakeWarehouse) -> FileRefs:
        return cls(lake.views_file.resolve().parent if lake.local else None)

    def many(self, paths: list[str]) -> str:
        """A list of files for ``read_parquet``. The folder is prefixed once for the whole list
        (a ``lambda``: DuckDB 1.3 and later), which binds as fast as a list of literals; a macro
        call per file costs about 0.5 ms per file on every query."""
        if self.base is None:
            return "[" + ", ".join(s(p) for p in paths) + "]"
        relative = ", ".join(s(os.path.relpath(p, self.base)) for p in paths)
        return f"list_transform([{relative}], lambda f: {LAKE_DIR}() || f)"

    def one(self, path: str) -> str:
        if self.base is None:
            return s(path)
        return f"{LAKE_DIR}() || {s(os.path.relpath(path, self.base))}"


def table_view_sql(delta: Any, columns: dict[str, Any], refs: FileRefs | None = None) -> str:
    """``SELECT`` of one Delta table's current files, typed like dlt's schema (files named by
    ``refs``, default their absolute paths)."""
    refs = refs or FileRefs()
    import pyarrow as pa

    uris = [_path(u) for u in delta.file_uris()]
    delta_fields = {f.name: f for f in pa.schema(delta.schema().to_arrow())}
    partitions = list(delta.metadata().partition_columns)
    names = [c for c in columns if c in delta_fields] + [
        c for c in delta_fields if c not in columns
    ]
    select = []
    for column in names:
        data_type = DUCKDB_TYPES.get((columns.get(column) or {}).get("data_type") or "", None)
        if data_type is None:
            data_type = _duckdb_type(delta_fields[column].type)
        select.append(f"CAST({q(column)} AS {data_type}) AS {q(column)}")
    if not uris:
        return f"SELECT {', '.join(select)} FROM (SELECT {_nulls(names)}) WHERE false"
    options = "union_by_name = true"
    if partitions:
        types = ", ".join(f"{s(p)}: 'VARCHAR'" for p in partitions)
        options += f", hive_partitioning = true, hive_types = {{{types}}}"
    # files written before a column was added lack it: NULL, as in the Delta table
    source = f"read_parquet({refs.many(uris)}, {options})"
    return f"SELECT {', '.join(select)} FROM {source}" if names else f"SELECT * FROM {source}"


def _nulls(names: list[str]) -> str:
    return ", ".join(f"NULL AS {q(n)}" for n in names) or "NULL AS _empty"


def _duckdb_type(arrow_type: Any) -> str:
    import pyarrow as pa

    if pa.types.is_timestamp(arrow_type):
        return "TIMESTAMPTZ" if arrow_type.tz else "TIMESTAMP"
    if pa.types.is_date(arrow_type):
        return "DATE"
    if pa.types.is_boolean(arrow_type):
        return "BOOLEAN"
    if pa.types.is_integer(arrow_type):
        return "BIGINT"
    if pa.types.is_floating(arrow_type):
        return "DOUBLE"
    if pa.types.is_decimal(arrow_type):
        return f"DECIMAL({arrow_type.precision}, {arrow_type.scale})"
    if pa.types.is_binary(arrow_type) or pa.types.is_large_binary(arrow_type):
        return "BLOB"
    return "VARCHAR"


def loads_view_sql(lake: LakeWarehouse, dataset: str) -> str | None:
    """dlt's load records (one JSON file per load) as ``<dataset>._dlt_loads``."""
    if lake.local:
        folder = Path(lake.bucket_url) / dataset / LOADS_TABLE
        if not folder.is_dir() or not any(folder.iterdir()):
            return None
        pattern = str(folder / "*.jsonl")
    else:
        pattern = f"{lake.bucket_url}/{dataset}/{LOADS_TABLE}/*.jsonl"
    return (
        "SELECT load_id, schema_name, CAST(status AS BIGINT) AS status, "
        "CAST(inserted_at AS TIMESTAMPTZ) AS inserted_at, schema_version_hash "
        f"FROM read_json({FileRefs.of(lake).one(pattern)}, format = 'newline_delimited', "
        "columns = {load_id: 'VARCHAR', schema_name: 'VARCHAR', status: 'BIGINT', "
        "inserted_at: 'VARCHAR', schema_version_hash: 'VARCHAR'})"
    )


def dataset_statements(lake: LakeWarehouse, pipeline: dlt.Pipeline, source: str) -> list[str]:
    """The schema and one view per table of ``source``'s dataset."""
    schema = pipeline.schemas[source] if source in pipeline.schemas else pipeline.default_schema
    dataset = pipeline.dataset_name
    out = [f"DROP SCHEMA IF EXISTS {q(dataset)} CASCADE", f"CREATE SCHEMA {q(dataset)}"]
    refs = FileRefs.of(lake)
    for table in schema.data_tables():
        name = table["name"]
        if table.get("table_format") != "delta":
            continue
        delta = lake.delta_table(dataset, name)
        if delta is None:
            continue
        _check_readable(delta, dataset, name)
        select = table_view_sql(delta, table.get("columns") or {}, refs)
        out.append(f"CREATE VIEW {q(dataset)}.{q(name)} AS {select}")
    loads = loads_view_sql(lake, dataset)
    if loads:
        out.append(f"CREATE VIEW {q(dataset)}.{LOADS_TABLE} AS {loads}")
    return out


def _check_readable(delta: Any, dataset: str, name: str) -> None:
    """The views read Parquet files as they are: deletion vectors or column mapping (features
    another writer may turn on) would make them wrong."""
    protocol = delta.protocol()
    features = set(protocol.reader_features or ())
    unsupported = features & {"deletionVectors", "columnMapping"}
    if unsupported:
        from sources.common import DestinationError

        raise DestinationError(
            f"{dataset}.{name} uses Delta features {sorted(unsupported)} that the views file "
            "cannot read",
            source="destination filesystem",
            hint="turn them off for this table, or read it with delta_scan / Spark",
        )


def analytics_statements(source: str) -> list[str]:
    path = VIEWS_DIR / f"{source}.sql"
    return statements(path.read_text()) if path.exists() else []


def publish_views(lake: LakeWarehouse, pipeline: dlt.Pipeline, source: str) -> list[str]:
    """Rebuild ``source``'s schema and analytics views in the views file; returns the views
    created. Remote buckets: the SQL script instead (see the module docstring)."""
    dataset_sql = dataset_statements(lake, pipeline, source)
    if not lake.local:
        return publish_script(lake, pipeline.dataset_name, dataset_sql, source)
    target = lake.views_file
    created: list[str] = []
    with views_lock(target):
        temp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
        temp.unlink(missing_ok=True)
        # in the storage version BI tools' DuckDB reads ([destination.duckdb] storage_version)
        version = configured_version()
        if target.exists():
            readable_copy(target, temp, version)
        else:
            create_database(temp, version)
        con = duckdb.connect(str(temp))
        try:
            con.execute(lake_dir_macro(target))
            for statement in dataset_sql:
                con.execute(statement)
            created = apply_analytics(con, source)
            con.execute("CHECKPOINT")
        finally:
            con.close()
        os.replace(temp, target)
    return created


def apply_analytics(con: Any, source: str) -> list[str]:
    import re

    created = []
    for statement in analytics_statements(source):
        try:
            con.execute(statement)
        except duckdb.Error as exc:
            logger.info(
                "%s: analytics view skipped on the lake (%s)", source, str(exc).splitlines()[0]
            )
            continue
        match = re.search(r"\bVIEW\s+([\w.]+)", statement, re.I)
        if match:
            created.append(match.group(1))
    return created


SCRIPT_HEAD = """-- solarsync: views over the Delta lake {bucket}
-- Assembled from the bucket's {parts}/<dataset>.sql (one part per dataset, rewritten after each
-- load of that dataset): the current Parquet files of every Delta table.
-- Needs DuckDB's httpfs extension and the bucket's credentials, e.g.:
--   INSTALL httpfs; LOAD httpfs;
--   CREATE SECRET (TYPE s3, KEY_ID '...', SECRET '...', ENDPOINT '...', URL_STYLE 'path');
-- then:  .read {name}
"""


def publish_script(
    lake: LakeWarehouse, dataset: str, dataset_sql: list[str], source: str
) -> list[str]:
    """The views of a remote lake: this dataset's part of the script, written to the bucket,
    then the local copy assembled from every part there."""
    body = "".join(f"{statement};\n" for statement in dataset_sql + analytics_statements(source))
    fs, root = lake.fs()
    try:
        fs.pipe_file(_part_path(root, dataset), f"-- dataset {dataset}\n{body}".encode())
    finally:
        fs.invalidate_cache()
    write_script_copy(lake)
    return []


def _part_path(root: str, dataset: str) -> str:
    return f"{root.rstrip('/')}/{SCRIPT_PARTS}/{dataset}.sql"


def script_text(lake: LakeWarehouse) -> str | None:
    """The whole views script of a remote lake, from the parts in its bucket (None: no part
    yet, nothing was published)."""
    from pipelines.lake.warehouse import without_userinfo

    fs, root = lake.fs()
    try:
        parts = sorted(fs.glob(f"{root.rstrip('/')}/{SCRIPT_PARTS}/*.sql"))
        texts = [fs.cat_file(part).decode() for part in parts]
    except FileNotFoundError:
        return None
    finally:
        fs.invalidate_cache()
    if not texts:
        return None
    bucket = redact(without_userinfo(lake.bucket_url))
    head = SCRIPT_HEAD.format(bucket=bucket, parts=SCRIPT_PARTS, name=lake.views_file.name)
    return head + "".join(texts)


def write_script_copy(lake: LakeWarehouse, target: Path | None = None) -> Path | None:
    """The bucket's script assembled into ``target`` (default the lake's ``views_file``),
    atomically; None when the bucket has none yet."""
    text = script_text(lake)
    if text is None:
        return None
    target = target or lake.views_file
    with views_lock(target):
        temp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
        temp.write_text(text)
        os.replace(temp, target)
    return target


def remote_reader_connection(lake: LakeWarehouse) -> Any | None:
    """An in-memory DuckDB with a view per Delta table of a remote lake, read through
    deltalake (no httpfs needed), ``_dlt_loads`` from the load records, and the ``analytics``
    views over them: for ``status`` and ``report``."""
    import pyarrow as pa
    import pyarrow.json as pa_json

    datasets = lake.datasets()
    if not datasets:
        return None
    con = duckdb.connect()
    fs, path = lake.fs()
    for dataset in datasets:
        con.execute(f"CREATE SCHEMA IF NOT EXISTS {q(dataset)}")
        for name in lake.tables(dataset):
            delta = lake.delta_table(dataset, name)
            if delta is None:
                continue
            alias = f"__{dataset}__{name}"
            con.register(alias, delta.to_pyarrow_dataset())
            con.execute(f"CREATE VIEW {q(dataset)}.{q(name)} AS SELECT * FROM {q(alias)}")
        tables = []
        try:
            files = fs.glob(f"{path.rstrip('/')}/{dataset}/{LOADS_TABLE}/*.jsonl")
        except FileNotFoundError:
            files = []
        for file in files:
            with fs.open(file, "rb") as handle:
                tables.append(pa_json.read_json(handle))
        if tables:
            loads = pa.concat_tables(tables, promote_options="default")
            alias = f"__{dataset}__loads"
            con.register(alias, loads)
            con.execute(
                f"CREATE VIEW {q(dataset)}.{LOADS_TABLE} AS SELECT load_id, schema_name, "
                "CAST(status AS BIGINT) AS status, CAST(inserted_at AS TIMESTAMPTZ) AS "
                f"inserted_at FROM {q(alias)}"
            )
    for dataset in datasets:
        apply_analytics(con, dataset)
    return con
