"""Tesla source against the sandbox gateway: snapshots, session reuse, stopped mode,
several gateways, and the warehouse compared with what the gateway served."""

from __future__ import annotations

import json
import stat
import time

import pytest

from tests.sources.tesla.conftest import PASSWORD, read_store, store_files

LOGIN = "/api/login/Basic"
TABLES = {
    "meter_readings",
    "battery_soe",
    "grid_status",
    "site_info",
    "gateway_status",
    "powerwalls",
    "sitemaster",
}


def tables(query) -> set[str]:
    rows = query(
        "select table_name from information_schema.tables where table_schema = 'tesla' "
        "and table_name not like '_dlt%'"
    )
    return {r[0] for r in rows}


def test_three_runs_reuse_one_login_and_load_every_reading(gateway, run, query, isolated_dlt):
    results = [run() for _ in range(3)]  # three separate "processes", like cron
    assert [r.ok for r in results] == [True, True, True], [r.error for r in results]
    assert gateway.logins == 1
    assert gateway.requests_to(LOGIN) == 1
    assert tables(query) == TABLES  # grid_faults appears with the first fault (none in 21.44)

    # every served counter landed, once, exactly as served
    served = sorted((r.tick, r.meter, r.field, r.served) for r in gateway.meters.log)
    loaded = query(
        "select meter, energy_exported, energy_imported, polled_at from tesla.meter_readings "
        "order by polled_at, meter"
    )
    assert len(loaded) == 3 * 4
    polls = sorted({row[3] for row in loaded})
    as_served = sorted(
        (polls.index(at) + 1, meter, field, value)
        for meter, exported, imported, at in loaded
        for field, value in (("energy_exported", exported), ("energy_imported", imported))
    )
    assert as_served == served

    assert (
        query("select gateway_state, version, up_time_seconds, error from tesla.gateway_status")
        == [("ok", "21.44 223a56cd", 831359.932079901, None)] * 3
    )
    assert query(
        "select gateway, grid_code, utility, timezone, nominal_system_energy_kwh "
        "from tesla.site_info"
    ) == [
        (
            "home",
            "60Hz_240V_s_UL1741SA:2019_California",
            "Pacific Gas and Electric Company",
            "America/Los_Angeles",
            13.5,
        )
    ]
    assert query("select gateway, position, package_part_number from tesla.powerwalls") == [
        ("home", 0, "3012170-05-B")
    ]
    assert query("select count(*), min(percentage) from tesla.battery_soe") == [
        (3, 42.415190953701725)
    ]
    assert query("select count(*) from tesla.sitemaster where running") == [(3,)]

    # the session is on disk, owner-only, without the password
    (path,) = store_files(isolated_dlt)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert PASSWORD not in path.read_text()
    assert read_store(isolated_dlt)["fingerprint"] == gateway.cert.sha256.replace(":", "").lower()


def test_rerun_of_the_same_poll_does_not_duplicate(gateway, run, query, monkeypatch):
    import sources.tesla

    fixed = sources.tesla.utcnow()
    monkeypatch.setattr(sources.tesla, "utcnow", lambda: fixed)
    assert run().ok and run().ok
    assert query("select count(*), count(distinct polled_at) from tesla.meter_readings") == [(4, 1)]
    assert query("select count(*) from tesla.gateway_status") == [(1,)]


def test_expired_session_logs_in_again_once(gateway, run, query):
    assert run().ok
    gateway.expire_sessions()
    result = run()
    assert result.ok, result.error
    assert gateway.logins == 2
    refused = [s for s in gateway.seen if s.method == "GET" and not s.authenticated]
    assert len(refused) == 1  # one 401, then the fresh session worked
    assert query("select count(*) from tesla.gateway_status where gateway_state = 'ok'") == [(2,)]


def test_refused_fresh_session_fails_after_one_relogin(gateway, run, query, isolated_dlt):
    assert run().ok
    gateway.always_401 = True
    result = run()
    assert not result.ok and result.exit_code == 1
    assert "refused a fresh session" in result.error and "'home'" in result.error
    assert gateway.logins == 2  # the first run's, plus exactly one more
    # /api/status (public) answered: the poll is recorded, failed; nothing else is, and the
    # refused endpoints are not taken for "restricted on this firmware" (skipped for hours)
    assert query("select gateway_state, version from tesla.gateway_status order by polled_at") == [
        ("ok", "21.44 223a56cd"),
        ("failed", "21.44 223a56cd"),
    ]
    assert query("select count(*) from tesla.sitemaster") == [(1,)]
    assert "refused_endpoints" not in read_store(isolated_dlt)


