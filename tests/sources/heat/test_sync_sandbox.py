"""HEAT end to end against the sandbox through the CLI: snapshot history over several runs
(schedules changed, cleared, sites offline or missing) and additive API changes. Failures:
test_failures.py; batched polls, pending packages, kill -9: test_snapshots.py."""

from __future__ import annotations

from datetime import timedelta

import dlt

from tests.sources.heat.conftest import (
    DLT_TABLES,
    TABLES,
    active_entries,
    columns,
    rows,
    snapshots,
    tables,
    ts,
)
from tests.sources.heat.warehouse_check import assert_snapshot_equals_truth, run


# --------------------------------------------------------------------------- a first run
def test_first_run_loads_the_snapshot_and_a_second_run_adds_no_versions(heat_sandbox, warehouse):
    assert run("run", "heat") == 0
    assert tables(warehouse) == TABLES | DLT_TABLES
    assert_snapshot_equals_truth(heat_sandbox, warehouse)
    (first,) = snapshots(warehouse)
    # the scd2 boundary is the snapshot instant, not a load time
    valid_from = rows(warehouse, "select distinct _dlt_valid_from as t from heat.schedule_entries")
    assert [r["t"] for r in valid_from] == [first]
    # names analysts expect, types from the declarations
    cols = columns(warehouse, "assets")
    # JSON numbers are doubles: a whole first value must not type the column BIGINT
    assert cols["rated_power_upper_limit_kw"] == "DOUBLE" and cols["active_power_kw"] == "DOUBLE"
    assert cols["last_seen_at"] == "TIMESTAMP WITH TIME ZONE"
    assert "rated_power_upper_limit_kw" not in columns(warehouse, "asset_readings")
    assert columns(warehouse, "schedule_entries")["value"] == "DOUBLE"
    entries = len(rows(warehouse, "select * from heat.schedule_entries"))

    heat_sandbox.clear_requests()
    assert run("run", "heat") == 0
    # one /health, one list, one detail per site: nothing else
    assert heat_sandbox.count_requests("health") == 1
    assert heat_sandbox.count_requests("list") == 1
    assert heat_sandbox.count_requests("detail") == len(heat_sandbox.site_ids)
    assert len(snapshots(warehouse)) == 2
    assert len(rows(warehouse, "select * from heat.schedule_entries")) == entries  # unchanged
    readings = rows(warehouse, "select count(*) as n from heat.asset_readings")[0]["n"]
    assert readings == 2 * len(rows(warehouse, "select * from heat.assets"))
    assert_snapshot_equals_truth(heat_sandbox, warehouse)


