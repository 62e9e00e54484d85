"""``solarsync report`` opened in a real headless Chromium (Debian's package) with the network
blocked: no console error, every chart drew its points, the failed run shows, the numbers are
the sandboxes' truth, and what is drawn does not mislead (read from Plotly's ``gd.data`` and
``gd.layout`` in the page: tests/pipelines/report_browser.py).

The data, built once per session: the four sandboxes synced into one warehouse (Tesla three
times: energy needs two readings) plus one SolarKnock run with a wrong key (``built``); a
SolarKnock API shaped differently from the sandbox's defaults, as the vendor's docs allow
(``awkward``: four reps named alike, daily stats' knock count under another name, a 2016
leap-day knock); the built warehouse plus a week of 5-second polls (``week``).
"""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sys
from collections import Counter, defaultdict
from collections.abc import Iterator
from contextlib import redirect_stdout
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import pytest

from pipelines import cli
from tests.pipelines.report_browser import Opener, Rendered, browser

WRONG_KEY = "sk_WRONGREPORTKEY31"


@dataclass
class Built:
    root: Path
    warehouse: Path
    report: Path
    cli_out: str
    truth: dict[str, Any] = field(default_factory=dict)


def _week(created_at: str) -> str:
    day = datetime.fromisoformat(created_at.replace("Z", "+00:00")).date()
    return (day - timedelta(days=day.weekday())).isoformat()


