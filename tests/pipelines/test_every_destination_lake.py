# ruff: noqa: F811  (sandbox fixtures imported from the per-source conftests)
"""What must hold on every destination (``any_warehouse``: DuckDB, the Delta lake on local disk
and on S3): each source's tables equal the sandbox's truth after syncs, incremental reruns,
history snapshots and polls, read back as an analyst would (a Delta table read with deltalake).
"""

from __future__ import annotations

import pytest

from pipelines import cli
from pipelines.registry import get
from pipelines.sync import run_source
from tests.readback import readable
from tests.sources.heat.conftest import (  # noqa: F401 (fixtures)
    active_entries,
    heat_sandbox,
    rows,
    snapshots,
    ts,
)
from tests.sources.heat.warehouse_check import assert_snapshot_equals_truth
from tests.sources.solarassistant.conftest import (  # noqa: F401 (fixtures)
    fresh_caches,
    sa_sandbox,
)
from tests.sources.solarassistant.warehouse_check import (
    assert_cloud_tables_equal,
    assert_latest_metrics_equal,
)
from tests.sources.solarknock.warehouse_check import assert_equal_to_truth, warehouse_rows
from tests.sources.tesla.conftest import fresh_process, gateway, make_gateway  # noqa: F401


@pytest.fixture(params=["duckdb", "filesystem", "filesystem_s3"])
def any_warehouse(request: pytest.FixtureRequest, tmp_path):
    """DuckDB (the reference) and the lake on local disk and on S3; Postgres runs the same
    scenarios in test_every_destination.py."""
    if request.param == "duckdb":
        from pipelines.destinations.duckdb import DuckDBWarehouse

        return DuckDBWarehouse(tmp_path / "warehouse.duckdb")
    return request.getfixturevalue(f"{request.param}_warehouse")


def sync(name: str, warehouse, **kwargs):
    result = run_source(get(name), warehouse, **kwargs)
    assert result.ok, result.error
    return result


def test_solarknock_full_sync_and_incremental_reruns_equal_the_source(
    sk_sandbox, any_warehouse, tmp_path
):
    sync("solarknock", any_warehouse)
    assert_equal_to_truth(sk_sandbox, readable(any_warehouse, tmp_path))

    deleted = sk_sandbox.soft_delete("knocks", n=7)
    sk_sandbox.update("leads", n=12)
    sk_sandbox.insert("appointments", n=4)
    sk_sandbox.update("daily-stats", n=3)
    sk_sandbox.soft_delete("counties", n=1)
    result = sync("solarknock", any_warehouse)
    assert result.rows["appointments"] >= 4 and result.rows["knocks"] >= 7
    db = readable(any_warehouse, tmp_path)
    assert_equal_to_truth(sk_sandbox, db)
    knocks = {r["id"]: r for r in warehouse_rows(db, "knocks")}
    assert all(knocks[k if isinstance(k, str) else k[0]]["deleted_at"] for k in deleted)

    # a backfill of everything merges into the same rows: no duplicate, nothing lost
    sync("solarknock", any_warehouse, source_kwargs={"backfill": True})
    assert_equal_to_truth(sk_sandbox, readable(any_warehouse, tmp_path))
    # and the nightly run after it reads only the lookback window
    sk_sandbox.clear_requests()
    sync("solarknock", any_warehouse)
    assert sk_sandbox.count_requests() == 8
    assert_equal_to_truth(sk_sandbox, readable(any_warehouse, tmp_path))


def test_heat_schedule_history_over_snapshots(heat_sandbox, any_warehouse, tmp_path):
    sb = heat_sandbox
    a, b, c, d = sb.site_ids
    sync("heat", any_warehouse)
    grid = next(s for s in sb.truth()[a]["schedules"] if s["asset"] == "grid")
    changed = dict(grid["entries"][0], value=grid["entries"][0]["value"] + 7)
    sb.set_schedule(a, grid["asset"], grid["type"], [changed, *grid["entries"][1:]])
    sb.clear_schedules(b)  # present, every schedule cleared
    sb.hide_site(c)  # missing from the snapshot: its schedule is untouched
    sb.set_online(d, False)
    sync("heat", any_warehouse)
    sb.show_site(c)  # back, unchanged: no new version
    sync("heat", any_warehouse)

    db = readable(any_warehouse, tmp_path)
    s1, s2, s3 = snapshots(db)
    assert_snapshot_equals_truth(sb, db)
    first = ts(grid["entries"][0]["startAt"])
    versions = rows(
        db,
        "select value, _dlt_valid_from as f, _dlt_valid_to as t from heat.schedule_entries "
        "where site_id = ? and asset = ? and type = ? and start_at = ? order by f",
        a,
        grid["asset"],
        grid["type"],
        first,
    )
    assert [(v["value"], v["f"], v["t"]) for v in versions] == [
        (float(grid["entries"][0]["value"]), s1, s2),
        (float(changed["value"]), s2, None),
    ]
    cleared = rows(
        db, "select distinct _dlt_valid_to as t from heat.schedule_entries where site_id = ?", b
    )
    assert [r["t"] for r in cleared] == [s2]
    hidden = rows(
        db,
        "select _dlt_valid_from as f, _dlt_valid_to as t from heat.schedule_entries where site_id = ?",
        c,
    )
    assert hidden and {(r["f"], r["t"]) for r in hidden} == {(s1, None)}
    assert s3 > s2


