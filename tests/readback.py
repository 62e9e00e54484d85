"""Read a warehouse back as a DuckDB file, whatever its destination, for the per-source checks
(``tests/sources/*/warehouse_check.py`` take a DuckDB file).

- DuckDB: the warehouse file itself.
- Delta lake (local or S3): every Delta table read with ``deltalake`` (its current version:
  what Spark, Polars or ``delta_scan`` see), copied into a new DuckDB file, plus dlt's
  ``_dlt_loads``. The published views file is NOT used here: its own tests compare it.
"""

from __future__ import annotations

import itertools
from pathlib import Path

import duckdb

from pipelines.destinations import Warehouse
from pipelines.destinations.duckdb import DuckDBWarehouse

_copies = itertools.count()


def delta_tables(lake, dataset: str) -> dict[str, object]:
    """``{table: pyarrow.Table}`` of a lake dataset, read with deltalake."""
    out = {}
    for name in lake.tables(dataset):
        table = lake.delta_table(dataset, name)
        if table is not None:
            out[name] = table.to_pyarrow_table()
    return out


def readable(warehouse: Warehouse, tmp_path: Path) -> Path:
    if isinstance(warehouse, DuckDBWarehouse):
        return warehouse.path
    from pipelines.destinations.lake import LakeWarehouse

    assert isinstance(warehouse, LakeWarehouse)
    path = tmp_path / f"readback-{next(_copies)}.duckdb"
    con = duckdb.connect(str(path))
    try:
        for dataset in warehouse.datasets():
            con.execute(f'CREATE SCHEMA "{dataset}"')
            for name, table in delta_tables(warehouse, dataset).items():
                con.register("_arrow", table)
                con.execute(f'CREATE TABLE "{dataset}"."{name}" AS SELECT * FROM _arrow')
                con.unregister("_arrow")
        with warehouse.reader() as reader:
            for dataset in warehouse.datasets():
                if reader is None or "_dlt_loads" not in reader.tables(dataset):
                    continue
                loads = reader.rows(
                    f'select load_id, schema_name, status, inserted_at from "{dataset}"._dlt_loads'
                )
                con.execute(
                    f'CREATE TABLE "{dataset}"._dlt_loads (load_id VARCHAR, schema_name VARCHAR, '
                    "status BIGINT, inserted_at TIMESTAMPTZ)"
                )
                con.executemany(f'INSERT INTO "{dataset}"._dlt_loads VALUES (?, ?, ?, ?)', loads)
    finally:
        con.close()
    return path
