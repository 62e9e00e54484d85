"""What must hold on every destination (``any_warehouse``: DuckDB, Postgres, ...): the
warehouse equals the sandbox's truth after syncs and incremental reruns, HEAT's schedule
history is exact, polls load, and columns keep their types (timestamps with time zone, JSON)."""

from __future__ import annotations

import pytest

from pipelines.destinations import Warehouse
from pipelines.registry import get
from pipelines.sync import run_source
from tests.sources.heat.conftest import active_entries, heat_sandbox, rows, snapshots, ts
from tests.sources.heat.warehouse_check import assert_snapshot_equals_truth
from tests.sources.solarknock.warehouse_check import assert_equal_to_truth

assert heat_sandbox  # the HEAT sandbox fixture, shared with tests/sources/heat

#: information_schema.columns.data_type of a timestamp and a JSON column, per destination
TYPES = {
    "duckdb": ("TIMESTAMP WITH TIME ZONE", "JSON"),
    "postgres": ("timestamp with time zone", "jsonb"),
}


@pytest.fixture(params=["postgres"])
def any_warehouse(request: pytest.FixtureRequest):
    """Postgres; DuckDB and the lake run the same scenarios in test_every_destination_lake.py
    (this file's DuckDB checks add only column types, checked there too)."""
    return request.getfixturevalue(f"{request.param}_warehouse")


def column_types(warehouse: Warehouse, schema: str, table: str) -> dict[str, str]:
    with warehouse.reader() as reader:
        found = reader.rows(
            "select column_name, data_type from information_schema.columns "
            "where table_schema = ? and table_name = ?",
            [schema, table],
        )
    return dict(found)


def one(warehouse: Warehouse, sql: str, *params) -> tuple:
    with warehouse.reader() as reader:
        return reader.rows(sql, list(params))[0]


def test_solarknock_sync_and_incremental_rerun_equal_the_sandbox(any_warehouse, sk_sandbox):
    first = run_source(get("solarknock"), any_warehouse)
    assert first.ok, first.error
    assert first.rows["knocks"] == 700 and first.rows["leads"] == 160
    assert_equal_to_truth(sk_sandbox, any_warehouse)
    timestamp, json_type = TYPES[any_warehouse.kind]
    knocks = column_types(any_warehouse, "solarknock", "knocks")
    assert (knocks["updated_at"], knocks["actions_taken"]) == (timestamp, json_type)
    assert column_types(any_warehouse, "solarknock", "leads")["attachments"] == json_type
    assert "analytics.knocks" in first.views and "analytics.lead_attachments" in first.views

    updated = sk_sandbox.update("knocks", 7)
    inserted = sk_sandbox.insert("leads", 3)
    deleted = sk_sandbox.soft_delete("knocks", 2)
    second = run_source(get("solarknock"), any_warehouse)
    assert second.ok, second.error
    assert second.changes["leads"]["new"] == len(inserted)
    assert second.changes["knocks"]["updated"] >= len(updated)
    assert second.changes["knocks"]["deleted"] == len(deleted)
    assert_equal_to_truth(sk_sandbox, any_warehouse)
    live = [r for r in sk_sandbox.truth("knocks") if r["deleted_at"] is None]
    assert one(any_warehouse, "select count(*) from analytics.knocks") == (len(live),)
    (loads,) = one(any_warehouse, "select count(*) from solarknock._dlt_loads where status = 0")
    assert loads == 2

    # leads walked again: their files were stored by the first run, which the attachments know
    # by reading lead_attachments back from the destination (sql_client): nothing downloaded
    sk_sandbox.update("leads", 20)
    sk_sandbox.clear_requests()
    third = run_source(get("solarknock"), any_warehouse)
    assert third.ok, third.error
    assert sk_sandbox.count_requests(endpoint="attachments") == 0
    (stored,) = one(
        any_warehouse, "select count(*) from solarknock.lead_attachments where status = 'stored'"
    )
    assert stored > 100
    assert_equal_to_truth(sk_sandbox, any_warehouse)
    assert one(any_warehouse, "select count(*) from solarknock.knocks") == (700,)