def test_tesla_runs_and_a_poll(gateway, any_warehouse, tmp_path):
    import sources.tesla
    from pipelines.poll import poll_source

    for _ in range(2):
        sources.tesla.reset_clients()
        sync("tesla", any_warehouse)
    ticks = iter(range(10_000))
    result = poll_source(
        get("tesla"), any_warehouse, every=0.1, duration=1.0, batch=0.3,
        clock=lambda: next(ticks) / 10,
    )  # fmt: skip
    assert result.ok, result.error
    assert result.batches >= 2  # the journal was loaded in several batches
    polls = 2 + result.polls
    db = readable(any_warehouse, tmp_path)
    query = lambda sql: rows(db, sql)  # noqa: E731
    assert query("select count(distinct polled_at) n, count(*) c from tesla.meter_readings") == [
        {"n": polls, "c": 4 * polls}
    ]
    assert gateway.requests_to("/api/meters/aggregates") == polls
    served = sorted((r.tick, r.meter, r.field, r.served) for r in gateway.meters.log)
    loaded = query(
        "select meter, energy_exported e, energy_imported i, polled_at from tesla.meter_readings"
    )
    at = sorted({r["polled_at"] for r in loaded})
    assert (
        sorted(
            (at.index(r["polled_at"]) + 1, r["meter"], field, r[key])
            for r in loaded
            for field, key in (("energy_exported", "e"), ("energy_imported", "i"))
        )
        == served
    )
    # one row per key where the key is not the poll: the newest poll's
    assert query("select gateway, polled_at from tesla.site_info") == [
        {"gateway": "home", "polled_at": at[-1]}
    ]
    assert query("select gateway, position, polled_at from tesla.powerwalls") == [
        {"gateway": "home", "position": 0, "polled_at": at[-1]}
    ]
    assert query("select count(*) n from tesla.battery_soe") == [{"n": polls}]


def test_solarassistant_runs_and_members_leaving(sa_sandbox, any_warehouse, tmp_path):
    sync("solarassistant", any_warehouse)
    db = readable(any_warehouse, tmp_path)
    assert_cloud_tables_equal(sa_sandbox, db)
    assert_latest_metrics_equal(sa_sandbox, db)
    a, b, c = sa_sandbox.sites[0], sa_sandbox.sites[1], sa_sandbox.sites[2]
    removed = next(uid for uid, role in a.members.items() if role != "owner")
    sa_sandbox.remove_member(a.id, removed)
    sa_sandbox.set_member(b.id, 33, "admin")
    sa_sandbox.remove_site(c.id)  # its members go too (dlt's hard-delete markers)
    sync("solarassistant", any_warehouse)
    db = readable(any_warehouse, tmp_path)
    assert_cloud_tables_equal(sa_sandbox, db)
    assert_latest_metrics_equal(sa_sandbox, db)
    assert rows(
        db, "select count(*) n from solarassistant.site_members where site_id = ?", c.id
    ) == [{"n": 0}]
    polls = rows(db, "select count(distinct polled_at) n from solarassistant.metric_polls")
    assert polls == [{"n": 2}]


def test_status_reads_the_destination(sk_sandbox, any_warehouse, capsys):
    sync("solarknock", any_warehouse)
    capsys.readouterr()
    args = ["--no-progress", "--destination", any_warehouse.kind, "status", "solarknock"]
    if any_warehouse.kind == "duckdb":
        args[3:3] = ["--warehouse", str(any_warehouse.path)]
    assert cli.main(args) == 0
    out = capsys.readouterr().out
    assert "last successful load never" not in out
    knocks = next(line for line in out.splitlines() if line.strip().startswith("knocks"))
    deleted = sum(1 for r in sk_sandbox.truth("knocks") if r["deleted_at"])
    assert knocks.split()[1:3] == [str(len(sk_sandbox.truth("knocks"))), str(deleted)]
