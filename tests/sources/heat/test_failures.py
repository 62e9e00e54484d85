"""HEAT failures against the sandbox: /health down, a revoked key, a site gone between list
and detail, 5xx that persist; each fails clearly (or skips), loads nothing partial, and a rerun
heals. Configuration: missing base URL, v0, a base URL with the API path."""

from __future__ import annotations

import pytest

from tests.sources.heat.conftest import (
    HEAT_KEY,
    HEAT_SECRET_PART,
    active_entries,
    rows,
    tables,
)
from tests.sources.heat.warehouse_check import assert_snapshot_equals_truth, loads, run


# --------------------------------------------------------------------------- failures
@pytest.mark.parametrize("down", [503, "timeout"])
def test_health_down_loads_nothing_and_fails_clearly(heat_sandbox, warehouse, capsys, down):
    assert run("run", "heat") == 0
    loaded = loads(warehouse)
    heat_sandbox.clear_schedules(heat_sandbox.site_ids[0])
    heat_sandbox.set_health(down, delay=1.0)
    heat_sandbox.clear_requests()
    assert run("run", "heat") == 1
    out = capsys.readouterr().out
    assert "heat /health: the HEAT API reports it is unavailable" in out
    assert ("HTTP 503" if down == 503 else "no answer in time") in out
    assert heat_sandbox.count_requests("list") == heat_sandbox.count_requests("detail") == 0
    assert loads(warehouse) == loaded
    heat_sandbox.reset_faults()
    assert run("run", "heat") == 0
    assert_snapshot_equals_truth(heat_sandbox, warehouse)


def test_health_down_does_not_stop_other_sources(heat_sandbox, sk_sandbox, warehouse, capsys):
    heat_sandbox.set_health(503)
    assert run("run") == 1  # every configured source
    out = capsys.readouterr().out
    assert "solarknock: ok" in out and "heat: FAILED" in out
    assert not tables(warehouse)  # nothing of heat, solarknock loaded
    assert tables(warehouse, "solarknock")


def test_revoked_key_fails_fast_naming_the_key(heat_sandbox, warehouse, capsys):
    heat_sandbox.revoke_key()
    assert run("run", "heat") == 1
    captured = capsys.readouterr()
    assert (
        "heat /api/v1/public/sites: API key revoked or expired [401 unauthorized]" in captured.out
    )
    assert "create a new key in the access group" in captured.out
    assert "SOURCES__HEAT__API_KEY" in captured.out
    assert heat_sandbox.count_requests("list") == 1 and heat_sandbox.count_requests() == 2
    for text in (captured.out, captured.err):
        assert HEAT_KEY not in text and HEAT_SECRET_PART not in text


def test_a_site_gone_between_list_and_detail_is_skipped(heat_sandbox, warehouse, capsys):
    gone = heat_sandbox.site_ids[1]
    heat_sandbox.vanish_on_detail(gone)
    assert run("run", "heat") == 0
    err = capsys.readouterr().err
    assert (
        f"WARNING solarsync.heat: heat /api/v1/public/sites/{gone}: the site is gone (404)" in err
    )
    assert {r["site_id"] for r in rows(warehouse, "select site_id from heat.assets")} == set(
        heat_sandbox.site_ids
    ) - {gone}
    assert len(rows(warehouse, "select * from heat.sites")) == 4  # it was in the list


def test_5xx_on_every_detail_loads_nothing_then_a_rerun_heals(heat_sandbox, warehouse, capsys):
    sb = heat_sandbox
    assert run("run", "heat") == 0
    loaded, before = loads(warehouse), active_entries(warehouse)
    sb.clear_schedules(sb.site_ids[0])
    sb.fail_next(100, 500, endpoint="detail")
    assert run("run", "heat") == 1
    out = capsys.readouterr().out
    assert "heat /api/v1/public/sites/" in out and "500" in out
    assert loads(warehouse) == loaded and active_entries(warehouse) == before  # nothing retired
    sb.reset_faults()
    sb.fail_next(2, 500, endpoint="list")  # transient: retried
    assert run("run", "heat") == 0
    assert_snapshot_equals_truth(sb, warehouse)
    assert not [e for e in active_entries(warehouse) if e[0] == sb.site_ids[0]]


