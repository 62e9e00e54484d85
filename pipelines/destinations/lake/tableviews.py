"""A Delta table's current version as a DuckDB ``SELECT``: its Parquet files named relative to the
views file (:class:`FileRefs`, relocatable with the lake) and typed like dlt's schema. Used by the
views file (:mod:`pipelines.destinations.lake.publish`) and dlt's SQL client over the lake
(:mod:`pipelines.destinations.lake.delta`)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pyarrow as pa

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
#: the macro the views of a local lake name their files with (see the module docstring)
LAKE_DIR = "solarsync_lake_dir"


def q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def s(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _path(uri: str) -> str:
    return uri[len("file://") :] if uri.startswith("file://") else uri


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
    def of(cls, lake: Any) -> FileRefs:
        """For the views file of ``lake`` (a :class:`~pipelines.destinations.lake.LakeWarehouse`)."""
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
