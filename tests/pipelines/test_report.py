"""``solarsync report`` opened in a real headless Chromium (Debian's package) with the network
blocked: no console error, every chart drew its points, the failed run shows, and the numbers
are the sandboxes' truth.

The data: the four sandboxes synced once into one warehouse (Tesla three times: energy needs
two readings), plus one SolarKnock run with a wrong key, built once per session.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import tempfile
from collections import Counter, defaultdict
from collections.abc import Iterator
from contextlib import redirect_stdout
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import pytest

from pipelines import cli

WRONG_KEY = "sk_WRONGREPORTKEY31"
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
    # nothing leaves the machine even if a request slipped past the route below
    "--proxy-server=http://127.0.0.1:9",
    "--proxy-bypass-list=<-loopback>",
]


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


# --------------------------------------------------------------------------- in Chromium
def _chromium() -> str:
    """Debian's Chromium; skipped only outside CI where none can be installed."""
    found = next(
        (p for p in map(shutil.which, ("chromium", "chromium-browser", "google-chrome")) if p),
        None,
    )
    reason = None
    if found is None:
        reason = "no Chromium found (apt-get install chromium)"
    else:
        try:
            import playwright.sync_api  # noqa: F401
        except ImportError:
            reason = "the playwright package is missing (pip install -e '.[dev]')"
    if reason:
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI must run the browser test: {reason}")
        pytest.skip(reason)
    return found


@dataclass
class Rendered:
    charts: dict[str, dict[str, Any]]
    console: list[str]
    outside: list[str]
    freshness: list[list[str]]
    failures: list[list[str]]
    screenshot: Path


def _open(context: Any, path: Path, shot: Path) -> Rendered:
    page = context.new_page()
    console: list[str] = []
    outside: list[str] = []
    page.on(
        "console",
        lambda m: console.append(f"{m.type}: {m.text}") if m.type in ("error", "warning") else None,
    )
    page.on("pageerror", lambda e: console.append(f"pageerror: {e}"))
    page.on(
        "request",
        lambda r: (
            None
            if r.url.startswith(("file:", "data:", "about:", "blob:"))
            else outside.append(r.url)
        ),
    )
    page.goto(path.resolve().as_uri(), wait_until="load")
    page.wait_for_function(
        "() => document.querySelectorAll('figure.chart:not(.empty) .js-plotly-plot').length"
        " === document.querySelectorAll('figure.chart:not(.empty)').length"
    )
    charts = page.evaluate(
        """() => Object.fromEntries([...document.querySelectorAll('figure.chart')].map(f => {
            const gd = f.querySelector('.js-plotly-plot');
            const arr = v => (v === undefined || v === null) ? null : Array.from(v);
            return [f.dataset.chart, {
                empty: f.classList.contains('empty'),
                text: f.innerText,
                points: gd ? gd.querySelectorAll('.point').length : 0,
                traces: gd ? gd.data.map(t => ({name: t.name, type: t.type, x: arr(t.x),
                    y: arr(t.y), base: arr(t.base), text: arr(t.text)})) : [],
            }];
        }))"""
    )
    cells = """sel => [...document.querySelectorAll(sel + ' tbody tr')].map(
        tr => [...tr.querySelectorAll('td')].map(td => td.innerText))"""
    freshness = page.evaluate(cells, "table.freshness")
    failures = page.evaluate(cells, "table.failures")
    page.screenshot(path=str(shot), full_page=True)
    page.close()
    return Rendered(charts, console, outside, freshness, failures, shot)


@pytest.fixture(scope="session")
def rendered(built: Built) -> Iterator[Rendered]:
    executable = _chromium()
    from playwright.sync_api import sync_playwright

    profile = tempfile.mkdtemp(prefix="chromium-profile-", dir=built.root)  # fresh profile
    with sync_playwright() as pw:
        context = pw.chromium.launch_persistent_context(
            profile,
            executable_path=executable,
            headless=True,
            args=CHROMIUM_FLAGS,
            offline=True,
            viewport={"width": 1280, "height": 900},
        )
        blocked: list[str] = []

        def block(route: Any) -> None:
            blocked.append(route.request.url)
            route.abort()

        context.route(lambda url: not url.startswith(("file:", "data:", "about:")), block)
        try:
            result = _open(context, built.report, built.root / "report.png")
        finally:
            context.close()
    result.outside.extend(blocked)
    yield result


def test_page_renders_offline_without_errors(rendered: Rendered) -> None:
    assert rendered.console == []
    assert rendered.outside == []  # the page asked nothing from the network
    assert rendered.screenshot.stat().st_size > 50_000


def test_every_chart_rendered_points(rendered: Rendered, built: Built) -> None:
    sites_with_entries = sum(
        1
        for site in built.truth["heat"].values()
        if any(s["entries"] for s in site.get("schedules") or ())
    )
    expected = {
        "freshness-runs",
        "sk-funnel-weekly",
        "sk-funnel-total",
        "sk-leaderboard",
        *(f"heat-schedule-{n}" for n in range(sites_with_entries)),
        *(f"sa-power-{n}" for n in range(len(built.truth["sa"]))),
        "tesla-energy",
        "tesla-soc",
    }
    assert set(rendered.charts) == expected
    for chart_id, chart in rendered.charts.items():
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


def test_solarknock_numbers_are_the_truth(rendered: Rendered, built: Built) -> None:
    sk = built.truth["sk"]
    weekly: dict[str, Counter] = {}
    for stage in ("knocks", "leads", "appointments"):
        weekly[stage] = Counter(_week(r["created_at"]) for r in sk[stage] if not r["deleted_at"])
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
            totals[names.get(day["user_id"], day["user_id"])] += day["knock_count"]
    top = sorted(totals.items(), key=lambda kv: (-kv[1], kv[0]))[:15]
    (board,) = rendered.charts["sk-leaderboard"]["traces"]
    assert list(zip(reversed(board["y"]), reversed(board["x"]), strict=True)) == top


def test_heat_timelines_are_the_truth(rendered: Rendered, built: Built) -> None:
    expected = {}
    for site in built.truth["heat"].values():
        entries = sorted(
            (f"{s['asset']} {s['type']}", _ts(e["startAt"]), _ts(e["endAt"]), float(e["value"]))
            for s in site.get("schedules") or ()
            for e in s["entries"]
        )
        if entries:
            expected[f"{site['siteName']}: schedule in force"] = entries
    shown = {}
    for chart_id, chart in rendered.charts.items():
        if chart_id.startswith("heat-schedule-"):
            title = chart["text"].splitlines()[0]
            shown[title] = sorted(
                (label, _ts(start), _ts(start) + timedelta(milliseconds=ms), float(value))
                for t in chart["traces"]
                for label, start, ms, value in zip(
                    t["y"], t["base"], t["x"], t["text"], strict=True
                )
            )
    assert shown == expected


def test_solarassistant_power_is_the_truth(rendered: Rendered, built: Built) -> None:
    names = {"PV": "total/pv_power", "load": "total/load_power", "battery": "total/battery_power"}
    shown, text = {}, ""
    for chart_id, chart in rendered.charts.items():
        if chart_id.startswith("sa-power-"):
            site = chart["text"].splitlines()[0].split(":")[0]
            shown[site] = {names[t["name"]]: t["y"][-1] for t in chart["traces"]}
            text += chart["text"]
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
