"""After each load: a DuckDB file of views over each Delta table's current Parquet files.

For each dataset (schema ``<source>``) and Delta table: a view reading exactly the files of the
table's current version (``DeltaTable.file_uris()`` -> ``read_parquet([...])``, the partition
value taken from the ``day=...`` folder), with the types of dlt's schema (JSON columns as
DuckDB ``JSON``, as in the DuckDB warehouse). ``<source>._dlt_loads`` reads dlt's load records.
Then the ``analytics`` views of ``warehouse/views/<source>.sql``, through
:func:`pipelines.views.publish_views` as on the DuckDB warehouse (names bound for the views
file's own catalog, whatever it is called).

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
from typing import Any

import dlt
import duckdb
import pyarrow as pa
import pyarrow.json as pa_json

from pipelines.destinations.duckdb.catalog import catalog_name
from pipelines.destinations.duckdb.publish import readable_copy
from pipelines.destinations.duckdb.settings import settings as duckdb_settings
from pipelines.destinations.duckdb.storage import create as create_database
from pipelines.destinations.duckdb.views import DuckDBViews
from pipelines.destinations.lake.bucket import without_userinfo
from pipelines.destinations.lake.tableviews import FileRefs, lake_dir_macro, q, table_view_sql
from pipelines.views import ViewsOutcome, publish_views, statements, views_file, views_sql
from sources.common import DestinationError, SolarsyncError, redact

#: ``lake`` arguments below are :class:`pipelines.destinations.lake.LakeWarehouse` instances
#: (not imported: the warehouse module imports this one)
LakeWarehouse = Any

logger = logging.getLogger("solarsync")

LOADS_TABLE = "_dlt_loads"
DESTINATION = "destination filesystem"
#: the bucket's folder of views script parts, one ``<dataset>.sql`` each (remote lakes)
SCRIPT_PARTS = "_views"


@contextlib.contextmanager
def views_lock(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_name(path.name + ".lock"), "a+") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


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
        raise DestinationError(
            f"{dataset}.{name} uses Delta features {sorted(unsupported)} that the views file "
            "cannot read",
            source=DESTINATION,
            hint="turn them off for this table, or read it with delta_scan / Spark",
        )


def publish_dataset(
    lake: LakeWarehouse, pipeline: dlt.Pipeline, source: str, views: str | None
) -> ViewsOutcome:
    """Rebuild ``source``'s schema and analytics views (the file ``views``) in the views file.
    Remote buckets: the SQL script instead (see the module docstring)."""
    dataset_sql = dataset_statements(lake, pipeline, source)
    if not lake.local:
        publish_script(lake, pipeline.dataset_name, dataset_sql, views)
        return ViewsOutcome()
    target = lake.views_file
    with views_lock(target):
        temp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
        temp.unlink(missing_ok=True)
        # in the storage version BI tools' DuckDB reads ([destination.duckdb] storage_version)
        version = duckdb_settings().version
        if target.exists():
            readable_copy(target, temp, version)
        else:
            create_database(temp, version)
        con = duckdb.connect(str(temp))
        try:
            con.execute(lake_dir_macro(target))
            for statement in dataset_sql:
                con.execute(statement)
            target_views = DuckDBViews(con, catalog_name(target), DESTINATION)
            outcome = publish_views(target_views, source, views)
            con.execute("CHECKPOINT")
        finally:
            con.close()
        os.replace(temp, target)
    return outcome


SCRIPT_HEAD = """-- solarsync: views over the Delta lake {bucket}
-- Assembled from the bucket's {parts}/<dataset>.sql (one part per dataset, rewritten after each
-- load of that dataset): the current Parquet files of every Delta table.
-- Needs DuckDB's httpfs extension and the bucket's credentials, e.g.:
--   INSTALL httpfs; LOAD httpfs;
--   CREATE SECRET (TYPE s3, KEY_ID '...', SECRET '...', ENDPOINT '...', URL_STYLE 'path');
-- then:  .read {name}
"""


def publish_script(
    lake: LakeWarehouse, dataset: str, dataset_sql: list[str], views: str | None
) -> list[str]:
    """The views of a remote lake: this dataset's part of the script, written to the bucket,
    then the local copy assembled from every part there."""
    analytics = statements(views_sql(views)) if views else []
    body = "".join(f"{statement};\n" for statement in dataset_sql + analytics)
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
        views = f"{dataset}.sql"  # a dataset's views file is named after it
        if views_file(views) is None:
            continue
        try:
            publish_views(DuckDBViews(con, "memory", DESTINATION), dataset, views)
        except SolarsyncError as exc:
            logger.warning("%s: analytics views not readable on this lake: %s", dataset, exc)
    return con
