"""HEAT fixtures: a sandbox with the pipeline pointed at it, and warehouse helpers."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

import duckdb
import pytest

from pipelines.destinations import Warehouse

HEAT_KEY = "agk_test01.ags_HEATSECRETKEY123"
HEAT_SECRET_PART = "ags_HEATSECRETKEY123"
TABLES = {
    "sites",
    "site_status_history",
    "snapshots",
    "schedule_entries",
    "assets",
    "asset_readings",
}
DLT_TABLES = {"_dlt_loads", "_dlt_pipeline_state", "_dlt_version"}


@pytest.fixture
def heat_sandbox(monkeypatch: pytest.MonkeyPatch):
    from sandbox.heat import HeatSandbox

    with HeatSandbox(seed=3, api_key=HEAT_KEY, sites=4) as sb:
        monkeypatch.setenv("SOURCES__HEAT__BASE_URL", sb.base_url)
        monkeypatch.setenv("SOURCES__HEAT__API_KEY", HEAT_KEY)
        monkeypatch.setenv("SOURCES__HEAT__BACKOFF_FACTOR", "0.01")
        monkeypatch.setenv("SOURCES__HEAT__MAX_ATTEMPTS", "3")
        monkeypatch.setenv("SOURCES__HEAT__HEALTH_TIMEOUT", "0.5")
        yield sb


@pytest.fixture
def warehouse(isolated_dlt: Path) -> Path:
    return isolated_dlt / "warehouse.duckdb"


@contextmanager
def connect(path: Path) -> Iterator[duckdb.DuckDBPyConnection]:
    con = duckdb.connect(str(path), read_only=True)
    try:
        yield con
    finally:
        con.close()


def rows(path: Path | Warehouse, sql: str, *params: Any) -> list[dict[str, Any]]:
    if isinstance(path, Warehouse):  # any destination, through its reader
        with path.reader() as reader:
            return reader.records(sql, params)
    with connect(path) as con:
        cur = con.execute(sql, list(params))
        names = [d[0] for d in cur.description]
        return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]


def tables(path: Path, schema: str = "heat") -> set[str]:
    with connect(path) as con:
        found = con.execute(
            "select table_name from information_schema.tables where table_schema = ?", [schema]
        ).fetchall()
    return {name for (name,) in found}


def columns(path: Path, table: str) -> dict[str, str]:
    with connect(path) as con:
        found = con.execute(
            "select column_name, data_type from information_schema.columns "
            "where table_schema = 'heat' and table_name = ?",
            [table],
        ).fetchall()
    return dict(found)


def ts(value: str | datetime) -> datetime:
    if isinstance(value, datetime):
        return value
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def snapshots(path: Path) -> list[datetime]:
    """Every snapshot instant loaded, oldest first."""
    found = rows(path, "select distinct snapshot_at from heat.site_status_history order by 1")
    return [r["snapshot_at"] for r in found]


def active_entries(path: Path) -> set[tuple[Any, ...]]:
    found = rows(
        path,
        "select site_id, asset, type, start_at, end_at, value from heat.schedule_entries "
        "where _dlt_valid_to is null",
    )
    return {tuple(r.values()) for r in found}


def truth_entries(sites: Any) -> set[tuple[Any, ...]]:
    """Active entries as the sandbox serves them: (site, asset, type, start, end, value)."""
    return {
        (sid, s["asset"], s["type"], ts(e["startAt"]), ts(e["endAt"]), float(e["value"]))
        for sid, site in sites.items()
        for s in site.get("schedules") or ()
        for e in s["entries"]
    }
