"""SolarKnock end to end against the sandbox: after every adversarial run, a rerun leaves the
warehouse exactly equal to the source (same keys, no duplicates, same updated_at/deleted_at)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import dlt
import duckdb
import pytest

from pipelines.cli import main
from tests.conftest import SK_KEY
from tests.sources.solarknock.warehouse_check import assert_equal_to_truth, warehouse_rows

REPO = Path(__file__).resolve().parents[3]


def run(*args: str) -> int:
    """One CLI invocation, in process. (The API's clock has whole seconds; the pipeline reads
    to the end of that second, so changes made just before a run are seen by it.)"""
    return main(["--no-progress", *args])


@pytest.fixture
def warehouse(isolated_dlt: Path) -> Path:
    return isolated_dlt / "warehouse.duckdb"


def checkpoints() -> dict[str, str]:
    pipeline = dlt.attach("solarsync_solarknock")
    resources = pipeline.state["sources"]["solarknock"]["resources"]
    return {name: r.get("checkpoint") for name, r in resources.items()}


def loads(warehouse: Path) -> int:
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        return con.execute(
            "select count(*) from solarknock._dlt_loads where status = 0"
        ).fetchone()[0]
    finally:
        con.close()


def test_full_sync_then_nightly_noop(sk_sandbox, warehouse, capsys):
    assert run("run", "solarknock") == 0
    assert_equal_to_truth(sk_sandbox, warehouse)
    out = capsys.readouterr().out
    assert "solarknock: ok" in out and "knocks" in out

    sk_sandbox.clear_requests()
    assert run("run", "solarknock") == 0
    # one request per endpoint: /org (server clock) + 7 lists, nothing re-read in bulk
    assert sk_sandbox.count_requests() == 8
    assert_equal_to_truth(sk_sandbox, warehouse)
    for info in sk_sandbox.requests:
        if info.endpoint != "org":
            assert info.query.get("include_deleted") == "true"
            assert "since" in info.query and "until" in info.query


def test_analytics_views_show_live_rows_with_lists_as_bridge_views(sk_sandbox, warehouse):
    assert run("run", "solarknock") == 0
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        one = lambda sql: con.execute(sql).fetchone()  # noqa: E731
        live = [r for r in sk_sandbox.truth("knocks") if r["deleted_at"] is None]
        assert one("select count(*) from analytics.knocks") == (len(live),)
        truth_actions = {
            (r["id"], i, action)
            for r in live
            for i, action in enumerate(r["actions_taken"], start=1)
        }
        got = con.execute("select knock_id, position, action from analytics.knock_actions")
        assert set(got.fetchall()) == truth_actions
        text = dict(con.execute("select id, actions_taken from analytics.knocks").fetchall())
        assert text == {r["id"]: ", ".join(r["actions_taken"]) for r in live}
        live_leads = [r for r in sk_sandbox.truth("leads") if r["deleted_at"] is None]
        assert one("select count(*), sum(attachment_count) from analytics.leads") == (
            len(live_leads),
            sum(len(r["attachments"]) for r in live_leads),
        )
        assert one("select count(*) from analytics.lead_actions") == (
            sum(len(r["actions_taken"]) for r in live_leads),
        )
        assert one("select count(*) from analytics.lead_attachments") == (
            sum(len(r["attachments"]) for r in live_leads),
        )
        assert one(
            "select count(*) from analytics.lead_attachments where status = 'stored' and sha256 is not null"
        ) == one("select count(*) from analytics.lead_attachments")
        live_days = [r for r in sk_sandbox.truth("daily-stats") if r["deleted_at"] is None]
        assert one("select count(*) from analytics.rep_daily_knock_times") == (
            sum(len(r["knock_timestamps"]) for r in live_days),
        )
        assert one(
            "select count(*) from analytics.rep_daily_activity a join ("
            "  select user_id, date, min(knocked_at) f, max(knocked_at) l, count(*) n"
            "  from analytics.rep_daily_knock_times group by all) t using (user_id, date)"
            " where a.first_knock_at = t.f and a.last_knock_at = t.l"
        ) == (sum(1 for r in live_days if r["knock_timestamps"]),)
    finally:
        con.close()


def test_updates_inserts_and_soft_deletes(sk_sandbox, warehouse):
    assert run("run", "solarknock") == 0
    deleted = sk_sandbox.soft_delete("knocks", n=7)
    sk_sandbox.update("leads", n=12)
    sk_sandbox.insert("appointments", n=4)
    sk_sandbox.update("daily-stats", n=3)
    sk_sandbox.soft_delete("counties", n=1)
    assert run("run", "solarknock") == 0
    assert_equal_to_truth(sk_sandbox, warehouse)
    rows = {r["id"]: r for r in warehouse_rows(warehouse, "knocks")}
    for key in deleted:
        assert rows[key if isinstance(key, str) else key[0]]["deleted_at"] is not None


def test_mutations_during_a_sync(sk_sandbox, warehouse):
    knocks_seen = []

    def mutate(sb, info):
        if info.endpoint == "knocks":
            knocks_seen.append(info)
            if len(knocks_seen) == 3:  # mid-way through the knocks pages
                sb.update("knocks", n=25)
                sb.insert("knocks", n=5)
                sb.soft_delete("knocks", n=3)

    sk_sandbox.on_request(mutate)
    assert run("run", "solarknock") == 0
    knocks = warehouse_rows(warehouse, "knocks")
    assert len({r["id"] for r in knocks}) == len(knocks)  # moved rows were not duplicated
    sk_sandbox.on_request(None)
    assert run("run", "solarknock") == 0
    assert_equal_to_truth(sk_sandbox, warehouse)


def test_rows_that_become_visible_late(sk_sandbox, warehouse):
    assert run("run", "solarknock") == 0
    sk_sandbox.set_visibility_delay(2.0)
    late = sk_sandbox.update("knocks", n=6)
    assert run("run", "solarknock") == 0  # the rows are not visible yet: stamped before `until`
    time.sleep(2.5)
    assert run("run", "solarknock") == 0  # the lookback window catches them
    assert_equal_to_truth(sk_sandbox, warehouse)
    assert late


@pytest.mark.parametrize("skew", [-300, 300])
def test_server_clock_skew(sk_sandbox, warehouse, skew):
    sk_sandbox.set_clock_skew(skew)
    assert run("run", "solarknock") == 0
    sk_sandbox.update("knocks", n=10)
    sk_sandbox.soft_delete("leads", n=2)
    assert run("run", "solarknock") == 0
    assert_equal_to_truth(sk_sandbox, warehouse)
    # the checkpoint is the server's clock, not ours
    for value in checkpoints().values():
        if value:
            moment = dlt.common.pendulum.parse(value)
            drift = moment.timestamp() - time.time()
            assert abs(drift - skew) < 60


def test_server_clock_jumping_back_between_runs(sk_sandbox, warehouse):
    sk_sandbox.set_clock_skew(300)
    assert run("run", "solarknock") == 0
    sk_sandbox.set_clock_skew(-300)  # a node 10 minutes behind the previous one
    sk_sandbox.update("knocks", n=5)
    assert run("run", "solarknock") == 0
    assert_equal_to_truth(sk_sandbox, warehouse)


def test_transient_5xx_and_dropped_connections_are_survived(sk_sandbox, warehouse):
    sk_sandbox.fail_next(2, status=500, endpoint="knocks")
    sk_sandbox.drop_next(2, endpoint="leads")
    sk_sandbox.fail_next(1, status=503)
    assert run("run", "solarknock") == 0
    assert_equal_to_truth(sk_sandbox, warehouse)


def test_persistent_5xx_fails_cleanly_and_a_rerun_recovers(sk_sandbox, warehouse, capsys):
    assert run("run", "solarknock") == 0
    before = checkpoints()
    sk_sandbox.update("knocks", n=10)
    sk_sandbox.fail_next(50, status=500, endpoint="leads")
    assert run("run", "solarknock") == 1
    out = capsys.readouterr().out
    assert "solarknock" in out and "/leads" in out and "500" in out
    assert checkpoints() == before  # nothing committed, checkpoint unchanged
    sk_sandbox.reset_faults()
    assert run("run", "solarknock") == 0
    assert_equal_to_truth(sk_sandbox, warehouse)


@pytest.mark.parametrize("kind", ["json", "no_data", "row_without_id", "html"])
def test_malformed_body_once_is_retried(sk_sandbox, warehouse, kind):
    sk_sandbox.malformed_next(1, kind=kind, endpoint="knocks")
    assert run("run", "solarknock") == 0
    assert_equal_to_truth(sk_sandbox, warehouse)


def test_malformed_body_that_persists_fails_naming_endpoint_and_page(sk_sandbox, warehouse, capsys):
    assert run("run", "solarknock") == 0
    loaded = loads(warehouse)
    before = checkpoints()
    sk_sandbox.update("knocks", n=150)  # two pages at page_size 100
    state = {"n": 0}

    def break_second_page(sb, info):
        if info.endpoint == "knocks":
            state["n"] += 1
            if state["n"] >= 2:
                sb.malformed_next(1, kind="no_data", endpoint="knocks")

    sk_sandbox.on_request(break_second_page)
    assert run("run", "solarknock") == 1
    out = capsys.readouterr().out
    assert "solarknock /knocks" in out and "page 2" in out and "'data'" in out
    assert loads(warehouse) == loaded and checkpoints() == before  # nothing partial committed
    sk_sandbox.on_request(None)
    assert run("run", "solarknock") == 0
    assert_equal_to_truth(sk_sandbox, warehouse)


def test_invalid_cursor_restarts_the_window_once(sk_sandbox, warehouse):
    sk_sandbox.invalid_cursor_next(1)
    assert run("run", "solarknock") == 0
    assert_equal_to_truth(sk_sandbox, warehouse)


def test_invalid_cursor_twice_fails(sk_sandbox, warehouse, capsys):
    def reject_knocks_cursors(sb, info):
        if info.endpoint == "knocks" and "cursor" in info.query:
            sb.invalid_cursor_next(1)

    sk_sandbox.on_request(reject_knocks_cursors)
    assert run("run", "solarknock") == 1
    assert "INVALID_CURSOR" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("setup", "code", "hint"),
    [
        ("bad_key", "INVALID_KEY", "rotate it"),
        ("expired", "SUBSCRIPTION_EXPIRED", "renew"),
    ],
)
def test_auth_errors_fail_fast_with_clear_message(
    sk_sandbox, warehouse, monkeypatch, capsys, setup, code, hint
):
    if setup == "bad_key":
        monkeypatch.setenv("SOURCES__SOLARKNOCK__API_KEY", "sk_WRONGKEY99")
    else:
        sk_sandbox.set_subscription_expired(True)
    assert run("run", "solarknock") == 1
    captured = capsys.readouterr()
    assert code in captured.out and hint in captured.out and "solarknock /org" in captured.out
    assert sk_sandbox.count_requests() == 1  # no retries
    for text in (captured.out, captured.err):
        assert "WRONGKEY99" not in text and SK_KEY[3:] not in text


def test_missing_key_is_a_configuration_error(sk_sandbox, monkeypatch, capsys):
    monkeypatch.delenv("SOURCES__SOLARKNOCK__API_KEY")
    assert run("run", "solarknock") == 1
    out = capsys.readouterr().out
    assert "api_key" in out and "SOURCES__SOLARKNOCK__API_KEY" in out
    assert sk_sandbox.count_requests() == 0


def test_backfill_merges_without_moving_the_checkpoint(sk_sandbox, warehouse):
    assert run("run", "solarknock") == 0
    before = checkpoints()
    sk_sandbox.update("knocks", n=8)
    assert run("backfill", "solarknock", "--resource", "knocks", "--since", "2000-01-01") == 0
    assert checkpoints() == before
    assert_equal_to_truth(sk_sandbox, warehouse, endpoints=("knocks",))
    assert run("run", "solarknock") == 0
    after = checkpoints()
    assert all(after[name] >= before[name] for name in before)
    assert_equal_to_truth(sk_sandbox, warehouse)


def test_backfill_unknown_table_is_a_usage_error(sk_sandbox):
    assert run("backfill", "solarknock", "--resource", "nope") == 2


def test_backfill_with_inverted_dates_fails_before_any_request(sk_sandbox, capsys):
    assert run("backfill", "solarknock", "--since", "2025-01-02", "--until", "2025-01-01") == 1
    assert "is not before --until" in capsys.readouterr().out
    assert sk_sandbox.count_requests() == 0


def test_status_and_check(sk_sandbox, warehouse, capsys):
    assert run("check", "solarknock") == 0
    out = capsys.readouterr().out
    assert "solarknock: ok" in out and "/counties" in out
    assert run("run", "solarknock") == 0
    capsys.readouterr()
    assert run("status") == 0
    out = capsys.readouterr().out
    knocks_line = next(line for line in out.splitlines() if line.strip().startswith("knocks"))
    assert str(len(sk_sandbox.truth("knocks"))) in knocks_line
    assert "T" in knocks_line  # a checkpoint timestamp


@pytest.mark.parametrize("kill_after", [3, 12, 16])
def test_sigkill_mid_sync_then_rerun(sk_sandbox, warehouse, kill_after, isolated_dlt):
    """kill -9 while extracting (after 3 or 12 requests) or after the last page (16: normalize
    or load): a rerun heals."""
    sk_sandbox.slow(0.02)
    env = dict(os.environ)
    proc = subprocess.Popen(
        [sys.executable, "-m", "pipelines", "--no-progress", "run", "solarknock"],
        cwd=REPO,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 60
    while sk_sandbox.count_requests() < kill_after and proc.poll() is None:
        assert time.monotonic() < deadline
        time.sleep(0.005)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    sk_sandbox.slow(0)
    sk_sandbox.update("knocks", n=5)
    assert run("run", "solarknock") == 0
    assert_equal_to_truth(sk_sandbox, warehouse)


def test_concurrent_run_is_refused_by_the_lock(sk_sandbox, warehouse, capsys):
    from pipelines.sync import pipeline_lock

    with pipeline_lock("solarknock"):
        assert run("run", "solarknock") == 1
    assert "another solarsync process" in capsys.readouterr().out
    assert sk_sandbox.count_requests() == 0


@pytest.mark.parametrize("reset_style", ["epoch", "delta"])
def test_pacing_stays_under_the_rate_limit(sk_sandbox, warehouse, reset_style, monkeypatch):
    """8 requests per 2-second window (a scaled-down 60/min): the sync spans several windows,
    waits for each reset instead of provoking 429s, and never exceeds the budget. (Downloads
    sharing the budget: test_attachments.py.)"""
    monkeypatch.setenv("SOURCES__SOLARKNOCK__ATTACHMENTS__ENABLED", "false")
    sk_sandbox.set_rate_limit(8, burst=8, reset_style=reset_style, window=2.0)
    assert run("run", "solarknock") == 0
    assert sk_sandbox.count_requests() >= 16  # needed at least two windows
    assert sk_sandbox.count_requests(status=429) == 0
    assert sk_sandbox.max_requests_in_window(seconds=2.0) <= 8
    assert_equal_to_truth(sk_sandbox, warehouse)


def test_429_storm_waits_for_each_reset_then_completes(sk_sandbox, warehouse, capsys):
    sk_sandbox.set_rate_limit(1000, window=1.0)  # resets every second
    sk_sandbox.fail_next(8, status=429, code="RATE_LIMITED")
    assert run("run", "solarknock") == 0
    assert sk_sandbox.count_requests(status=429) == 8
    assert "8 rate-limited (429)" in capsys.readouterr().out
    assert_equal_to_truth(sk_sandbox, warehouse)


def test_a_bi_tool_holding_the_warehouse_read_write_does_not_block_the_run(
    sk_sandbox, warehouse, capsys
):
    """A BI tool holding the DuckDB file for writing (DBeaver's default) used to fail the run
    with DuckDB's "could not set lock": loads go to the working file now and the run
    publishes a new copy; the holder keeps its snapshot, a new connection sees the run."""
    assert run("run", "solarknock") == 0
    knocks_before = len(sk_sandbox.truth("knocks"))
    sk_sandbox.insert("knocks", n=20)
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import duckdb,sys\n"
            "c=duckdb.connect(sys.argv[1]); print('held', flush=True)\n"
            "for _ in sys.stdin: print(c.execute('select count(*) from solarknock.knocks')"
            ".fetchone()[0], flush=True)",
            str(warehouse),
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        assert run("run", "solarknock") == 0, capsys.readouterr().out
        assert_equal_to_truth(sk_sandbox, warehouse)  # a new connection: the new rows
        holder.stdin.write("?\n")
        holder.stdin.flush()
        assert int(holder.stdout.readline()) == knocks_before  # the holder: its snapshot
    finally:
        holder.kill()
        holder.wait()


def test_read_timeouts_are_retried(sk_sandbox, warehouse, monkeypatch):
    monkeypatch.setenv("SOURCES__SOLARKNOCK__REQUEST_TIMEOUT", "0.5")
    stalled = []

    def stall_twice(sb, info):
        if info.endpoint == "leads" and len(stalled) < 2:
            stalled.append(info)
            time.sleep(1.0)  # longer than the client's read timeout

    sk_sandbox.on_request(stall_twice)
    assert run("run", "solarknock") == 0
    assert len(stalled) == 2
    assert_equal_to_truth(sk_sandbox, warehouse)


def test_a_server_without_org_still_syncs_on_its_own_clock(sk_sandbox, warehouse, capsys):
    sk_sandbox.fail_next(1, status=404, endpoint="org", code="NOT_FOUND")
    assert run("run", "solarknock") == 0
    assert "/org: not found" in capsys.readouterr().err
    assert_equal_to_truth(sk_sandbox, warehouse)
    assert all(value for value in checkpoints().values())  # the users page gave the clock