# --------------------------------------------------------------------------- history
def test_schedule_history_over_several_snapshots(heat_sandbox, warehouse):
    sb = heat_sandbox
    a, b, c, d = sb.site_ids
    assert run("run", "heat") == 0
    (s1,) = snapshots(warehouse)
    before = active_entries(warehouse)

    grid = next(s for s in sb.truth()[a]["schedules"] if s["asset"] == "grid")
    changed = dict(grid["entries"][0], value=grid["entries"][0]["value"] + 7)
    sb.set_schedule(a, grid["asset"], grid["type"], [changed, *grid["entries"][1:]])
    other = next(
        s for s in sb.truth()[a]["schedules"] if s is not grid and s["type"] != grid["type"]
    )
    sb.clear_schedule(a, other["asset"], other["type"])  # one of several schedules cleared
    sb.clear_schedules(b)  # a site present with every schedule cleared
    sb.hide_site(c)  # a site missing from this snapshot
    sb.set_online(d, False)
    assert run("run", "heat") == 0
    s1, s2 = snapshots(warehouse)
    assert_snapshot_equals_truth(sb, warehouse)

    def versions(site, asset, type_):
        return rows(
            warehouse,
            "select start_at, value, _dlt_valid_from as f, _dlt_valid_to as t "
            "from heat.schedule_entries where site_id = ? and asset = ? and type = ? "
            "order by start_at, f",
            site,
            asset,
            type_,
        )

    first = ts(grid["entries"][0]["startAt"])
    grid_versions = [v for v in versions(a, grid["asset"], grid["type"]) if v["start_at"] == first]
    assert [(v["value"], v["f"], v["t"]) for v in grid_versions] == [
        (float(grid["entries"][0]["value"]), s1, s2),  # retired at the snapshot that changed it
        (float(changed["value"]), s2, None),
    ]
    assert all(v["t"] == s2 for v in versions(a, other["asset"], other["type"]))
    assert (
        rows(
            warehouse,
            "select * from heat.schedule_entries where site_id = ? and _dlt_valid_to is null",
            b,
        )
        == []
    )
    retired_b = rows(
        warehouse, "select _dlt_valid_to as t from heat.schedule_entries where site_id = ?", b
    )
    assert retired_b and {r["t"] for r in retired_b} == {s2}
    # the missing site keeps its schedule, untouched
    assert {e for e in active_entries(warehouse) if e[0] == c} == {e for e in before if e[0] == c}
    site_c = rows(warehouse, "select last_seen_at from heat.sites where site_id = ?", c)
    assert site_c == [{"last_seen_at": s1}]
    assert {
        r["site_id"]
        for r in rows(
            warehouse, "select site_id from heat.site_status_history where snapshot_at = ?", s2
        )
    } == {a, b, d}
    history = rows(
        warehouse,
        "select site_id, is_online from heat.site_status_history "
        "where site_id = ? order by snapshot_at",
        d,
    )
    assert [r["is_online"] for r in history][-1] is False

    # analysts' questions, through the views
    ended = rows(
        warehouse,
        "select site_id, type, start_at, ended_by "
        "from analytics.heat_schedule_history where known_until = ?",
        s2,
    )
    assert (a, grid["type"], first, "changed") in {tuple(r.values()) for r in ended}
    assert {r["ended_by"] for r in ended if r["site_id"] == b} == {"removed"}
    at = first + timedelta(minutes=1)
    in_force = rows(
        warehouse,
        "select value from analytics.heat_schedule_at(?, as_of := ?) "
        "where site_id = ? and type = ?",
        at,
        s1,
        a,
        grid["type"],
    )
    assert in_force == [{"value": float(grid["entries"][0]["value"])}]
    in_force = rows(
        warehouse,
        "select value from analytics.heat_schedule_at(?, as_of := ?) "
        "where site_id = ? and type = ?",
        at,
        s2,
        a,
        grid["type"],
    )
    assert in_force == [{"value": float(changed["value"])}]
    current = rows(warehouse, "select site_id, in_latest_snapshot from analytics.heat_sites")
    assert {r["site_id"]: r["in_latest_snapshot"] for r in current} == {
        a: True,
        b: True,
        c: False,
        d: True,
    }

    # the missing site comes back: unchanged schedules add no version; B gets a new one
    sb.show_site(c)
    sb.set_schedule(b, "grid", "upperLimitkW", [dict(changed, value=42)])
    assert run("run", "heat") == 0
    s3 = snapshots(warehouse)[-1]
    assert {e for e in active_entries(warehouse) if e[0] == c} == {e for e in before if e[0] == c}
    assert {
        r["f"]
        for r in rows(
            warehouse, "select _dlt_valid_from as f from heat.schedule_entries where site_id = ?", c
        )
    } == {s1}
    assert versions(b, "grid", "upperLimitkW")[-1] == {
        "start_at": ts(changed["startAt"]),
        "value": 42.0,
        "f": s3,
        "t": None,
    }
    assert_snapshot_equals_truth(sb, warehouse)
    # no entry has two active versions, no zero-length validity
    dup = rows(
        warehouse,
        "select site_id, asset, type, start_at, count(*) as n from "
        "heat.schedule_entries where _dlt_valid_to is null group by all having n > 1",
    )
    assert dup == []
    assert (
        rows(
            warehouse, "select * from heat.schedule_entries where _dlt_valid_to <= _dlt_valid_from"
        )
        == []
    )


