"""HEAT history through the CLI: what makes a new schedule entry version (``entry_hash``), the
upgrade of warehouses written with dlt's own row hash, and site availability with the
snapshots a site was missing from (issue 11, HEAT)."""

from __future__ import annotations

import dlt
import pytest

import sources.heat as heat_source
from pipelines.views import ViewsOutcome
from sources.heat.model import entry_hash
from sources.heat.upgrade import fill_entry_hashes
from tests.sources.heat.conftest import active_entries, columns, rows, snapshots, ts
from tests.sources.heat.warehouse_check import assert_snapshot_equals_truth, run

VERSIONS = (
    "select site_id, asset, type, start_at, _dlt_valid_from as f, _dlt_valid_to as t "
    "from heat.schedule_entries order by all"
)


def _first_grid_entry(sb, site):
    grid = next(s for s in sb.truth()[site]["schedules"] if s["asset"] == "grid")
    return grid, grid["entries"][0]


def _change_value(sb, site, delta=7):
    """One entry of the site's grid schedule gets a new value; returns (type, start_at)."""
    grid, entry = _first_grid_entry(sb, site)
    changed = dict(entry, value=entry["value"] + delta)
    sb.set_schedule(site, grid["asset"], grid["type"], [changed, *grid["entries"][1:]])
    return grid["type"], ts(entry["startAt"])


# --------------------------------------------------------------------------- entry versions
def test_a_field_added_to_unchanged_entries_makes_no_new_version(heat_sandbox, warehouse):
    """Issue 11: the API adding ``priority`` to every entry made a ``changed`` version of every
    entry and reset ``known_since`` of the whole fleet."""
    sb = heat_sandbox
    a = sb.site_ids[0]
    assert run("run", "heat") == 0
    (s1,) = snapshots(warehouse)
    before = rows(warehouse, VERSIONS)
    assert before and {r["f"] for r in before} == {s1}

    sb.set_entry_field("priority", "high")  # every entry of every site, values unchanged
    assert run("run", "heat") == 0
    s1, s2 = snapshots(warehouse)
    assert rows(warehouse, VERSIONS) == before  # no version ended, none added
    current = rows(warehouse, "select known_since from analytics.heat_schedules_current")
    assert len(current) == len(before) and {r["known_since"] for r in current} == {s1}
    history = rows(warehouse, "select ended_by from analytics.heat_schedule_history")
    assert {r["ended_by"] for r in history} == {"active"}
    assert "priority" in columns(warehouse, "schedule_entries")  # the new column is there
    assert_snapshot_equals_truth(sb, warehouse)

    # a real change still makes exactly one version, which carries the new field
    type_, start = _change_value(sb, a)
    assert run("run", "heat") == 0
    s3 = snapshots(warehouse)[-1]
    after = rows(warehouse, VERSIONS)
    assert len(after) == len(before) + 1
    assert [r for r in after if r["f"] == s3] == [
        {"site_id": a, "asset": "grid", "type": type_, "start_at": start, "f": s3, "t": None}
    ]
    assert [r for r in after if r["t"] is not None] == [
        {"site_id": a, "asset": "grid", "type": type_, "start_at": start, "f": s1, "t": s3}
    ]
    (new,) = rows(
        warehouse,
        "select ended_by from analytics.heat_schedule_history where known_from = ?",
        s3,
    )
    assert new == {"ended_by": "active"}
    # the new field is in the raw table; the views list the documented fields only
    (raw,) = rows(
        warehouse, "select priority from heat.schedule_entries where _dlt_valid_from = ?", s3
    )
    assert raw == {"priority": "high"}
    (view_row,) = rows(warehouse, "select * from analytics.heat_schedule_history limit 1")
    assert "priority" not in view_row

    # the rule, as documented: a change of only a field outside the six makes no version
    sb.set_entry_field("priority", "low")
    assert run("run", "heat") == 0
    assert len(rows(warehouse, VERSIONS)) == len(after)
    assert_snapshot_equals_truth(sb, warehouse)


def test_schedule_history_names_the_site(heat_sandbox, warehouse):
    """Issue 11: ``heat_schedule_history`` had no ``site_name`` (the current view has it)."""
    sb = heat_sandbox
    assert run("run", "heat") == 0
    names = {sid: s["siteName"] for sid, s in sb.truth().items()}
    history = rows(warehouse, "select site_id, site_name from analytics.heat_schedule_history")
    assert history and {(r["site_id"], r["site_name"]) for r in history} == set(names.items())
    current = rows(warehouse, "select site_id, site_name from analytics.heat_schedules_current")
    assert {(r["site_id"], r["site_name"]) for r in current} == set(names.items())


# --------------------------------------------------------------------------- the upgrade
@pytest.fixture
def legacy_heat():
    """The source as released before ``entry_hash``: dlt's scd2 with its own row hash
    (``_dlt_id`` over every column). ``undo()`` brings the current source back."""
    columns = dict(heat_source.SCHEDULE_COLUMNS)
    del columns["entry_hash"], columns["_dlt_id"]
    disposition = dict(heat_source.SCHEDULE_WRITE_DISPOSITION)
    disposition.pop("row_version_column_name")
    with pytest.MonkeyPatch.context() as patch:  # its own: undo() leaves the sandbox env alone
        patch.setattr(heat_source, "SCHEDULE_COLUMNS", columns)
        patch.setattr(heat_source, "SCHEDULE_WRITE_DISPOSITION", disposition)
        patch.setattr(heat_source, "with_entry_hash", lambda row, *_: row)
        patch.setattr(heat_source, "_upgrade_entry_hashes", lambda: None)
        patch.setattr(heat_source.Snapshot, "snapshot_rows", lambda self: iter(()))  # no table
        # its views knew no entry_hash
        patch.setattr(
            "pipelines.destinations.duckdb.warehouse.apply_views",
            lambda *args, **kwargs: ViewsOutcome(),
        )
        yield patch


