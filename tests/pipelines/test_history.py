"""Run history: the journal (append-only, torn lines, read backwards), its load into the
warehouse (idempotent, per destination, never blocked by a locked warehouse), the rows of
real runs and polls, and ``solarsync status`` (--json, staleness, --fail-if-stale)."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import dlt
import duckdb
import pytest

from pipelines import cli, history, registry
from pipelines.history.load import PIPELINE_NAME, history_source
from pipelines.sync import run_source
from tests.conftest import SK_KEY
from tests.pipelines.test_poll import SPEC as POLL_SPEC

WRONG_KEY = "sk_WRONGHISTORYKEY77"


def row(source: str = "solarknock", *, ago_h: float = 1.0, status: str = "ok", **extra: Any):
    finished = datetime.now(UTC) - timedelta(hours=ago_h)
    base = {
        "run_id": f"{source}-{finished.timestamp()}-{status}",
        "source": source,
        "command": "run",
        "started_at": (finished - timedelta(seconds=5)).isoformat(),
        "finished_at": finished.isoformat(),
        "duration_s": 5.0,
        "status": status,
        "error_class": None if status == "ok" else "AuthenticationError",
        "error_message": None if status == "ok" else "solarknock /users: key rejected [401]",
        "requests": 3,
        "rate_limited": 1,
        "retries": 2,
        "warnings": [],
        "polls": None,
        "failed_polls": None,
        "destination": "duckdb",
        "tables": [
            {"table_name": "users", "rows": 4, "new": 3, "updated": 1, "deleted": 0},
            {"table_name": "knocks", "rows": 7, "new": None, "updated": None, "deleted": None},
        ],
    }
    return base | extra


def query(warehouse: Path, sql: str) -> list[tuple]:
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


# --------------------------------------------------------------------------- the journal
def test_journal_keeps_complete_lines_and_survives_a_torn_one(tmp_path: Path) -> None:
    journal = tmp_path / "runs.jsonl"
    history.append(row(run_id="a"), journal)
    with open(journal, "ab") as handle:  # a crash in the middle of a write
        handle.write(b'{"run_id": "torn", "sour')
    rows, offset = history.read(journal)
    assert [r["run_id"] for r in rows] == ["a"]
    assert offset == len(json.dumps(row(run_id="a"), ensure_ascii=False).encode()) + 1
    history.append(row(run_id="b"), journal)  # starts on a line of its own
    rows, end = history.read(journal)
    assert [r["run_id"] for r in rows] == ["a", "b"]  # the torn line is skipped
    assert [r["run_id"] for r in history.read(journal, offset)[0]] == ["b"]
    assert end == journal.stat().st_size
    assert journal.stat().st_mode & 0o777 == 0o600


def test_journal_reads_newest_first_across_chunks(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(history.jsonl, "_CHUNK", 97)  # many chunk boundaries inside lines
    journal = tmp_path / "runs.jsonl"
    for n in range(40):
        history.append(row(["heat", "tesla"][n % 2], run_id=f"r{n}", status="ok"), journal)
    history.append(row("heat", run_id="r40", status="failed"), journal)
    assert [r["run_id"] for r in history.read_newest_first(journal)] == [
        f"r{n}" for n in range(40, -1, -1)
    ]
    runs = history.last_runs(["heat", "tesla", "solarknock"], journal)
    assert runs["heat"][0]["run_id"] == "r40" and runs["heat"][1]["run_id"] == "r38"
    assert runs["tesla"][0]["run_id"] == runs["tesla"][1]["run_id"] == "r39"
    assert runs["solarknock"] == (None, None)


# --------------------------------------------------------------------------- loading
def test_load_is_idempotent_incremental_and_per_destination(isolated_dlt: Path) -> None:
    journal = history.journal_path()
    first = isolated_dlt / "first.duckdb"
    history.append(row(run_id="r1"))
    history.append(row(run_id="r2", status="failed", tables=[]))
    assert history.load(first) == 2
    assert history.load(first) == 0  # nothing new: no load at all
    history.append(row(run_id="r3"))
    assert history.load(first) == 1
    history.load(first)
    assert query(first, "select run_id, status from solarsync.sync_runs order by 1") == [
        ("r1", "ok"),
        ("r2", "failed"),
        ("r3", "ok"),
    ]
    # another warehouse gets the whole journal, not only what came after the first's load
    second = isolated_dlt / "second.duckdb"
    assert history.load(second) == 3
    # a journal rewritten from scratch is loaded again; merge keeps one row per run_id
    rows, _ = history.read(journal)
    journal.unlink()
    for r in rows:
        history.append(r)
    history.load(first)
    assert query(first, "select count(*), count(distinct run_id) from solarsync.sync_runs") == [
        (3, 3)
    ]
    assert query(first, "select count(*) from solarsync.sync_run_tables") == [(4,)]


def test_each_hosts_journal_is_loaded_whole_into_a_shared_destination(isolated_dlt: Path) -> None:
    """Two hosts (two journals) load into one destination and share the pipeline's state (dlt
    restores it from the destination on a fresh worker): neither skips the other's rows."""
    shared = isolated_dlt / "shared.duckdb"
    host_a, host_b = isolated_dlt / "a" / "runs.jsonl", isolated_dlt / "b" / "runs.jsonl"
    history.append(row(run_id="a1"), host_a)
    for n in range(3):
        history.append(row(run_id=f"b{n}"), host_b)
    assert history.load(shared, journal=host_a) == 1
    assert history.load(shared, journal=host_b) == 3
    assert history.journal_id(host_a) != history.journal_id(host_b)
    assert query(shared, "select run_id from solarsync.sync_runs order by 1") == [
        ("a1",),
        ("b0",),
        ("b1",),
        ("b2",),
    ]