# --------------------------------------------------------------------------- additive changes
def test_additive_api_changes_land_without_a_code_change(heat_sandbox, warehouse, capsys):
    sb = heat_sandbox
    a, b = sb.site_ids[:2]
    assert run("run", "heat") == 0
    sb.add_asset(
        a,
        "hydrogen",
        {
            "ratedPowerUpperLimitkW": 80,
            "ratedPowerLowerLimitkW": 0,
            "activePowerkW": 12,
            "storedHydrogenKg": 31.5,
            "fillLevelPcnt": 64,
        },
    )
    sb.set_schedule(
        a,
        "hydrogen",
        "fillTargetPcnt",
        [
            {
                "startAt": "2026-06-01T08:00:00Z",
                "endAt": "2026-06-01T09:00:00Z",
                "value": 90,
                "priority": "high",
            }
        ],
    )
    sb.set_site_field(b, "timeZone", "Europe/Berlin")
    sb.set_site_field(b, "location", {"lat": 52.5, "lon": 13.4})
    assert run("run", "heat") == 0
    assert "changed the type" not in capsys.readouterr().err
    assert tables(warehouse) == TABLES | DLT_TABLES  # no table per asset kind
    (hydrogen,) = rows(warehouse, "select * from heat.assets where asset_kind = 'hydrogen'")
    assert (hydrogen["site_id"], hydrogen["stored_hydrogen_kg"], hydrogen["fill_level_pcnt"]) == (
        a,
        31.5,
        64,
    )
    assert hydrogen["rated_power_upper_limit_kw"] == 80
    reading = rows(
        warehouse,
        "select stored_hydrogen_kg, fill_level_pcnt from heat.asset_readings "
        "where asset_kind = 'hydrogen'",
    )
    assert reading == [{"stored_hydrogen_kg": 31.5, "fill_level_pcnt": 64}]
    others = rows(
        warehouse,
        "select count(*) as n from heat.assets where asset_kind <> "
        "'hydrogen' and stored_hydrogen_kg is not null",
    )
    assert others == [{"n": 0}]  # new nullable columns, NULL elsewhere
    (entry,) = rows(warehouse, "select * from heat.schedule_entries where type = 'fillTargetPcnt'")
    assert (entry["asset"], entry["value"], entry["priority"], entry["_dlt_valid_to"]) == (
        "hydrogen",
        90.0,
        "high",
        None,
    )
    site_b = rows(warehouse, "select time_zone, location from heat.sites where site_id = ?", b)
    assert site_b[0]["time_zone"] == "Europe/Berlin"
    assert '"lat"' in site_b[0]["location"].replace(" ", "")  # nested: a JSON column
    assert_snapshot_equals_truth(sb, warehouse)
    # new columns did not make unchanged entries look changed: nothing was retired
    assert (
        rows(warehouse, "select * from heat.schedule_entries where _dlt_valid_to is not null") == []
    )


def test_a_changed_field_type_is_reported(heat_sandbox, warehouse, capsys):
    sb = heat_sandbox
    site = next(sid for sid, s in sb.truth().items() if "bess" in s["assets"])
    assert run("run", "heat") == 0
    sb.set_asset_field(site, "bess", "soc", "full")
    capsys.readouterr()
    assert run("run", "heat") == 0
    captured = capsys.readouterr()
    # the run summary names it too, for whoever reads the cron mail rather than the log
    assert "warning: type change: asset_readings.soc: double -> text" in captured.out
    messages = [m for m in captured.err.splitlines() if "changed the type" in m]
    assert any("assets.soc" in m and "soc__v_text" in m for m in messages), messages
    assert any("asset_readings.soc" in m for m in messages), messages
    state = dlt.attach("solarsync_heat").state["sources"]["heat"]["resources"]
    assert state["asset_readings"]["last_sync"]["type_changes"] == [
        "asset_readings.soc: double -> text (new values in soc__v_text)"
    ]
    (row,) = rows(
        warehouse,
        "select soc, soc__v_text from heat.assets where site_id = ? and asset_kind = 'bess'",
        site,
    )
    assert row == {"soc": None, "soc__v_text": "full"}