def test_the_first_load_after_the_upgrade_keeps_every_unchanged_version(
    heat_sandbox, warehouse, legacy_heat
):
    """A warehouse whose rows carry only dlt's row hash: the first snapshot with ``entry_hash``
    must match them (no new version, ``known_since`` kept), not insert every entry again."""
    sb = heat_sandbox
    a = sb.site_ids[0]
    assert run("run", "heat") == 0
    sb.set_entry_field("priority", "high")  # the churn the old release made (issue 11)
    assert run("run", "heat") == 0
    s1, s2 = snapshots(warehouse)
    assert "entry_hash" not in columns(warehouse, "schedule_entries")
    legacy = rows(warehouse, VERSIONS)
    assert {r["t"] for r in legacy} == {s2, None}  # every entry: one retired, one active
    active = active_entries(warehouse)

    legacy_heat.undo()  # the upgrade
    assert run("run", "heat") == 0
    assert rows(warehouse, VERSIONS) == legacy
    assert active_entries(warehouse) == active
    known = rows(warehouse, "select distinct known_since from analytics.heat_schedules_current")
    assert known == [{"known_since": s2}]
    # every stored row got the hash of its own six fields
    stored = rows(warehouse, "select * from heat.schedule_entries")
    assert all(r["entry_hash"] == entry_hash(r) for r in stored)
    assert {r["entry_hash"] is not None for r in stored} == {True}
    # the snapshots before heat.snapshots existed count, from heat.site_status_history
    availability = rows(warehouse, "select snapshots from analytics.heat_site_availability")
    assert availability == [{"snapshots": 3}] * len(sb.site_ids)
    state = dlt.attach("solarsync_heat").state["sources"]["heat"]["resources"]
    assert state["schedule_entries"]["entry_hash"] == 1
    assert fill_entry_hashes(dlt.attach("solarsync_heat")) == 0  # done once

    # afterwards: a change is one version, an unchanged snapshot none
    type_, start = _change_value(sb, a)
    assert run("run", "heat") == 0
    s4 = snapshots(warehouse)[-1]
    changed = [r for r in rows(warehouse, VERSIONS) if s4 in (r["f"], r["t"])]
    assert sorted((r["f"], r["t"]) for r in changed) == [(s2, s4), (s4, None)]
    assert {(r["site_id"], r["type"], r["start_at"]) for r in changed} == {(a, type_, start)}
    assert run("run", "heat") == 0
    assert len(rows(warehouse, VERSIONS)) == len(legacy) + 1
    assert_snapshot_equals_truth(sb, warehouse)


# --------------------------------------------------------------------------- availability
def test_availability_counts_the_snapshots_a_site_was_missing_from(heat_sandbox, warehouse):
    """Issue 11: a site hidden or removed from the listing looked more available than it was
    (only the snapshots that listed it were counted); a snapshot listing no site was not
    known at all, so every site still looked present in it."""
    sb = heat_sandbox
    a, b, c, d = sb.site_ids
    names = {sid: s["siteName"] for sid, s in sb.truth().items()}
    for site, online in ((a, True), (b, True), (c, True), (d, False)):
        sb.set_online(site, online)
    assert run("run", "heat") == 0  # s1: all four listed
    sb.hide_site(c)
    assert run("run", "heat") == 0  # s2: c missing
    for site in (a, b, d):
        sb.hide_site(site)
    assert run("run", "heat") == 0  # s3: no site listed at all
    present = rows(warehouse, "select site_id, in_latest_snapshot from analytics.heat_sites")
    assert {r["site_id"]: r["in_latest_snapshot"] for r in present} == dict.fromkeys(
        (a, b, c, d), False
    )
    for site in (a, b, d):
        sb.show_site(site)
    e = sb.add_site()
    sb.set_online(e, True)
    names[e] = sb.truth()[e]["siteName"]
    assert run("run", "heat") == 0  # s4: c still missing, e new
    s1, s2, s3, s4 = (
        r["snapshot_at"] for r in rows(warehouse, "select * from heat.snapshots order by 1")
    )
    assert snapshots(warehouse) == [s1, s2, s4]  # s3 has no status row: heat.snapshots has it
    assert rows(warehouse, "select sites_listed from heat.snapshots order by snapshot_at") == [
        {"sites_listed": n} for n in (4, 3, 0, 4)
    ]

    found = rows(
        warehouse,
        "select site_id, site_name, snapshots, snapshots_online, snapshots_offline, "
        "snapshots_missing, online_pcnt, first_snapshot_at, last_snapshot_at "
        "from analytics.heat_site_availability",
    )
    expected = {
        a: (4, 3, 0, 1, 75.0, s1, s4),
        b: (4, 3, 0, 1, 75.0, s1, s4),
        c: (4, 1, 0, 3, 25.0, s1, s1),
        d: (4, 0, 3, 1, 0.0, s1, s4),
        e: (1, 1, 0, 0, 100.0, s4, s4),  # snapshots before it was first listed do not count
    }
    assert {r["site_id"]: tuple(r.values())[1:] for r in found} == {
        sid: (names[sid], *counts) for sid, counts in expected.items()
    }