def test_views_are_bi_friendly(isolated_dlt: Path) -> None:
    warehouse = isolated_dlt / "warehouse.duckdb"
    history.journal(row(run_id="r1", warnings=["type change: x", "site 7 skipped"]))
    history.journal(row(run_id="r2", status="failed", tables=[]))
    assert history.load_into(warehouse) == 2
    types = dict(
        query(
            warehouse,
            "select column_name, data_type from information_schema.columns "
            "where table_schema = 'analytics' and table_name in ('sync_runs', 'sync_run_tables')",
        )
    )
    assert set(types.values()) <= {
        "VARCHAR",
        "BOOLEAN",
        "BIGINT",
        "DOUBLE",
        "TIMESTAMP WITH TIME ZONE",
    }
    assert types["finished_at"] == "TIMESTAMP WITH TIME ZONE" and types["ok"] == "BOOLEAN"
    assert query(
        warehouse,
        "select run_id, ok, rows_loaded, warning_count, warnings, error_class, requests, "
        "rate_limited, retries from analytics.sync_runs order by run_id",
    ) == [
        ("r1", True, 11, 2, "type change: x\nsite 7 skipped", None, 3, 1, 2),
        ("r2", False, 0, 0, None, "AuthenticationError", 3, 1, 2),
    ]
    assert query(
        warehouse,
        'select table_name, "rows", new, updated, deleted from analytics.sync_run_tables'
        " order by table_name",
    ) == [("knocks", 7, None, None, None), ("users", 4, 3, 1, 0)]


def test_history_views_and_report_freshness_on_every_destination(
    any_warehouse, tmp_path: Path
) -> None:
    from pipelines.report import write_report

    history.journal(row("heat", run_id="h1", ago_h=2, warnings=["site 7 skipped"]))
    history.journal(row("heat", run_id="h2", ago_h=1, status="failed", tables=[]))
    assert history.load_into(any_warehouse) == 2
    assert history.load_into(any_warehouse) == 0
    with any_warehouse.reader() as reader:
        runs = reader.rows(
            "select run_id, ok, rows_loaded, warning_count, warnings, error_class, requests "
            "from analytics.sync_runs order by run_id"
        )
        tables = reader.rows(
            'select run_id, table_name, "rows", new, deleted from analytics.sync_run_tables '
            "order by table_name"
        )
    assert [tuple(r) for r in runs] == [
        ("h1", True, 11, 1, "site 7 skipped", None, 3),
        ("h2", False, 0, 0, None, "AuthenticationError", 3),
    ]
    assert [tuple(t) for t in tables] == [("h1", "knocks", 7, None, None), ("h1", "users", 4, 3, 0)]
    page = write_report(any_warehouse, tmp_path / "report.html").read_text()
    assert '<span class="state state-failed">FAILED</span>' in page  # heat's last run failed
    assert "AuthenticationError: solarknock /users: key rejected [401]" in page