def test_one_broken_detail_skips_only_that_sites_assets(heat_sandbox, warehouse, capsys):
    """A site whose detail keeps failing (5xx after the retries) does not hold back the
    snapshot: the other sites load, its list data (status, schedules) loads, its assets and
    readings are not updated, and the summary says so."""
    sb = heat_sandbox
    assert run("run", "heat") == 0
    broken = sb.site_ids[1]
    before = rows(
        warehouse, "select * from heat.assets where site_id = ? order by asset_kind", broken
    )
    sb.clear_schedules(broken)
    sb.set_online(broken, False)
    sb.fail_site_detail(broken, 503)
    capsys.readouterr()
    assert run("run", "heat") == 0
    out = capsys.readouterr().out
    assert f"warning: site {broken}: its detail failed" in out, out
    assert "assets and readings are not updated this run" in out
    # its list data is current: offline, schedules retired
    (site,) = rows(warehouse, "select is_online from heat.sites where site_id = ?", broken)
    assert site["is_online"] is False
    assert not [e for e in active_entries(warehouse) if e[0] == broken]
    # its assets are as before; the other sites' readings have a row for this snapshot
    after = rows(
        warehouse, "select * from heat.assets where site_id = ? order by asset_kind", broken
    )
    assert after == before
    snapshots = rows(
        warehouse,
        "select site_id, count(*) as n from heat.asset_readings group by site_id order by site_id",
    )
    counts = {r["site_id"]: r["n"] for r in snapshots}
    assert all(counts[s] > counts[broken] for s in sb.site_ids if s != broken and s in counts)
    sb.reset_faults()
    assert run("run", "heat") == 0
    assert_snapshot_equals_truth(sb, warehouse)


def test_missing_base_url_is_a_configuration_error(heat_sandbox, monkeypatch, capsys):
    monkeypatch.delenv("SOURCES__HEAT__BASE_URL")
    assert run("run", "heat") == 1
    assert "SOURCES__HEAT__BASE_URL" in capsys.readouterr().out
    assert heat_sandbox.count_requests() == 0


def test_check_reports_health_list_and_detail(heat_sandbox, capsys):
    assert run("check", "heat") == 0
    out = capsys.readouterr().out
    assert "heat: ok" in out and "4 site(s) visible" in out and "asset(s)" in out


def test_api_version_v0_and_a_base_url_with_the_path(heat_sandbox, warehouse, monkeypatch):
    monkeypatch.setenv("SOURCES__HEAT__API_VERSION", "v0")
    assert run("run", "heat") == 0
    assert {r.path.split("/")[2] for r in heat_sandbox.requests if r.endpoint == "list"} == {"v0"}
    monkeypatch.setenv("SOURCES__HEAT__BASE_URL", heat_sandbox.base_url + "/api/v1/public")
    assert run("run", "heat") == 0
    assert heat_sandbox.requests[-1].path.startswith("/api/v1/public/sites/")
    assert_snapshot_equals_truth(heat_sandbox, warehouse)


def test_detail_calls_run_concurrently_within_the_bound(heat_sandbox, warehouse, monkeypatch):
    for _ in range(4):
        heat_sandbox.add_site()
    heat_sandbox.slow(0.1)
    monkeypatch.setenv("SOURCES__HEAT__CONCURRENCY", "3")
    assert run("run", "heat") == 0
    assert heat_sandbox.count_requests("detail") == 8
    assert heat_sandbox.max_in_flight == 3  # in parallel, never more than configured
    assert_snapshot_equals_truth(heat_sandbox, warehouse)


def test_concurrency_out_of_range_is_a_configuration_error(heat_sandbox, monkeypatch, capsys):
    monkeypatch.setenv("SOURCES__HEAT__CONCURRENCY", "0")
    assert run("run", "heat") == 1
    assert "sources.heat.concurrency" in capsys.readouterr().out
    assert heat_sandbox.count_requests() == 0


def test_no_server_at_the_base_url_is_not_reported_as_the_api_down(
    heat_sandbox, warehouse, monkeypatch, capsys
):
    """Acceptance: a refused connection (wrong port, http:// for an https server) was reported
    as "the HEAT API reports it is unavailable (no answer in time)"; it names the URL now."""
    import socket

    with socket.socket() as free:
        free.bind(("127.0.0.1", 0))
        port = free.getsockname()[1]
    monkeypatch.setenv("SOURCES__HEAT__BASE_URL", f"http://127.0.0.1:{port}")
    assert run("run", "heat") == 1
    out = capsys.readouterr().out
    assert f"heat /health: could not connect to http://127.0.0.1:{port}" in out
    assert "check sources.heat.base_url" in out and "reports it is unavailable" not in out
    assert not warehouse.exists() or not tables(warehouse)