def test_a_fresh_session_refused_everywhere_costs_one_login(gateway, run, isolated_dlt):
    """/api/status answers without a session: its answer does not make the fresh session look
    used (which would take the first refusal for an expiry and log in again)."""
    gateway.always_401 = True
    result = run()
    assert not result.ok and result.exit_code == 1
    assert "refused a fresh session" in result.error
    assert gateway.logins == 1
    assert "refused_endpoints" not in read_store(isolated_dlt)


def test_login_429_backs_off_across_runs_without_touching_login(
    gateway, run, isolated_dlt, monkeypatch
):
    gateway.login_limit = 0
    first = run()
    assert not first.ok
    assert "rate limited the login (429)" in first.error and "no login before" in first.error
    assert gateway.requests_to(LOGIN) == 1
    # later runs (cron, every 5 min) fail fast: no request to the login at all
    for _ in range(3):
        again = run()
        assert not again.ok and "earlier login was rate limited" in again.error
    assert gateway.requests_to(LOGIN) == 1
    # once the back-off has passed, one login and the data
    (path,) = store_files(isolated_dlt)
    data = json.loads(path.read_text())
    data["login_not_before"] -= 3600
    path.write_text(json.dumps(data))
    gateway.login_limit = 5
    assert run().ok
    assert gateway.requests_to(LOGIN) == 2 and gateway.logins == 1


def test_login_429_honours_retry_after(gateway, run, isolated_dlt):
    gateway.login_limit, gateway.retry_after = 0, 120
    before = time.time()
    assert not run().ok
    until = read_store(isolated_dlt)["login_not_before"]
    assert before + 120 <= until <= time.time() + 120  # not the 15 min default


def test_wrong_password_fails_with_a_clear_error(make_gateway, run, monkeypatch):
    gw = make_gateway()
    monkeypatch.setenv("SOURCES__TESLA__PASSWORD", "not-the-password")
    result = run()
    assert not result.ok and result.exit_code == 77
    assert "refused the login" in result.error and "SOURCES__TESLA__PASSWORD" in result.error
    assert gw.requests_to(LOGIN) == 1  # once, no retry


def test_stopped_site_controller_is_recorded_not_a_crash(gateway, run, query):
    assert run().ok
    gateway.stopped = True
    stopped = run()
    assert stopped.ok, stopped.error
    gateway.stopped = False
    assert run().ok
    states = query(
        "select s.gateway_state, count(m.meter) from tesla.gateway_status s left join "
        "tesla.meter_readings m using (gateway, polled_at) group by s.gateway_state, s.polled_at "
        "order by s.polled_at"
    )
    assert states == [("ok", 4), ("stopped", 0), ("ok", 4)]
    assert query("select count(*) from tesla.battery_soe") == [(2,)]
    assert query("select status, running from tesla.sitemaster order by polled_at") == [
        ("StatusUp", True),
        ("StatusDown", False),
        ("StatusUp", True),
    ]
    # 502 is not retried: one request per stoppable endpoint while stopped
    assert gateway.requests_to("/api/meters/aggregates") == 3


def test_a_failing_endpoint_does_not_cost_the_readings(gateway, run, query):
    gateway.faults["/api/powerwalls"] = 500  # persistently, beyond the retries
    result = run()
    assert result.ok, result.error
    assert gateway.requests_to("/api/powerwalls") == 3  # 1 try + 2 retries (max_attempts)
    ((state, error),) = query("select gateway_state, error from tesla.gateway_status")
    assert state == "ok" and "/api/powerwalls" in error
    assert query("select count(*) from tesla.meter_readings") == [(4,)]
    assert "powerwalls" not in {
        r[0] for r in query("select table_name from information_schema.tables")
    }