# --------------------------------------------------------------------------- real runs
def test_failed_and_ok_runs_are_recorded_even_while_the_warehouse_is_locked(
    sk_sandbox, isolated_dlt: Path, monkeypatch: pytest.MonkeyPatch, caplog, capsys
) -> None:
    from pipelines.destinations.duckdb.files import working_path

    warehouse = isolated_dlt / "warehouse.duckdb"
    spec = registry.get("solarknock")
    # another process holds the file dlt loads into (BI tools open the published copy, which
    # never blocks a load: here a program opened solarsync's private working file itself)
    work = working_path(warehouse)
    work.parent.mkdir(parents=True, exist_ok=True)
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import duckdb, sys; c = duckdb.connect(sys.argv[1]); "
            "c.execute('create table held(x int)'); print('held', flush=True); sys.stdin.read()",
            str(work),
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        locked = run_source(spec, warehouse)
        assert history.load_into(warehouse) == 0
    finally:
        holder.stdin.close()
        holder.wait(timeout=30)
    assert not locked.ok and str(work) in locked.error
    (journaled,) = history.read()[0]  # written although the warehouse was locked
    assert (journaled["status"], journaled["error_class"]) == ("failed", locked.error_class)
    assert journaled["error_message"] == locked.error
    assert "run history: not loaded" in caplog.text and "Could not set lock" in caplog.text

    monkeypatch.setenv("SOURCES__SOLARKNOCK__API_KEY", WRONG_KEY)
    assert cli.main(["run", "solarknock"]) == 1  # loads its row and the one left behind
    monkeypatch.setenv("SOURCES__SOLARKNOCK__API_KEY", SK_KEY)
    assert cli.main(["run", "solarknock"]) == 0
    capsys.readouterr()
    _, rejected, ok = history.read()[0]
    assert rejected["error_class"] == "AuthenticationError"
    runs = query(
        warehouse,
        "select command, status, error_class, requests, rows_loaded "
        "from analytics.sync_runs order by finished_at",
    )
    assert runs == [
        ("run", "failed", "DestinationConnectionError", 0, 0),
        ("run", "failed", "AuthenticationError", rejected["requests"], 0),
        ("run", "ok", None, ok["requests"], sum(t["rows"] for t in ok["tables"])),
    ]
    assert rejected["requests"] >= 1 and ok["requests"] > 1
    (message,) = query(
        warehouse, "select error_message from analytics.sync_runs where error_class like 'Auth%'"
    )[0]
    assert message == rejected["error_message"]
    assert "401" in message and message.startswith("solarknock")
    tables = {
        t: (r, n, d)
        for t, r, n, d in query(
            warehouse,
            "select table_name, t.rows, t.new, t.deleted from analytics.sync_run_tables t "
            "join analytics.sync_runs using (run_id) where status = 'ok'",
        )
    }
    knocks = sk_sandbox.truth("knocks")
    gone = sum(1 for k in knocks if k["deleted_at"])
    assert gone and tables["knocks"] == (len(knocks), len(knocks) - gone, gone)
    assert tables["users"][0] == len(sk_sandbox.truth("users"))
    text = history.journal_path().read_text()
    for secret in (WRONG_KEY, WRONG_KEY.split("_", 1)[1], SK_KEY):
        assert secret not in text
        assert not query(
            warehouse, f"select 1 from solarsync.sync_runs where error_message like '%{secret}%'"
        )


def test_poll_writes_a_row_per_batch_and_a_failed_row_at_the_end(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, isolated_dlt: Path
) -> None:
    monkeypatch.setitem(registry.SOURCES, "fakepoll", POLL_SPEC)
    monkeypatch.setenv("FAKE_POLL_LOG", str(tmp_path / "polls.log"))
    monkeypatch.setenv("FAKE_POLL_FAIL", "3:api,4:auth")
    code = cli.main(["poll", "fakepoll", "--every", "0.01s", "--for", "30s", "--batch", "1h"])
    assert code == 1
    rows, _ = history.read()
    # polls 1 and 2 are loaded at the end as one batch (3 failed and was skipped, 4 stopped
    # the loop): the batch row says so, then a failed row carries the error that stopped it
    assert [(r["command"], r["status"], r["polls"], r["failed_polls"]) for r in rows] == [
        ("poll", "ok", 4, 2),
        ("poll", "failed", 0, 0),
    ]
    assert {t["table_name"]: t["rows"] for t in rows[0]["tables"]} == {
        "readings": 2,
        "catalog": 1,
    }
    assert rows[0]["warnings"] == ["2 of 4 poll(s) failed: fakepoll /readings: key rejected"]
    assert rows[1]["error_class"] == "AuthenticationError"
    assert rows[1]["error_message"] == "fakepoll /readings: key rejected"
    assert rows[0]["finished_at"] <= rows[1]["started_at"]
    assert query(  # loaded at the end of the poll
        isolated_dlt / "warehouse.duckdb",
        "select status, polls, failed_polls from analytics.sync_runs order by finished_at",
    ) == [("ok", 4, 2), ("failed", 0, 0)]


# --------------------------------------------------------------------------- status
def status(capsys, *args: str) -> tuple[int, dict]:
    code = cli.main(["status", "--json", *args])
    return code, json.loads(capsys.readouterr().out)


def health_of(report: dict, source: str) -> dict:
    return next(s["health"] for s in report["sources"] if s["name"] == source)