def _ts(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


@pytest.fixture(scope="session")
def built(tmp_path_factory: pytest.TempPathFactory) -> Built:
    """Sync the four sandboxes and one failed run into a warehouse; write the report."""
    from sandbox.heat import HeatSandbox
    from sandbox.solarassistant import SolarAssistantSandbox
    from sandbox.solarknock import SolarKnockSandbox
    from sandbox.tesla import TeslaGatewaySandbox
    from sandbox.tesla.model import VARIANTS, capture_bytes
    from sources.common import reset_stats
    from sources.solarassistant import reset_caches
    from sources.tesla import reset_clients
    from tests.conftest import SK_COUNTS, SK_KEY
    from tests.sources.heat.conftest import HEAT_KEY
    from tests.sources.solarassistant.conftest import SA_TOKEN, point_at
    from tests.sources.tesla.conftest import PASSWORD

    root = tmp_path_factory.mktemp("report")
    warehouse = root / "warehouse.duckdb"
    truth: dict[str, Any] = {}
    with pytest.MonkeyPatch.context() as mp:
        for name in list(os.environ):
            if name.startswith(("SOURCES__", "DESTINATION__")):
                mp.delenv(name)
        mp.setenv("DLT_DATA_DIR", str(root / "dlt"))
        mp.setenv("RUNTIME__DLTHUB_TELEMETRY", "false")
        reset_stats()

        def run(source: str, ok: bool = True) -> None:  # as cron does: the CLI's run
            with redirect_stdout(io.StringIO()) as out:
                code = cli.main(["--warehouse", str(warehouse), "run", source])
            assert (code == 0) is ok, out.getvalue()

        with SolarKnockSandbox(seed=7, api_key=SK_KEY, counts=SK_COUNTS) as sk:
            mp.setenv("SOURCES__SOLARKNOCK__API_KEY", SK_KEY)
            mp.setenv("SOURCES__SOLARKNOCK__BASE_URL", sk.base_url)
            mp.setenv("SOURCES__SOLARKNOCK__PAGE_SIZE", "100")
            run("solarknock")
            mp.setenv("SOURCES__SOLARKNOCK__API_KEY", WRONG_KEY)
            run("solarknock", ok=False)  # the failed run the page must show
            truth["sk"] = {e: sk.truth(e) for e in ("knocks", "leads", "appointments", "users")}
            truth["sk"]["daily"] = sk.truth("daily-stats")

        with HeatSandbox(seed=3, api_key=HEAT_KEY, sites=3) as heat:
            mp.setenv("SOURCES__HEAT__BASE_URL", heat.base_url)
            mp.setenv("SOURCES__HEAT__API_KEY", HEAT_KEY)
            run("heat")
            truth["heat"] = heat.truth()

        with SolarAssistantSandbox(
            seed=3,
            api_token=SA_TOKEN,
            sites=3,
            org_users=4,
            offline_sleep=0.2,
            cert_dir=str(root / "sa"),
        ) as sa:
            sa.set_offline(sa.sites[-1].id, "502")
            point_at(sa, mp)
            reset_caches()
            run("solarassistant")
            reset_caches()
            truth["sa"] = {
                site.name: {
                    topic: sa.metrics_truth(site.id, topic)[0]["value"]
                    for topic in ("total/pv_power", "total/load_power", "total/battery_power")
                }
                for site in sa.sites[:-1]
            }
            truth["sa_offline"] = sa.sites[-1].name
        mp.delenv("REQUESTS_CA_BUNDLE")

        gateway = TeslaGatewaySandbox(root / "gw", password=PASSWORD).start()
        try:
            mp.setenv("SOURCES__TESLA__HOST", gateway.host)
            mp.setenv("SOURCES__TESLA__PASSWORD", PASSWORD)
            mp.setenv("SOURCES__TESLA__NAME", "home")
            for _ in range(3):
                reset_clients()
                run("tesla")
            reset_clients()
            truth["tesla_log"] = list(gateway.meters.log)
        finally:
            gateway.stop()
        soe = json.loads(capture_bytes(VARIANTS["21.44"]["/api/system_status/soe"]))
        truth["soc"] = soe["percentage"]

        report = root / "out" / "report.html"
        with redirect_stdout(io.StringIO()) as out:
            assert cli.main(["--warehouse", str(warehouse), "report", "--output", str(report)]) == 0
    return Built(root, warehouse, report, out.getvalue(), truth)


def _report(warehouse: Path, output: Path, env: dict[str, str] | None = None) -> str:
    """``solarsync report`` as a user runs it: its own process (its own TZ), the CLI."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("SOURCES__", "SOLARSYNC__"))}
    done = subprocess.run(
        [sys.executable, "-m", "pipelines", "--warehouse", str(warehouse), "report"]
        + ["--output", str(output)],
        env=clean | {"RUNTIME__DLTHUB_TELEMETRY": "false"} | (env or {}),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    return done.stderr


AWKWARD_NAME = "Alex Kim"
OUTLIER = "2016-02-29T12:00:00.000Z"


@dataclass
class Awkward:
    warehouse: Path
    report: Path
    users: list[str]  # the ids of the reps named AWKWARD_NAME
    daily: list[dict]  # daily-stats as served (``knocks``, no ``knock_count``)
    knocks: list[dict]
    leads: list[dict]
    appointments: list[dict]
    outlier_id: str


@pytest.fixture(scope="session")
def awkward(tmp_path_factory: pytest.TempPathFactory) -> Awkward:
    """SolarKnock as another implementation of the documented API may serve it: four reps
    share a name, daily stats name the knock count ``knocks``, one live knock was created on
    2016-02-29. Synced by ``solarsync run``, reported by ``solarsync report`` (UTC)."""
    from sandbox.solarknock import SolarKnockSandbox
    from tests.conftest import SK_COUNTS, SK_KEY

    root = tmp_path_factory.mktemp("report-awkward")
    warehouse = root / "warehouse.duckdb"
    with pytest.MonkeyPatch.context() as mp:
        for name in list(os.environ):
            if name.startswith(("SOURCES__", "DESTINATION__", "SOLARSYNC__")):
                mp.delenv(name)
        mp.setenv("DLT_DATA_DIR", str(root / "dlt"))
        mp.setenv("RUNTIME__DLTHUB_TELEMETRY", "false")
        with SolarKnockSandbox(seed=11, api_key=SK_KEY, counts=SK_COUNTS) as sk:
            users = [u["id"] for u in sk.truth("users")][:4]
            sk.rewrite("users", lambda r: {**r, "name": AWKWARD_NAME} if r["id"] in users else r)

            def renamed(row: dict) -> dict:
                row = dict(row)
                row["knocks"] = row.pop("knock_count")
                return row

            sk.rewrite("daily-stats", renamed)
            # three weeks in which nothing was created (rows moved three weeks later)
            created = sorted(_ts(r["created_at"]) for r in sk.truth("knocks"))
            middle = created[len(created) // 2]
            hollow = middle - timedelta(days=middle.weekday() + 7)
            hollow = hollow.replace(hour=0, minute=0, second=0, microsecond=0)

            def later(row: dict) -> dict:
                at = _ts(row["created_at"])
                if hollow <= at < hollow + timedelta(days=21):
                    at += timedelta(days=21)
                    row = {**row, "created_at": at.isoformat(timespec="milliseconds")}
                return row

            for endpoint in ("knocks", "leads", "appointments"):
                sk.rewrite(endpoint, later)
            outlier = next(r["id"] for r in sk.truth("knocks") if not r["deleted_at"])
            sk.rewrite(
                "knocks", lambda r: {**r, "created_at": OUTLIER} if r["id"] == outlier else r
            )
            mp.setenv("SOURCES__SOLARKNOCK__API_KEY", SK_KEY)
            mp.setenv("SOURCES__SOLARKNOCK__BASE_URL", sk.base_url)
            with redirect_stdout(io.StringIO()) as out:
                code = cli.main(["--warehouse", str(warehouse), "run", "solarknock"])
            assert code == 0, out.getvalue()
            truth = {e: sk.truth(e) for e in ("daily-stats", "knocks", "leads", "appointments")}
        report = root / "awkward.html"
        with redirect_stdout(io.StringIO()):
            assert cli.main(["--warehouse", str(warehouse), "report", "--output", str(report)]) == 0
    assert all("knock_count" not in d for d in truth["daily-stats"])
    return Awkward(
        warehouse,
        report,
        users,
        truth["daily-stats"],
        truth["knocks"],
        truth["leads"],
        truth["appointments"],
        outlier,
    )


@dataclass
class Week:
    warehouse: Path
    report: Path
    polls: Any  # bench.polls.Polls: what was written
    stderr: str


@pytest.fixture(scope="session")
def week(built: Built, tmp_path_factory: pytest.TempPathFactory) -> Week:
    """The built warehouse plus a week of 5-second polls (~121k readings per series, a 3-hour
    outage and one spike per series), reported with the default bound."""
    from bench.polls import week_of_polls

    root = tmp_path_factory.mktemp("report-week")
    warehouse = root / "week.duckdb"
    shutil.copyfile(built.warehouse, warehouse)
    con = duckdb.connect(str(warehouse))
    try:
        sites = con.execute("SELECT id, name FROM solarassistant.sites ORDER BY id").fetchall()
        polls = week_of_polls(con, datetime.now(UTC), sites=sites[:2], gateway="home")
    finally:
        con.close()
    report = root / "week.html"
    stderr = _report(warehouse, report)
    return Week(warehouse, report, polls, stderr)


@pytest.fixture(scope="session")
def pages(built: Built) -> Iterator[Opener]:
    with browser(built.root) as open_page:
        yield open_page


@pytest.fixture(scope="session")
def rendered(built: Built, pages: Opener) -> Rendered:
    return pages(built.report)


# --------------------------------------------------------------------------- without a browser
def test_cli_writes_one_self_contained_file(built: Built) -> None:
    assert built.cli_out.strip() == f"report: {built.report.resolve()}"
    page = built.report.read_text()
    assert page.startswith("<!DOCTYPE html>")
    # no external script or stylesheet (the browser test checks no request leaves the page)
    for needle in ("<script src", "<link "):
        assert needle not in page
    assert "Plotly.newPlot" in page and len(page) > 3_000_000  # plotly.js inlined
    for secret in (WRONG_KEY, WRONG_KEY.split("_", 1)[1]):
        assert secret not in page


def test_charts_without_data_say_so(isolated_dlt: Path, capsys) -> None:
    warehouse = isolated_dlt / "empty.duckdb"
    duckdb.connect(str(warehouse)).close()
    out = isolated_dlt / "empty.html"
    assert cli.main(["--warehouse", str(warehouse), "report", "--output", str(out)]) == 0
    page = out.read_text()
    assert page.count('<figure class="chart empty"') == page.count("<figure ") == 8
    assert "Plotly.newPlot" not in page
    for text in (
        "No runs recorded in the last 14 days.",
        "No SolarKnock knocks, leads or appointments.",
        "No SolarKnock daily stats.",
        "No HEAT schedule entries.",
        "No SolarAssistant PV, load or battery readings in the last 24 hours.",
        "No Tesla energy yet (it needs two meter readings).",
        "No battery state of charge in the last 7 days.",
    ):
        assert text in page
    assert cli.main(["--warehouse", str(isolated_dlt / "none.duckdb"), "report"]) == 1


EMPTY_TABLES = """
CREATE SCHEMA solarknock; CREATE SCHEMA analytics; CREATE SCHEMA solarassistant;
CREATE SCHEMA tesla; CREATE SCHEMA heat;
CREATE TABLE solarknock.knocks (id VARCHAR, user_id VARCHAR, created_at TIMESTAMPTZ,
    deleted_at TIMESTAMPTZ);
CREATE TABLE solarknock.leads (id VARCHAR, user_id VARCHAR, created_at TIMESTAMPTZ);
CREATE TABLE solarknock.appointments (id VARCHAR, created_at TIMESTAMPTZ);
CREATE TABLE solarknock.daily_stats (user_id VARCHAR, date DATE, knock_count BIGINT);
CREATE TABLE solarknock.users (id VARCHAR, name VARCHAR);
CREATE TABLE analytics.sync_runs (run_id VARCHAR, source VARCHAR, command VARCHAR,
    started_at TIMESTAMPTZ, finished_at TIMESTAMPTZ, status VARCHAR, error_class VARCHAR,
    error_message VARCHAR, rows_loaded BIGINT, requests BIGINT, rate_limited BIGINT,
    retries BIGINT, warnings VARCHAR);
CREATE TABLE heat.sites (site_id VARCHAR, site_name VARCHAR);
CREATE TABLE solarassistant.sites (id BIGINT, name VARCHAR);
CREATE TABLE solarassistant.metrics (site_id BIGINT, topic VARCHAR, polled_at TIMESTAMPTZ,
    unit VARCHAR, value_number DOUBLE);
CREATE TABLE tesla.battery_soe (gateway VARCHAR, polled_at TIMESTAMPTZ, percentage DOUBLE);
"""


def test_empty_tables_say_so_and_exit_0(isolated_dlt: Path, capsys) -> None:
    warehouse = isolated_dlt / "empty-tables.duckdb"
    with duckdb.connect(str(warehouse)) as con:
        con.execute(EMPTY_TABLES)
    out = isolated_dlt / "empty.html"
    assert cli.main(["--warehouse", str(warehouse), "report", "--output", str(out)]) == 0
    page = out.read_text()
    assert "could not be drawn" not in page and "Plotly.newPlot" not in page
    assert "No SolarKnock daily stats." in page and "No HEAT schedule entries." in page
    assert "No schedule entries in force for this site" not in page  # no site at all
    assert "WARNING" not in capsys.readouterr().err


def test_a_failing_chart_shows_why_and_the_rest_is_written(isolated_dlt: Path, capsys) -> None:
    """Knocks whose creation time is not a time: the funnel charts say why, the leaderboard
    (counted from the knocks table here) and the rest are drawn, the command exits 0 with a
    warning, and never says the warehouse cannot be read."""
    warehouse = isolated_dlt / "odd.duckdb"
    with duckdb.connect(str(warehouse)) as con:
        con.execute(
            "CREATE SCHEMA solarknock; CREATE TABLE solarknock.knocks AS "
            "SELECT 'k' || i AS id, 'u' || (i % 3) AS user_id, 'last tuesday' AS created_at "
            "FROM range(30) AS r(i)"
        )
    out = isolated_dlt / "odd.html"
    assert cli.main(["--warehouse", str(warehouse), "report", "--output", str(out)]) == 0
    page = out.read_text()
    assert page.count('<figure class="chart empty failed"') == 2  # weekly funnel and totals
    assert "This chart could not be drawn: ConversionException" in page
    assert 'Plotly.newPlot(                        "sk-leaderboard"' in page
    err = capsys.readouterr().err
    assert "WARNING solarsync: report: 'Funnel over every loaded week' could not be drawn" in err
    assert "2 chart(s) could not be drawn" in err and "cannot read" not in err


def test_cannot_read_now_only_when_the_warehouse_is_held(isolated_dlt: Path, capsys) -> None:
    warehouse = isolated_dlt / "held.duckdb"
    duckdb.connect(str(warehouse)).close()
    holder = subprocess.Popen(
        [sys.executable, "-c", "import duckdb, sys, time; c = duckdb.connect(sys.argv[1]); "
         "print('held', flush=True); time.sleep(120)", str(warehouse)],
        stdout=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    try:
        assert holder.stdout.readline().strip() == "held"
        assert cli.main(["--warehouse", str(warehouse), "report"]) == 1
    finally:
        holder.kill()
        holder.wait()
    assert f"cannot read {warehouse} now" in capsys.readouterr().err


def test_a_file_that_is_no_warehouse_is_not_called_busy(isolated_dlt: Path, capsys) -> None:
    warehouse = isolated_dlt / "notes.duckdb"
    warehouse.write_text("not a database\n")
    assert cli.main(["--warehouse", str(warehouse), "report"]) == 1
    err = capsys.readouterr().err
    assert f"cannot open {warehouse}: IOException" in err and "now" not in err


def test_nothing_readable_fails_without_blaming_a_lock(tmp_path: Path) -> None:
    from pipelines.destinations import Reader
    from pipelines.destinations.duckdb import DuckDBWarehouse
    from pipelines.report import NothingReadable, write_report

    class Broken(DuckDBWarehouse):  # opens, then answers no query at all
        def reader(self):  # type: ignore[override]
            import contextlib

            con = duckdb.connect()
            con.close()
            return contextlib.nullcontext(Reader(con))

    with pytest.raises(NothingReadable, match="nothing could be read") as raised:
        write_report(Broken(tmp_path / "w.duckdb"), tmp_path / "r.html")
    assert "cannot read" not in str(raised.value)
    assert not (tmp_path / "r.html").exists()


@pytest.mark.parametrize(
    "daily, source",
    [
        ("knock_count BIGINT", "daily stats' knock_count"),
        ("knocks BIGINT", "daily stats' knocks"),
        ("num_knocks DOUBLE", "daily stats' num_knocks"),
        ("stats__knocks_total INTEGER", "daily stats' stats__knocks_total"),
        ("knock_timestamps JSON", "the number of daily stats' knock_timestamps"),
        ("hours_worked DOUBLE", "live rows of solarknock.knocks per rep_id"),
    ],
)
def test_leaderboard_reads_what_the_api_named_it(daily: str, source: str) -> None:
    """The vendor documents "knock count", not a field name: any of these shapes gives the
    same board, one bar per user id, and the note says where the knocks came from."""
    from pipelines.destinations import Reader
    from pipelines.report import solarknock
    from pipelines.report.data import Query

    con = duckdb.connect()
    column = daily.split()[0]
    per_user = {"u1": 7, "u2": 5, "u3": 5}
    con.execute(
        f"""
        CREATE SCHEMA solarknock;
        CREATE TABLE solarknock.users AS SELECT * FROM (VALUES ('u1', 'Alex Kim'),
            ('u2', 'Alex Kim'), ('u3', 'Sam Roe')) AS t(id, name);
        CREATE TABLE solarknock.daily_stats (user_id VARCHAR, "date" DATE, {daily},
            deleted_at TIMESTAMPTZ);
        CREATE TABLE solarknock.knocks (id VARCHAR, rep_id VARCHAR, created_at TIMESTAMPTZ,
            deleted_at TIMESTAMPTZ);
        """
    )
    for user, n in per_user.items():
        for day, share in ((1, n - 2), (2, 2)):  # two days per rep, plus one deleted day
            value = json.dumps(["2026-01-01T10:00:00Z"] * share) if "JSON" in daily else share
            con.execute(
                f"INSERT INTO solarknock.daily_stats (user_id, date, {column}, deleted_at) "
                "VALUES (?, DATE '2026-01-01' + ?, ?, NULL), (?, DATE '2026-01-10', ?, now())",
                [user, day, value, user, value],
            )
        con.execute(
            "INSERT INTO solarknock.knocks SELECT ? || i, ?, now(), NULL FROM range(?) t(i)",
            [user, user, n],
        )
        con.execute(
            "INSERT INTO solarknock.knocks VALUES (? || 'x', ?, now(), now())", [user, user]
        )
    board = solarknock.leaderboard(Query(Reader(con)))
    shown = [(rep.label, rep.get("knocks")) for rep in board.reps]
    assert shown == [("Alex Kim (u1)", 7), ("Alex Kim (u2)", 5), ("Sam Roe", 5)]
    assert board.sources["knocks"] == source


def test_heat_site_without_a_schedule_is_shown() -> None:
    from pipelines.report.charts_energy import heat_timelines

    start = datetime(2026, 6, 1, 9)
    entries = [
        {"site_id": "a", "site_name": "Roof", "asset": "grid", "type": "limit", "value": 5.0,
         "start_at": start + timedelta(hours=h), "end_at": start + timedelta(hours=h + 1)}
        for h in range(4)
    ] + [
        {"site_id": "a", "site_name": "Roof", "asset": "grid", "type": "limit", "value": 7.0,
         "start_at": datetime(2016, 2, 29, 9), "end_at": datetime(2016, 2, 29, 10)},
    ]  # fmt: skip
    sites = [
        {"site_id": s, "site_name": n} for s, n in (("a", "Roof"), ("b", "Roof"), ("c", "Barn"))
    ]
    charts = heat_timelines(entries, sites, "UTC")
    assert [(c.title, c.figure is None) for c in charts] == [
        ("Barn: schedule in force", True),
        ("Roof (a): schedule in force", False),
        ("Roof (b): schedule in force", True),
    ]
    assert charts[0].empty == "No schedule entries in force for this site (latest snapshot)."
    roof = charts[1].figure.to_plotly_json()
    (trace,) = roof["data"]
    assert list(trace["text"]) == ["5", "5", "5", "5"]  # the 2016 entry is not drawn ...
    assert roof["layout"]["xaxis"]["range"] == ["2026-06-01T09:00:00", "2026-06-01T13:00:00"]
    assert "Not drawn, far from the other entries: 1 entry starting 2016-02-29" in charts[1].note


def test_report_timezone_is_checked(isolated_dlt: Path, monkeypatch, capsys) -> None:
    monkeypatch.setenv("SOLARSYNC__REPORT_TIMEZONE", "Mars/Olympus_Mons")
    warehouse = isolated_dlt / "w.duckdb"
    duckdb.connect(str(warehouse)).close()
    assert cli.main(["--warehouse", str(warehouse), "report"]) == 78
    assert "report_timezone = 'Mars/Olympus_Mons' is not a time zone" in capsys.readouterr().err


# --------------------------------------------------------------------------- in Chromium
def test_page_renders_offline_without_errors(rendered: Rendered) -> None:
    assert rendered.console == []
    assert rendered.outside == []  # the page asked nothing from the network
    assert rendered.screenshot.stat().st_size > 50_000


def test_every_chart_rendered_points(rendered: Rendered, built: Built) -> None:
    expected = {
        "freshness-runs",
        "sk-funnel-weekly",
        "sk-funnel-total",
        "sk-leaderboard",
        *(f"heat-schedule-{n}" for n in range(len(built.truth["heat"]))),
        *(f"sa-power-{n}" for n in range(len(built.truth["sa"]))),
        "tesla-energy",
        "tesla-soc",
    }
    assert set(rendered.charts) == expected
    for chart_id, chart in rendered.charts.items():
        has_entries = chart_id.startswith("heat-") and "No schedule entries" in chart["text"]
        if has_entries:
            continue  # a HEAT site without a schedule says so (checked below)
        assert not chart["empty"], chart_id
        assert chart["points"] > 0, chart_id  # drawn in the DOM, not only in the data
        assert sum(len(t["y"] or []) for t in chart["traces"]) > 0, chart_id


def test_failed_run_shows_in_freshness(rendered: Rendered) -> None:
    rows = {row[0]: row for row in rendered.freshness}
    assert set(rows) == {"solarknock", "heat", "solarassistant", "tesla"}
    knock = rows["solarknock"]
    assert knock[1] == "FAILED" and "(run, failed)" in knock[2]
    assert knock[6].startswith("AuthenticationError: solarknock") and "401" in knock[6]
    assert knock[3] != "-"  # its earlier success is still shown
    for source in ("heat", "solarassistant", "tesla"):
        assert rows[source][1] == "OK" and rows[source][6] == ""
    ((_, source, command, error),) = rendered.failures
    assert (source, command) == ("solarknock", "run") and error == knock[6]
    runs = {t["name"]: t for t in rendered.charts["freshness-runs"]["traces"]}
    assert runs["failed"]["y"] == ["solarknock"]
    assert Counter(runs["ok"]["y"]) == {"solarknock": 1, "heat": 1, "solarassistant": 1, "tesla": 3}


def _naive_utc(value: str) -> datetime:
    """An instant of the page (naive wall-clock ISO text) read as UTC."""
    return datetime.fromisoformat(value).replace(tzinfo=UTC)


def _weekly(rows: list[dict], zone: Any = UTC) -> Counter:
    out: Counter = Counter()
    for row in rows:
        if row["deleted_at"]:
            continue
        day = _ts(row["created_at"]).astimezone(zone).date()
        out[(day - timedelta(days=day.weekday())).isoformat()] += 1
    return out


def test_solarknock_numbers_are_the_truth(rendered: Rendered, built: Built) -> None:
    sk = built.truth["sk"]
    weekly = {stage: _weekly(sk[stage]) for stage in ("knocks", "leads", "appointments")}
    traces = {t["name"]: t for t in rendered.charts["sk-funnel-weekly"]["traces"]}
    for stage, counts in weekly.items():
        shown = {x: y for x, y in zip(traces[stage]["x"], traces[stage]["y"], strict=True) if y}
        assert shown == dict(counts), stage
    (funnel,) = rendered.charts["sk-funnel-total"]["traces"]
    assert funnel["x"] == [sum(weekly[s].values()) for s in ("knocks", "leads", "appointments")]

    names = {u["id"]: u["name"] for u in sk["users"]}
    totals: Counter = Counter()
    for day in sk["daily"]:
        if not day["deleted_at"]:
            totals[day["user_id"]] += day["knock_count"]
    (board,) = rendered.charts["sk-leaderboard"]["traces"]
    shown = list(zip(board["customdata"], board["y"], board["x"], strict=True))
    expected = sorted(totals.items(), key=lambda kv: (-kv[1], names[kv[0]].casefold()))[:25]
    assert [(uid, n) for uid, _, n in shown] == expected
    assert all(label == names[uid] for uid, label, _ in shown)  # no shared names here


def test_heat_timelines_are_the_truth(rendered: Rendered, built: Built) -> None:
    expected = {}
    for site in built.truth["heat"].values():
        entries = sorted(
            (f"{s['asset']} {s['type']}", _ts(e["startAt"]), _ts(e["endAt"]), float(e["value"]))
            for s in site.get("schedules") or ()
            for e in s["entries"]
        )
        expected[f"{site['siteName']}: schedule in force"] = entries
    shown = {}
    for chart_id, chart in rendered.charts.items():
        if chart_id.startswith("heat-schedule-"):
            title = chart["text"].splitlines()[0]
            shown[title] = sorted(
                (label, _naive_utc(start), _naive_utc(start) + timedelta(milliseconds=ms), float(v))
                for t in chart["traces"]
                for label, start, ms, v in zip(t["y"], t["base"], t["x"], t["text"], strict=True)
            )
            if chart["traces"]:
                assert chart["layout"]["barmode"] == "overlay"  # full-height bars, labelled
                assert chart["layout"]["xaxis"]["title"] == "time (UTC)"
                assert any("\n" in tick for tick in chart["xticks"])  # the date under the time
    assert shown == expected


def test_solarassistant_power_is_the_truth(rendered: Rendered, built: Built) -> None:
    names = {"PV": "total/pv_power", "load": "total/load_power", "battery": "total/battery_power"}
    shown, text = {}, ""
    for chart_id, chart in rendered.charts.items():
        if chart_id.startswith("sa-power-"):
            site = chart["text"].splitlines()[0].split(":")[0]
            shown[site] = {names[t["name"]]: t["y"][-1] for t in chart["traces"]}
            text += chart["text"]
            assert chart["layout"]["yaxis"]["rangemode"] == "tozero"  # power from 0
            assert chart["layout"]["xaxis"]["title"] == "time (UTC)"
    assert shown == built.truth["sa"]
    offline = built.truth["sa_offline"]
    assert f"No readings in the last 24 h: {offline} (last poll offline" in text


def test_tesla_numbers_are_the_truth(rendered: Rendered, built: Built) -> None:
    served: dict[tuple[str, str], list[float]] = defaultdict(list)
    for reading in built.truth["tesla_log"]:
        served[(reading.meter, reading.field)].append(reading.served)
    assert {len(v) for v in served.values()} == {3}  # one aggregates read per run
    traces = {t["name"]: t for t in rendered.charts["tesla-energy"]["traces"]}
    assert traces  # every meter, both directions
    for (meter, name), values in served.items():
        direction = name.removeprefix("energy_")
        wh = values[-1] - values[0] if values[0] else 0.0  # a counter at 0 is not counted
        trace = traces[f"home {meter} {direction}"]
        assert all(date.fromisoformat(day) for day in trace["x"])
        assert sum(trace["y"]) * 1000 == pytest.approx(wh, abs=1e-6), (meter, direction)
    (soc,) = rendered.charts["tesla-soc"]["traces"]
    assert soc["name"] == "home" and soc["y"] == [built.truth["soc"]] * 3


def test_axes_do_not_mislead(rendered: Rendered) -> None:
    charts = rendered.charts
    # one run-history day of runs seconds apart: an axis of hours, not of microseconds
    runs = charts["freshness-runs"]["layout"]["xaxis"]
    lo, hi = (datetime.fromisoformat(v) for v in runs["range"])
    assert hi - lo >= timedelta(hours=2) and runs["title"] == "finished (UTC)"
    # one day of energy: one tick, the date, no time of day
    energy = charts["tesla-energy"]
    assert [t.replace("\n", " ") for t in energy["xticks"]] == [
        datetime.fromisoformat(energy["traces"][0]["x"][0]).strftime("%b %-d %Y")
    ]
    assert all(t["width"] and t["width"] > 3_600_000 for t in energy["traces"])  # not 1 ms
    assert energy["layout"]["yaxis"]["rangemode"] == "tozero"
    # counts as integers, from zero, on one axis (leads never drawn as many as knocks)
    weekly = charts["sk-funnel-weekly"]["layout"]
    assert weekly["yaxis2"] is None and weekly["yaxis"]["rangemode"] == "tozero"
    for chart_id in ("sk-funnel-weekly", "sk-leaderboard"):
        chart = charts[chart_id]
        axis = chart["layout"]["yaxis" if chart_id == "sk-funnel-weekly" else "xaxis"]
        ticks = chart["yticks" if chart_id == "sk-funnel-weekly" else "xticks"]
        assert axis["tickformat"] == ",d" and not any("k" in t for t in ticks), (chart_id, ticks)
    assert weekly["xaxis"]["title"] == "week starting Monday (UTC)"
    assert all(
        t["connectgaps"] is False
        for t in charts["sk-funnel-weekly"]["traces"]
        if t["type"] == "scatter"
    )


# --------------------------------------------------------------------------- time zones
def test_the_machines_time_zone_moves_nothing(
    built: Built, rendered: Rendered, pages: Opener
) -> None:
    """The report written by a process with TZ=Asia/Kolkata and opened in a browser running
    in Asia/Kolkata draws every point where the UTC machine's page does, and says UTC."""
    page = built.root / "kolkata-machine.html"
    _report(built.warehouse, page, {"TZ": "Asia/Kolkata"})
    kolkata = pages(page, tz="Asia/Kolkata")
    assert kolkata.zone in ("Asia/Kolkata", "Asia/Calcutta") and rendered.zone != kolkata.zone
    assert kolkata.console == [] and "every time on this page is in UTC" in kolkata.header
    for chart_id, chart in rendered.charts.items():
        other = kolkata.charts[chart_id]
        keys = ("name", "x", "y", "base")
        assert [{k: t[k] for k in keys} for t in other["traces"]] == [
            {k: t[k] for k in keys} for t in chart["traces"]
        ], chart_id
        if not chart_id.startswith(("sa-", "tesla-soc")):  # those end at "now"
            assert other["xticks"] == chart["xticks"], chart_id
        title = (chart["layout"] or {}).get("xaxis", {}).get("title") or ""
        if "(" in title:
            assert title.endswith("(UTC)"), (chart_id, title)
    assert [r[:4] for r in kolkata.freshness] == [r[:4] for r in rendered.freshness]


def test_report_timezone_puts_every_axis_in_that_zone(
    built: Built, rendered: Rendered, pages: Opener
) -> None:
    page = built.root / "kolkata-setting.html"
    _report(built.warehouse, page, {"SOLARSYNC__REPORT_TIMEZONE": "Asia/Kolkata"})
    shown = pages(page)
    assert "every time on this page is in Asia/Kolkata" in shown.header
    shift = timedelta(hours=5, minutes=30)
    runs = {t["name"]: t["x"] for t in rendered.charts["freshness-runs"]["traces"]}
    moved = {t["name"]: t["x"] for t in shown.charts["freshness-runs"]["traces"]}
    assert moved == {
        name: [(datetime.fromisoformat(x) + shift).isoformat() for x in xs]
        for name, xs in runs.items()
    }
    for chart_id, chart in shown.charts.items():
        title = (chart["layout"] or {}).get("xaxis", {}).get("title") or ""
        if chart_id.startswith(("freshness", "sk-funnel-weekly", "heat", "sa-", "tesla")):
            assert title.endswith("(Asia/Kolkata)"), (chart_id, title)
    assert all(row[2].split(" (")[0].endswith("Asia/Kolkata") for row in shown.freshness)
    sk = built.truth["sk"]
    traces = {t["name"]: t for t in shown.charts["sk-funnel-weekly"]["traces"]}
    zone = __import__("zoneinfo").ZoneInfo("Asia/Kolkata")
    knocks = {x: y for x, y in zip(traces["knocks"]["x"], traces["knocks"]["y"], strict=True) if y}
    assert knocks == dict(_weekly(sk["knocks"], zone))  # weeks of Kolkata, not of UTC


# --------------------------------------------------------------------------- other APIs
@pytest.fixture(scope="session")
def awkward_page(awkward: Awkward, pages: Opener) -> Rendered:
    return pages(awkward.report)


def test_reps_who_share_a_name_are_separate_bars(awkward: Awkward, awkward_page: Rendered) -> None:
    assert awkward_page.console == []
    chart = awkward_page.charts["sk-leaderboard"]
    assert not chart["empty"]
    (board,) = chart["traces"]
    totals: Counter = Counter()
    for day in awkward.daily:
        if not day["deleted_at"]:
            totals[day["user_id"]] += day["knocks"]
    shown = dict(zip(board["customdata"], board["x"], strict=True))
    assert shown == {uid: n for uid, n in totals.items() if uid in shown}
    assert len(shown) == len(totals)  # every rep with stats (fewer than the top 25)
    alike = [label for label in board["y"] if label.startswith(AWKWARD_NAME)]
    assert sorted(alike) == sorted(f"{AWKWARD_NAME} ({uid})" for uid in awkward.users)
    assert len(set(board["y"])) == len(board["y"])  # one category per bar
    assert "knocks: daily stats' knocks" in chart["note"]  # the API's name, not knock_count


def test_an_outlier_date_does_not_stretch_the_funnel(
    awkward: Awkward, awkward_page: Rendered
) -> None:
    chart = awkward_page.charts["sk-funnel-weekly"]
    real = _weekly([k for k in awkward.knocks if k["id"] != awkward.outlier_id])
    for rows in (awkward.leads, awkward.appointments):
        real |= _weekly(rows)
    first, last = min(real), max(real)
    lo, hi = chart["layout"]["xaxis"]["range"]
    assert first > "2016-12-31"
    assert date.fromisoformat(first) - timedelta(days=4) <= datetime.fromisoformat(lo).date()
    assert datetime.fromisoformat(hi).date() <= date.fromisoformat(last) + timedelta(days=4)
    for trace in chart["traces"]:
        assert trace["x"][0] == first and trace["x"][-1] == last
    assert "Outliers not drawn: 1 knock created in the weeks of 2016-02-29" in chart["note"]
    (funnel,) = awkward_page.charts["sk-funnel-total"]["traces"]
    assert funnel["x"][0] == sum(1 for k in awkward.knocks if not k["deleted_at"])


# --------------------------------------------------------------------------- scale
def test_a_week_of_polls_is_downsampled_keeping_extremes_and_gaps(
    week: Week, pages: Opener
) -> None:
    from pipelines.report.settings import DEFAULT_MAX_POINTS

    polls = week.polls
    shown = pages(week.report)
    assert shown.console == []
    size = week.report.stat().st_size
    assert size < 8_000_000, size  # plotly.js (~4.6 MB) and ~2,000 points per series
    gap_lo, gap_hi = (g.astimezone(UTC).replace(tzinfo=None) for g in polls.gap)
    lines = {}
    for chart_id, chart in shown.charts.items():
        if chart_id.startswith("sa-power-") or chart_id == "tesla-soc":
            for trace in chart["traces"]:
                lines[(chart["text"].splitlines()[0].split(":")[0], trace["name"])] = trace
            assert "downsampled (min/max per bucket)" in chart["layout"]["annotations"]
            assert chart["note"].startswith("Downsampled:"), chart["note"]
    site_names = {str(site_id): name for site_id, name in polls.sites}
    topic_of = {
        "PV": "total/pv_power",
        "load": "total/load_power",
        "battery": "total/battery_power",
    }
    expected_lines = {(name, t) for name in site_names.values() for t in topic_of} | {
        ("Battery state of charge (last 7 days)", "home")
    }
    assert expected_lines <= set(lines)
    for (where, name), trace in lines.items():
        if (where, name) not in expected_lines:
            continue
        drawn = [(x, y) for x, y in zip(trace["x"], trace["y"], strict=True) if y is not None]
        assert len(trace["x"]) <= DEFAULT_MAX_POINTS and 500 < len(drawn)  # a bound, not a few
        assert trace["mode"] == "lines" and trace["connectgaps"] is False
        if name == "home":
            spike = polls.spikes["home"]
        else:
            site_id = next(s for s, n in site_names.items() if n == where)
            spike = polls.spikes[f"{site_id} {topic_of[name]}"]
        assert max(y for _, y in drawn) == spike, (where, name)  # the extreme survives
        breaks = [
            datetime.fromisoformat(x)
            for x, y in zip(trace["x"], trace["y"], strict=True)
            if y is None
        ]
        assert any(gap_lo <= b <= gap_hi for b in breaks), (where, name)  # no line across
        assert not any(gap_lo < datetime.fromisoformat(x) < gap_hi for x, _ in drawn)


def test_weeks_without_rows_are_gaps(awkward: Awkward, awkward_page: Rendered) -> None:
    busy = set()
    for rows in (awkward.knocks, awkward.leads, awkward.appointments):
        busy |= set(_weekly(rows))
    traces = awkward_page.charts["sk-funnel-weekly"]["traces"]
    weeks = traces[0]["x"]
    assert weeks == sorted(weeks) and len(set(weeks)) == len(weeks)
    steps = {
        date.fromisoformat(b) - date.fromisoformat(a)
        for a, b in zip(weeks, weeks[1:], strict=False)
    }
    assert steps == {timedelta(days=7)}  # every week of the range, empty ones included
    empty = [n for n, week in enumerate(weeks) if week not in busy]
    assert len(empty) >= 3  # the hollow weeks (and any the data has)
    for trace in traces:
        assert all(trace["y"][n] is None for n in empty), trace["name"]


# --------------------------------------------------------------------------- destinations
SOC_SQL = """
CREATE SCHEMA IF NOT EXISTS tesla;
CREATE TABLE tesla.battery_soe (polled_at TIMESTAMPTZ NOT NULL, gateway VARCHAR NOT NULL,
    percentage DOUBLE PRECISION);
INSERT INTO tesla.battery_soe
SELECT TIMESTAMPTZ '{start}' + i * INTERVAL '5 seconds', 'home',
       CASE WHEN i = 4000 THEN 100.0 ELSE 40 + (i % 97) / 10.0 END
FROM generate_series(0, 9999) AS g(i)
WHERE NOT (i BETWEEN 6000 AND 6999);
"""


def _figures(warehouse: Any, now: datetime) -> dict[str, Any]:
    """The report's charts as Plotly JSON (what the page embeds), by chart id."""
    from pipelines.report import Page, data, settings

    config = settings.load()
    with data.open_query(warehouse, config.zone_name) as query:
        page = Page(query, config, now)
        sections = page.sections()
    assert page.failures == []
    return {
        c.id: json.loads(c.figure.to_json())["data"] if c.figure else c.empty
        for s in sections
        for c in s.charts
        if not c.id.startswith("freshness")
    }


def test_the_report_draws_the_same_on_postgres(
    postgres_warehouse, sk_sandbox, isolated_dlt: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every query of the report (written once, DuckDB's dialect) runs on Postgres through its
    reader and draws exactly what it draws on DuckDB, downsampling included."""
    import psycopg2

    from pipelines.destinations.duckdb import DuckDBWarehouse
    from pipelines.registry import get
    from pipelines.sync import run_source

    monkeypatch.setenv("SOLARSYNC__REPORT_MAX_POINTS", "300")
    now = datetime(2026, 6, 1, 12, tzinfo=UTC)
    soc = SOC_SQL.format(start=(now - timedelta(hours=14)).isoformat())
    duck = DuckDBWarehouse(isolated_dlt / "report.duckdb")
    for n, warehouse in enumerate((duck, postgres_warehouse)):
        monkeypatch.setenv("DLT_DATA_DIR", str(isolated_dlt / f"dlt-{n}"))
        assert run_source(get("solarknock"), warehouse).ok
    with duckdb.connect(str(duck.path)) as con:
        con.execute(soc.replace("DOUBLE PRECISION", "DOUBLE"))
    with psycopg2.connect(postgres_warehouse.credentials.to_native_representation()) as pg:
        with pg.cursor() as cursor:
            cursor.execute(soc)
    on_duckdb, on_postgres = _figures(duck, now), _figures(postgres_warehouse, now)
    assert on_postgres == on_duckdb
    (line,) = on_duckdb["tesla-soc"]
    assert len(line["x"]) <= 300 and max(v for v in line["y"] if v is not None) == 100.0
    assert None in line["y"]  # the 83 minutes without a poll
    (board,) = on_duckdb["sk-leaderboard"]
    assert len(board["y"]) == len(set(board["y"])) > 1