def test_endpoint_refused_to_a_fresh_session_costs_one_login_not_one_per_run(gateway, run, query):
    gateway.faults["/api/powerwalls"] = 403  # newer firmware: not for the customer account
    first = run()
    assert first.ok, first.error
    assert gateway.logins == 2  # the run's login, and one retry with a fresh session
    assert gateway.requests_to("/api/powerwalls") == 2
    for _ in range(2):  # later runs skip it: no login, no request
        assert run().ok
    assert gateway.logins == 2 and gateway.requests_to("/api/powerwalls") == 2
    assert query("select count(*) from tesla.meter_readings") == [(12,)]
    errors = [r[0] for r in query("select error from tesla.gateway_status order by polled_at")]
    assert "refused a fresh session" in errors[0] and errors[1:] == [None, None]


def test_one_unreachable_gateway_fails_the_run_not_the_others(
    make_gateway, run, query, monkeypatch
):
    good = make_gateway(configure=False)
    down = make_gateway(configure=False)
    down.stop()
    monkeypatch.setenv(
        "SOURCES__TESLA__GATEWAYS",
        json.dumps(
            [
                {"name": "garage", "host": good.host, "password": PASSWORD},
                {"name": "barn", "host": down.host, "password": PASSWORD},
            ]
        ),
    )
    result = run()
    assert not result.ok and result.exit_code == 1
    assert result.error.startswith("gateway 'barn' gave no data this poll (gateway_state "
                                   "'unreachable'): tesla barn: could not open")  # fmt: skip
    assert "garage" not in result.error
    rows = query("select gateway, gateway_state, error from tesla.gateway_status order by 1")
    assert [r[:2] for r in rows] == [("barn", "unreachable"), ("garage", "ok")]
    assert "could not open a TLS connection" in rows[0][2]
    assert query("select distinct gateway from tesla.meter_readings") == [("garage",)]


def test_only_gateway_unreachable_fails_the_run(make_gateway, run):
    gw = make_gateway()
    gw.stop()
    result = run()
    assert not result.ok and result.exit_code == 69
    assert "could not open a TLS connection" in result.error


def test_poll_loads_every_snapshot_with_one_login(gateway, warehouse, query):
    from pipelines.poll import poll_source
    from pipelines.registry import get

    ticks = iter(range(10_000))  # a clock that advances 0.1 s per reading: no real waiting

    result = poll_source(
        get("tesla"), warehouse, every=0.1, duration=1.0, batch=0.5,
        clock=lambda: next(ticks) / 10,
    )  # fmt: skip
    assert result.ok, result.error
    assert gateway.logins == 1
    (count,) = query("select count(distinct polled_at) from tesla.meter_readings")[0]
    assert count == result.polls >= 3
    assert gateway.requests_to("/api/meters/aggregates") == result.polls


@pytest.mark.parametrize("shape", ["list", "tables"])
def test_several_gateways_from_config(make_gateway, run, query, monkeypatch, shape):
    a = make_gateway(configure=False, variant="23.28")
    b = make_gateway(configure=False, variant="1.50")
    entries = {
        "east": {"host": a.host, "password": PASSWORD},
        "west": {"host": b.host, "password": PASSWORD},
    }
    value = [{"name": k, **v} for k, v in entries.items()] if shape == "list" else entries
    monkeypatch.setenv("SOURCES__TESLA__GATEWAYS", json.dumps(value))
    assert run().ok
    assert query("select gateway, version from tesla.gateway_status order by 1") == [
        ("east", "23.28.2 27626f98"),
        ("west", "1.50.1 c58c2df3"),
    ]
    assert a.logins == 1 and b.logins == 1


def test_login_429_retry_after_as_an_http_date_and_a_readable_wait(gateway, run, isolated_dlt):
    """Retry-After may be an HTTP date (RFC 9110); the wait is said in people's units, not
    "(in 0 min)" for a 30 s back-off."""
    import re
    from datetime import UTC, datetime, timedelta
    from email.utils import format_datetime

    gateway.login_limit = 0
    gateway.retry_after = format_datetime(datetime.now(UTC) + timedelta(hours=1), usegmt=True)
    before = time.time()
    result = run()
    assert not result.ok
    until = read_store(isolated_dlt)["login_not_before"]
    assert before + 3500 <= until <= time.time() + 3600  # the date, not the 15 min default
    assert re.search(r"\(in (59|60) min\)", result.error), result.error

    (path,) = store_files(isolated_dlt)
    path.write_text(json.dumps({**read_store(isolated_dlt), "login_not_before": time.time() + 30}))
    again = run()
    assert re.search(r"\(in \d+ s\)", again.error), again.error


