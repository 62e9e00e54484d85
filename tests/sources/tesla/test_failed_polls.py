"""A poll that got no data from a gateway beyond its public /api/status is a failed poll: the
run (and ``solarsync poll``) exits 1, and what was read (the status, the ``failed`` row) is
loaded all the same. The gateways that answered load as usual."""

from __future__ import annotations

import json
import logging

from tests.sources.tesla.conftest import PASSWORD, read_store, store_files
from tests.sources.tesla.test_energy_view import _StopAfter

LOGIN = "/api/login/Basic"
VERSION = "21.44 223a56cd"  # /api/status of the 21.44 capture


def test_the_run_that_receives_the_login_429_exits_1_and_loads_what_was_read(
    gateway, run, query, isolated_dlt, capsys
):
    from pipelines import cli

    assert run().ok  # a session is recorded
    gateway.expire_sessions()
    gateway.login_limit = 0  # the renewal is answered 429
    capsys.readouterr()
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    try:
        code = cli.main(["--no-progress", "run", "tesla"])
    finally:  # the CLI points the root logger at this test's captured stderr
        root.handlers[:], root.level = handlers, level
    out = capsys.readouterr().out
    assert code == 1, out
    assert "  tesla: FAILED" in out
    (error,) = [line for line in out.splitlines() if line.startswith("    error: ")]
    assert error.startswith(
        "    error: gateway 'home' gave no data this poll (gateway_state 'failed'): "
        f"tesla {LOGIN}: gateway 'home': the gateway rate limited the login (429); no login "
        "before "
    ), error
    assert "nothing to do but wait" in error
    assert gateway.requests_to(LOGIN) == 2  # the first run's login and the one answered 429
    # what that poll read is loaded: the public status, and the poll recorded as failed
    rows = query(
        "select gateway_state, version, error from tesla.gateway_status order by polled_at"
    )
    assert [r[:2] for r in rows] == [("ok", VERSION), ("failed", VERSION)]
    assert rows[0][2] is None and "rate limited the login (429)" in rows[1][2]
    assert query("select count(distinct polled_at) from tesla.meter_readings") == [(1,)]

    # once the back-off has passed, a run is ok again: no verdict outlives its run
    (path,) = store_files(isolated_dlt)
    path.write_text(json.dumps({**read_store(isolated_dlt), "login_not_before": 0}))
    gateway.login_limit = 5
    again = run()
    assert again.ok and again.exit_code == 0, again.error
    assert query("select count(distinct polled_at) from tesla.meter_readings") == [(2,)]


def test_a_password_changed_while_a_session_is_recorded_fails_the_run(gateway, run, query):
    assert run().ok
    gateway.password = "Changed-On-The-Gateway-1"
    gateway.expire_sessions()
    result = run()
    assert not result.ok and result.exit_code == 1
    assert result.error.startswith(
        "gateway 'home' gave no data this poll (gateway_state 'failed'): "
        f"tesla {LOGIN}: gateway 'home' refused the login [401]. check its password"
    ), result.error
    assert "SOURCES__TESLA__PASSWORD" in result.error
    assert gateway.requests_to(LOGIN) == 2  # one attempt with the old password, no loop
    assert query("select gateway_state, version from tesla.gateway_status order by polled_at") == [
        ("ok", VERSION),
        ("failed", VERSION),
    ]


def test_every_endpoint_failing_but_status_fails_the_run(gateway, run, query):
    """Not only login problems: a gateway whose every data endpoint errors (5xx after the
    retries) gave no data either."""
    for path in (
        "/api/sitemaster", "/api/meters/aggregates", "/api/system_status/soe",
        "/api/system_status/grid_status", "/api/site_info", "/api/powerwalls",
        "/api/system_status/grid_faults",
    ):  # fmt: skip
        gateway.faults[path] = 500
    result = run()
    assert not result.ok and result.exit_code == 1
    assert result.error.startswith(
        "gateway 'home' gave no data this poll (gateway_state 'failed'): tesla /api/sitemaster"
    ), result.error
    # the row says the poll failed (it said 'ok', with the error beside it), and so does the
    # latest-state view a dashboard reads
    assert query(
        "select gateway_state, version, error like '%/api/powerwalls%' from tesla.gateway_status"
    ) == [("failed", VERSION, True)]
    assert query("select gateway, gateway_state from analytics.tesla_gateway_states") == [
        ("home", "failed")
    ]


