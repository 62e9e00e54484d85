"""Compare the warehouse with the SolarKnock sandbox's ground truth."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import duckdb

from pipelines.destinations import Warehouse
from tests.conftest import SK_TABLES


def _ts(value: object) -> datetime | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        return value
    return datetime.fromisoformat(str(value))


def _key(row: dict | tuple, cols: tuple[str, ...]) -> tuple:
    return tuple(str(row[c]) for c in cols)


def warehouse_rows(path: Path | Warehouse, table: str) -> list[dict]:
    if isinstance(path, Warehouse):  # any destination, through its reader
        with path.reader() as reader:
            return reader.records(f"select * from solarknock.{table}")
    con = duckdb.connect(str(path), read_only=True)
    try:
        cur = con.execute(f"select * from solarknock.{table}")
        names = [d[0] for d in cur.description]
        return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]
    finally:
        con.close()


def assert_equal_to_truth(
    sb, path: Path | Warehouse, endpoints: tuple[str, ...] | None = None
) -> None:
    """Same keys, no duplicates, same updated_at and deleted_at per row, for every table."""
    for endpoint, (table, cols) in SK_TABLES.items():
        if endpoints and endpoint not in endpoints:
            continue
        truth = {_key(r, cols): r for r in sb.truth(endpoint)}
        rows = warehouse_rows(path, table)
        keys = [_key(r, cols) for r in rows]
        assert len(keys) == len(set(keys)), f"{table}: duplicate keys in the warehouse"
        missing = set(truth) - set(keys)
        extra = set(keys) - set(truth)
        assert not missing, f"{table}: {len(missing)} rows missing, e.g. {sorted(missing)[:3]}"
        assert not extra, f"{table}: {len(extra)} rows not in the source, e.g. {sorted(extra)[:3]}"
        for row in rows:
            source = truth[_key(row, cols)]
            for col in ("updated_at", "deleted_at"):
                assert _ts(row[col]) == _ts(source[col]), (
                    f"{table} {_key(row, cols)}: {col} {row[col]} != source {source[col]}"
                )