def test_a_fractional_reading_after_whole_ones_lands_in_its_column(heat_sandbox, warehouse, capsys):
    """Acceptance: the first snapshot's readings were whole numbers (``activePowerkW: 120``);
    a later ``150.5`` went to ``active_power_kw__v_double`` with the column NULL and a
    misleading "changed the type" warning."""
    sb = heat_sandbox
    site = next(sid for sid, s in sb.truth().items() if "bess" in s["assets"])
    sb.set_asset_field(site, "bess", "activePowerkW", 30)
    sb.set_asset_field(site, "bess", "availableStorageCapacitykWh", 500)
    assert run("run", "heat") == 0
    sb.set_asset_field(site, "bess", "activePowerkW", 150.5)
    sb.set_asset_field(site, "bess", "availableStorageCapacitykWh", 487.25)
    capsys.readouterr()
    assert run("run", "heat") == 0
    assert "changed the type" not in capsys.readouterr().err
    for table in ("assets", "asset_readings"):
        assert not [c for c in columns(warehouse, table) if "__v_" in c], table
    (row,) = rows(
        warehouse,
        "select active_power_kw, available_storage_capacity_kwh from heat.assets "
        "where site_id = ? and asset_kind = 'bess'",
        site,
    )
    assert row == {"active_power_kw": 150.5, "available_storage_capacity_kwh": 487.25}
    history = rows(
        warehouse,
        "select active_power_kw as p from heat.asset_readings "
        "where site_id = ? and asset_kind = 'bess' order by snapshot_at",
        site,
    )
    assert [r["p"] for r in history] == [30.0, 150.5]


def test_every_table_exists_even_when_the_snapshot_has_no_rows_for_it(heat_sandbox, warehouse):
    """Acceptance: a group whose sites have no assets (or no site at all) got no ``assets`` /
    ``asset_readings`` tables and no ``analytics.heat_assets_current`` view; BI queries failed."""
    sb = heat_sandbox
    for site_id in sb.site_ids:
        sb.hide_site(site_id)
    assert run("run", "heat") == 0
    assert tables(warehouse) == TABLES | DLT_TABLES
    assert rows(warehouse, "select count(*) as n from analytics.heat_assets_current") == [{"n": 0}]
    for site_id in sb.site_ids:
        sb.show_site(site_id)
    assert run("run", "heat") == 0
    assert_snapshot_equals_truth(sb, warehouse)
    for site_id in sb.site_ids:  # an empty snapshot again: it retires nothing
        sb.hide_site(site_id)
    before = active_entries(warehouse)
    assert run("run", "heat") == 0
    assert active_entries(warehouse) == before


def test_a_list_without_schedules_takes_them_from_the_detail(heat_sandbox, warehouse):
    """Acceptance: a list that leaves a site's ``schedules`` out kept its old entries active
    for ever, even once the site's own object (its detail) showed them cleared."""
    sb = heat_sandbox
    a = sb.site_ids[0]
    assert run("run", "heat") == 0
    before = {e for e in active_entries(warehouse) if e[0] == a}
    assert before
    sb.list_without_schedules(a)
    assert run("run", "heat") == 0  # the detail shows the same schedules: nothing changes
    assert {e for e in active_entries(warehouse) if e[0] == a} == before
    sb.clear_schedules(a)
    assert run("run", "heat") == 0
    assert {e for e in active_entries(warehouse) if e[0] == a} == set()
    assert_snapshot_equals_truth(sb, warehouse)
