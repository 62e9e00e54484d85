"""Compare the warehouse with the HEAT sandbox, through the CLI."""

from __future__ import annotations

from pipelines.cli import main
from tests.sources.heat.conftest import active_entries, rows, snapshots, truth_entries, ts


def run(*args: str) -> int:
    return main(["--no-progress", *args])


def loads(warehouse) -> int:
    return rows(warehouse, "select count(*) as n from heat._dlt_loads where status = 0")[0]["n"]


def assert_snapshot_equals_truth(sb, warehouse, at=None) -> None:
    """sites, the latest status and readings, and the active schedules equal the sandbox."""
    truth = sb.truth()
    at = at or snapshots(warehouse)[-1]
    sites = {r["site_id"]: r for r in rows(warehouse, "select * from heat.sites")}
    assert set(sites) >= set(truth)
    for sid, site in truth.items():
        row = sites[sid]
        assert (row["site_name"], row["is_online"], row["reported_at"], row["last_seen_at"]) == (
            site["siteName"],
            site["isOnline"],
            ts(site["reportedAt"]),
            at,
        )
    status = rows(warehouse, "select * from heat.site_status_history where snapshot_at = ?", at)
    assert {(r["site_id"], r["is_online"]) for r in status} == {
        (sid, s["isOnline"]) for sid, s in truth.items()
    }
    listed = active_entries(warehouse)
    assert {e for e in listed if e[0] in truth} == truth_entries(truth)
    assets = rows(warehouse, "select * from heat.assets where last_seen_at = ?", at)
    assert {
        (r["site_id"], r["asset_kind"], r["asset_id"], r["active_power_kw"]) for r in assets
    } == {
        (sid, kind, a["id"], a["activePowerkW"])
        for sid, s in truth.items()
        for kind, a in s["assets"].items()
    }
    readings = rows(warehouse, "select * from heat.asset_readings where snapshot_at = ?", at)
    assert len(readings) == len(assets)