def test_one_gateway_failing_fails_the_source_and_the_others_load(
    make_gateway, run, query, monkeypatch
):
    east = make_gateway(configure=False)
    west = make_gateway(configure=False)
    monkeypatch.setenv(
        "SOURCES__TESLA__GATEWAYS",
        json.dumps(
            [
                {"name": "east", "host": east.host, "password": PASSWORD},
                {"name": "west", "host": west.host, "password": PASSWORD},
            ]
        ),
    )
    assert run().ok
    west.expire_sessions()
    west.login_limit = 0
    result = run()
    assert not result.ok and result.exit_code == 1
    assert result.error.startswith("gateway 'west' gave no data this poll"), result.error
    assert "east" not in result.error
    assert query(
        "select gateway, gateway_state, version from tesla.gateway_status "
        "order by polled_at, gateway"
    ) == [
        ("east", "ok", VERSION),
        ("west", "ok", VERSION),
        ("east", "ok", VERSION),
        ("west", "failed", VERSION),
    ]
    assert query(
        "select gateway, count(distinct polled_at) from tesla.meter_readings group by 1 order by 1"
    ) == [("east", 2), ("west", 1)]


def test_a_poll_with_no_data_from_the_gateway_counts_as_failed(
    gateway, warehouse, query, monkeypatch, capsys
):
    """``solarsync poll``: the first poll (extracted through dlt) and the later ones (journaled)
    alike. Here the sessions expire and logins are refused with 429 from the second poll on."""
    import sources.tesla
    from pipelines.poll import poll_source
    from pipelines.registry import get

    original = sources.tesla.utcnow
    taken = []

    def snapshot_instant():
        taken.append(1)
        if len(taken) == 2:
            gateway.expire_sessions()
            gateway.login_limit = 0
        return original()

    monkeypatch.setattr(sources.tesla, "utcnow", snapshot_instant)
    ticks = iter(range(100_000))
    result = poll_source(
        get("tesla"), warehouse, every=0.1, duration=100.0, batch=1000.0,
        clock=lambda: next(ticks) / 10, stop=_StopAfter(sources.tesla, 3),
    )  # fmt: skip
    assert result.polls == 3
    # poll 2 read /api/status, then the renewal got 429; poll 3 fails fast (logins blocked)
    assert result.failed_polls == 2, result.poll_errors
    assert not result.ok and result.exit_code == 1
    assert result.poll_errors[0].startswith(
        "gateway 'home' gave no data this poll (gateway_state 'failed'): tesla /api/login/Basic"
    )
    assert "earlier login was rate limited" in result.poll_errors[1]
    assert query("select gateway_state, version from tesla.gateway_status order by polled_at") == [
        ("ok", VERSION),
        ("failed", VERSION),
    ]
    assert query("select count(distinct polled_at) from tesla.meter_readings") == [(1,)]


def test_a_first_poll_with_no_data_counts_as_failed(gateway, run, warehouse, query, monkeypatch):
    import sources.tesla
    from pipelines.poll import poll_source
    from pipelines.registry import get

    assert run().ok
    gateway.expire_sessions()
    gateway.login_limit = 0
    monkeypatch.setattr(sources.tesla, "utcnow", sources.tesla.utcnow)  # _StopAfter wraps it
    ticks = iter(range(100_000))
    result = poll_source(
        get("tesla"), warehouse, every=0.1, duration=100.0, batch=1000.0,
        clock=lambda: next(ticks) / 10, stop=_StopAfter(sources.tesla, 1),
    )  # fmt: skip
    assert result.polls == 1 and result.failed_polls == 1, result.poll_errors
    assert not result.ok and result.exit_code == 1
    assert result.poll_errors[0].startswith("gateway 'home' gave no data this poll")
    assert query("select gateway_state from tesla.gateway_status order by polled_at") == [
        ("ok",),
        ("failed",),
    ]