def test_heat_schedule_history_is_exact(any_warehouse, heat_sandbox):
    sb = heat_sandbox
    a, b, c, _ = sb.site_ids
    assert run_source(get("heat"), any_warehouse).ok
    (s1,) = snapshots(any_warehouse)
    before = active_entries(any_warehouse)
    grid = next(s for s in sb.truth()[a]["schedules"] if s["asset"] == "grid")
    changed = dict(grid["entries"][0], value=grid["entries"][0]["value"] + 7)
    sb.set_schedule(a, grid["asset"], grid["type"], [changed, *grid["entries"][1:]])
    sb.clear_schedules(b)
    sb.hide_site(c)
    second = run_source(get("heat"), any_warehouse)
    assert second.ok, second.error
    s1, s2 = snapshots(any_warehouse)
    assert_snapshot_equals_truth(sb, any_warehouse)

    first_start = ts(grid["entries"][0]["startAt"])
    versions = rows(
        any_warehouse,
        "select value, _dlt_valid_from as f, _dlt_valid_to as t from heat.schedule_entries "
        "where site_id = ? and asset = ? and type = ? and start_at = ? order by f",
        a,
        grid["asset"],
        grid["type"],
        first_start,
    )
    assert [(v["value"], v["f"], v["t"]) for v in versions] == [
        (float(grid["entries"][0]["value"]), s1, s2),
        (float(changed["value"]), s2, None),
    ]
    retired = rows(
        any_warehouse, "select _dlt_valid_to as t from heat.schedule_entries where site_id = ?", b
    )
    assert retired and {r["t"] for r in retired} == {s2}
    # the site missing from the snapshot keeps its schedule
    assert {e for e in active_entries(any_warehouse) if e[0] == c} == {
        e for e in before if e[0] == c
    }
    assert "analytics.heat_schedule_history" in second.views
    (ended,) = one(
        any_warehouse,
        "select count(*) from analytics.heat_schedule_history where ended_by = 'changed'",
    )
    assert ended == 1


class StopAfter:
    """A ``threading.Event`` stand-in for poll_source: set once ``n`` polls were taken."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, n: int) -> None:
        import sources.tesla

        self.n, self.taken = n, 0
        original = sources.tesla.utcnow

        def counting():
            self.taken += 1
            return original()

        monkeypatch.setattr(sources.tesla, "utcnow", counting)

    def is_set(self) -> bool:
        return self.taken >= self.n

    def wait(self, timeout: float) -> bool:
        return self.is_set()


def test_tesla_polls_load_in_batches(any_warehouse, tmp_path, monkeypatch):
    from pipelines.poll import poll_source
    from sandbox.tesla import TeslaGatewaySandbox
    from sources.tesla import reset_clients

    gateway = TeslaGatewaySandbox(tmp_path / "gw", password="Poll-PW-5521").start()
    try:
        monkeypatch.setenv("SOURCES__TESLA__HOST", gateway.host)
        monkeypatch.setenv("SOURCES__TESLA__PASSWORD", "Poll-PW-5521")
        reset_clients()
        ticks = iter(range(100_000))
        result = poll_source(
            get("tesla"), any_warehouse, every=0.1, duration=100.0, batch=0.25,
            clock=lambda: next(ticks) / 10, stop=StopAfter(monkeypatch, 4),
        )  # fmt: skip
    finally:
        gateway.stop()
        reset_clients()
    assert result.ok, (result.error, result.poll_errors, result.load_errors)
    assert result.polls == 4 and result.batches >= 2
    (readings, polls) = one(
        any_warehouse, "select count(*), count(distinct polled_at) from tesla.meter_readings"
    )
    assert (readings, polls) == (4 * 4, 4)
    assert "analytics.tesla_energy_daily" in result.views