def test_a_session_expiring_within_a_poll_is_renewed_not_taken_for_a_refusal(
    gateway, run, query, isolated_dlt
):
    """A gateway whose sessions last fewer requests than one poll makes: every 401 after the
    session served requests is an expiry (log in again, retry), never "refused to a fresh
    session" (which would skip the endpoint for hours, readings included)."""
    gateway.session_max_requests = 5  # one poll makes 8 requests
    gateway.login_limit = 20
    for _ in range(4):
        result = run()
        assert result.ok, result.error
    assert "refused_endpoints" not in read_store(isolated_dlt)
    assert query("select count(distinct polled_at) from tesla.meter_readings") == [(4,)]
    assert query("select count(*) from tesla.sitemaster") == [(4,)]
    assert query("select count(*), count(error) from tesla.gateway_status") == [(4, 0)]
    assert gateway.logins <= 2 * 4  # at most a renewal or two per poll


def test_sessions_that_keep_expiring_cost_a_bounded_number_of_logins(
    gateway, run, query, isolated_dlt
):
    gateway.session_max_requests = 1  # every request needs a new session
    result = run()
    assert result.ok, result.error  # what answered is loaded: data came, the run is ok
    (warning,) = result.warnings  # but the summary says the poll stopped early
    assert warning.startswith(
        "gateway 'home': the poll stopped early (gateway_state 'failed'); what answered is "
        "loaded: tesla /api/system_status/grid_status: gateway 'home': sessions keep expiring"
    ), warning
    assert gateway.logins == 3  # the first login and two renewals, then the poll stops
    assert "refused_endpoints" not in read_store(isolated_dlt)  # the next run tries again
    ((state, error),) = query("select gateway_state, error from tesla.gateway_status")
    assert state == "failed" and "sessions keep expiring" in error
    assert query("select count(distinct polled_at) from tesla.meter_readings") == [(1,)]


UNIT_COLUMNS = {  # the 21.44 capture's site_info, units as the HEAT tables name them
    "max_system_energy_kwh": 13.5,
    "max_system_power_kw": 5.0,
    "max_site_meter_power_kw": 1e9,
    "min_site_meter_power_kw": -1e9,
    "nominal_system_energy_kwh": 13.5,
    "nominal_system_power_kw": 5.0,
}


def site_info_columns(query) -> set[str]:
    rows = query(
        "select column_name from information_schema.columns "
        "where table_schema = 'tesla' and table_name = 'site_info'"
    )
    return {r[0] for r in rows}


def test_site_info_units_are_words_and_an_old_warehouse_keeps_loading(gateway, run, query):
    """``nominal_system_energy_kWh`` lands as ``nominal_system_energy_kwh`` (dlt alone makes
    it ``..._k_wh``). A warehouse loaded before the rename keeps loading: the new columns are
    added and filled, the old ones stay (empty from then on)."""
    from sources.tesla import rows

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(rows, "column_name", lambda key: key)  # what earlier releases did
        assert run().ok
    old = {"nominal_system_energy_k_wh", "max_system_power_k_w"}
    assert old <= site_info_columns(query)
    assert not set(UNIT_COLUMNS) & site_info_columns(query)

    result = run()
    assert result.ok, result.error
    assert set(UNIT_COLUMNS) | old <= site_info_columns(query)
    names = ", ".join(UNIT_COLUMNS)
    assert query(f"select {names} from tesla.site_info") == [tuple(UNIT_COLUMNS.values())]
    assert query(
        "select nominal_system_energy_k_wh, max_system_power_k_w from tesla.site_info"
    ) == [(None, None)]
    assert "analytics.tesla_gateway_states" in result.views


def test_a_new_warehouse_has_no_split_unit_columns(gateway, run, query):
    assert run().ok
    columns = site_info_columns(query)
    assert set(UNIT_COLUMNS) <= columns
    assert [c for c in columns if c.endswith(("_k_wh", "_k_w"))] == []