def test_status_json_and_fail_if_stale(
    isolated_dlt: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    history.append(row("heat", ago_h=30))  # nightly source, last success 30 h ago: stale
    history.append(row("tesla", ago_h=2))
    history.append(row("tesla", ago_h=1, status="failed"))  # fresh success, but failing now
    history.append(row("solarknock", ago_h=3))
    code, report = status(capsys)
    assert code == 0  # without --fail-if-stale, status reports and succeeds
    heat, tesla, knock = (health_of(report, s) for s in ("heat", "tesla", "solarknock"))
    assert (heat["state"], heat["stale"], heat["expected_interval"]) == ("stale", True, "26h")
    assert 30 * 3600 <= heat["age_s"] < 30 * 3600 + 600
    assert (tesla["state"], tesla["stale"], tesla["last_run_failed"]) == ("failed", False, True)
    assert tesla["last_run"]["error_class"] == "AuthenticationError"
    assert knock["state"] == "ok" and knock["last_run"]["status"] == "ok"
    sa = health_of(report, "solarassistant")
    assert (sa["state"], sa["monitored"]) == ("never run", False)  # not configured, never run

    code, report = status(capsys, "--fail-if-stale")
    assert code == 1
    assert cli.main(["status", "--fail-if-stale", "solarknock"]) == 0
    assert cli.main(["status", "--fail-if-stale", "heat"]) == 1
    text = capsys.readouterr().out
    assert "runs: OK; last run" in text and "runs: STALE; last run" in text
    assert text.rstrip().endswith("stale or failing: heat")

    monkeypatch.setenv("SOURCES__HEAT__EXPECTED_INTERVAL", "2d")
    assert cli.main(["status", "--fail-if-stale", "heat"]) == 0
    capsys.readouterr()
    monkeypatch.setenv("SOURCES__HEAT__EXPECTED_INTERVAL", "soon")
    code, report = status(capsys, "heat")
    assert health_of(report, "heat")["note"].startswith(
        "sources.heat.expected_interval = 'soon' is not a duration"
    )
    # a configured source that never ran is checked too
    monkeypatch.setenv("SOURCES__SOLARASSISTANT__API_TOKEN", "sa_CONFIGURED1")
    code, report = status(capsys, "--fail-if-stale", "solarassistant", "solarknock")
    assert code == 1 and health_of(report, "solarassistant")["state"] == "never run"


def _dlt_loads(warehouse: Path) -> int:
    return query(warehouse, "select count(*) from solarsync._dlt_loads")[0][0]


def test_later_rows_are_merged_without_a_dlt_load_and_equal_what_dlt_loads(
    isolated_dlt: Path,
) -> None:
    """Once dlt created the history tables, a run's row is merged straight into them (no dlt
    load, so no new ``_dlt_loads`` row): the same rows and types as dlt's own load gives."""
    direct, reference = isolated_dlt / "direct.duckdb", isolated_dlt / "reference.duckdb"
    history.append(row(run_id="r1"))
    assert history.load(direct) == 1  # creates the tables: through dlt
    loads = _dlt_loads(direct)
    history.append(row(run_id="r2", status="failed", tables=[]))
    history.append(row(run_id="r3", warnings=["solarknock: a warning"]))
    history.append(row(run_id="r1", status="failed"))  # a later version of r1 replaces it
    assert history.load(direct) == 3
    assert _dlt_loads(direct) == loads  # merged directly
    assert history.load(direct) == 0
    assert history.load(reference) == 3  # a new warehouse: the whole journal through dlt
    every = "select * from analytics.{} order by all"
    for view in ("sync_runs", "sync_run_tables"):
        assert query(direct, every.format(view)) == query(reference, every.format(view))
    assert query(direct, "select count(*), count(distinct _dlt_id) from solarsync.sync_runs") == [
        (3, 3)
    ]


def test_rows_with_a_column_the_tables_lack_or_a_pending_package_go_through_dlt(
    isolated_dlt: Path,
) -> None:
    warehouse = isolated_dlt / "warehouse.duckdb"
    history.append(row(run_id="r1"))
    history.load(warehouse)
    loads = _dlt_loads(warehouse)
    extra = row(run_id="r2")
    extra["tables"] = [dict(extra["tables"][0], account="north")]  # a column dlt adds
    history.append(extra)
    assert history.load(warehouse) == 1
    assert _dlt_loads(warehouse) == loads + 1
    assert query(warehouse, "select account from solarsync.sync_run_tables where run_id = 'r2'")
    # a package a killed dlt load left lands first, through dlt
    pipeline = dlt.pipeline(pipeline_name=PIPELINE_NAME, dataset_name="solarsync")
    history.append(row(run_id="r3"))
    pipeline.extract(history_source(str(history.journal_path()), "elsewhere", 0))
    assert pipeline.has_pending_data
    history.append(row(run_id="r4"))
    history.load(warehouse)
    assert not pipeline.has_pending_data
    assert _dlt_loads(warehouse) >= loads + 2
    assert query(warehouse, "select count(distinct run_id) from solarsync.sync_runs") == [(4,)]
