"""A run that finds nothing changed: no load, no new checkpoint, a history row, and the views
published again only when this installation's differ from what the warehouse got."""

from __future__ import annotations

import json
from pathlib import Path

import dlt
import duckdb
import pytest

from pipelines.sync import VIEWS_MARKER
from tests.sources.solarknock.test_sync_sandbox import checkpoints, loads, run
from tests.sources.solarknock.warehouse_check import assert_equal_to_truth


@pytest.fixture
def warehouse(isolated_dlt: Path) -> Path:
    return isolated_dlt / "warehouse.duckdb"


def query(path: Path, sql: str) -> list[tuple]:
    con = duckdb.connect(str(path), read_only=True)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


def test_a_run_that_finds_nothing_loads_nothing_and_is_recorded(sk_sandbox, warehouse) -> None:
    assert run("--warehouse", str(warehouse), "run", "solarknock") == 0
    before_loads, before_checkpoints = loads(warehouse), checkpoints()
    runs = query(warehouse, "select count(*) from analytics.sync_runs")[0][0]

    assert run("--warehouse", str(warehouse), "run", "solarknock") == 0
    assert loads(warehouse) == before_loads  # no load package at all
    assert checkpoints() == before_checkpoints  # the next run reads from the same place
    assert query(warehouse, "select count(*) from analytics.sync_runs")[0][0] == runs + 1
    assert_equal_to_truth(sk_sandbox, warehouse)

    sk_sandbox.update("knocks", n=3)  # and the next change is loaded as usual
    assert run("--warehouse", str(warehouse), "run", "solarknock") == 0
    assert loads(warehouse) == before_loads + 1
    assert_equal_to_truth(sk_sandbox, warehouse)


def test_views_of_another_version_are_published_by_a_run_that_finds_nothing(
    sk_sandbox, warehouse
) -> None:
    assert run("--warehouse", str(warehouse), "run", "solarknock") == 0
    marker = Path(dlt.attach("solarsync_solarknock").working_dir) / VIEWS_MARKER
    marks = json.loads(marker.read_text())
    assert len(marks) == 1
    # the warehouse as an earlier version left it: a view this version has is missing
    working = warehouse.parent / ".solarsync" / f"working.{warehouse.name}"
    for path in (working, warehouse):
        con = duckdb.connect(str(path))
        con.execute("DROP VIEW analytics.knock_actions")
        con.close()
    assert run("--warehouse", str(warehouse), "run", "solarknock") == 0
    views = "select table_name from information_schema.views where table_schema = 'analytics'"
    assert ("knock_actions",) not in query(warehouse, views)  # same version: not looked at

    marker.write_text(json.dumps(dict.fromkeys(marks, "0" * 64)))  # an earlier version's views
    assert run("--warehouse", str(warehouse), "run", "solarknock") == 0
    assert ("knock_actions",) in query(warehouse, views)
    assert json.loads(marker.read_text()) == marks
