"""Scenario group 8: the report page with a week of 5-second polls (issue 20).

A DuckDB warehouse gets a week of synthetic 5 s polls (``bench/polls.py``: PV, load and
battery power of two SolarAssistant sites, the Powerwall's state of charge; ~121k readings
per series, of which the 24 h power charts read ~17k). Then ``solarsync report`` (its own
process, as a user runs it) writes the page three ways:

- **before**: the code at ``BEFORE`` (the last commit before downsampling), which embeds
  every reading;
- **every reading**: today's code with ``SOLARSYNC__REPORT_MAX_POINTS=0``;
- **downsampled**: today's code as shipped (min/max per bucket, 2,000 points per series);
- **no data (floor)**: the page of an empty warehouse: Plotly's JavaScript (~4.6 MB, inlined
  so the page opens offline) parsed with nothing to draw, the least any page costs.

Each page is opened in headless Chromium (Debian's, network blocked, a fresh context per
load) ``LOADS`` times: the time from navigation to every chart drawn (the page's own
``performance.now()`` after two animation frames once every Plotly graph has its SVG), its
JS heap, and the points its figures hold. Reported: medians, HTML size, the time to write the
page and that process's peak RSS; ratios to "before" come from the same run.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import tarfile
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

BEFORE = "36d07e1"  # main before issue 20's report work: every reading embedded
LOADS = 3
SITES = [(101, "Roof"), (102, "Barn")]
DRAWN = (
    "() => document.querySelectorAll('figure.chart:not(.empty) .js-plotly-plot .main-svg').length"
    " >= document.querySelectorAll('figure.chart:not(.empty)').length"
)
AFTER_PAINT = """() => new Promise(done => requestAnimationFrame(() => requestAnimationFrame(
    () => done({ms: performance.now(),
                heap: performance.memory ? performance.memory.usedJSHeapSize : null,
                points: [...document.querySelectorAll('.js-plotly-plot')].reduce(
                    (n, gd) => n + gd.data.reduce((m, t) => m + (t.x ? t.x.length : 0), 0), 0),
                charts: document.querySelectorAll('.js-plotly-plot').length}))))"""


def _old_tree(root: Path, into: Path) -> Path:
    """The repository at ``BEFORE`` (``git archive``), to run the old report from."""
    into.mkdir(parents=True, exist_ok=True)
    archive = into / "before.tar"
    with open(archive, "wb") as out:
        subprocess.run(["git", "archive", BEFORE], cwd=root, stdout=out, check=True, timeout=120)
    with tarfile.open(archive) as tar:
        tar.extractall(into / "tree", filter="data")
    return into / "tree"


def load_times(path: Path, loads: int = LOADS) -> dict[str, Any]:
    """Open ``path`` ``loads`` times in headless Chromium, each in a fresh context."""
    from playwright.sync_api import sync_playwright

    from bench.cli import log

    executable = next(
        (p for p in ("/usr/bin/chromium", "/usr/bin/chromium-browser") if Path(p).exists()), None
    )
    if executable is None:
        return {"error": "no Chromium (apt-get install chromium)"}
    samples: list[dict[str, Any]] = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=executable,
            headless=True,
            args=["--no-sandbox", "--disable-gpu", "--enable-precise-memory-info"],
        )
        try:
            for _ in range(loads):
                context = browser.new_context(offline=True, viewport={"width": 1280, "height": 900})
                context.route(
                    lambda url: not url.startswith(("file:", "data:", "about:")),
                    lambda route: route.abort(),
                )
                page = context.new_page()
                page.goto(path.resolve().as_uri(), wait_until="load", timeout=600_000)
                page.wait_for_function(DRAWN, timeout=600_000)
                samples.append(page.evaluate(AFTER_PAINT))
                context.close()
        finally:
            browser.close()
    ms = [s["ms"] for s in samples]
    heaps = [s["heap"] for s in samples if s["heap"]]
    log(f"   {path.name}: loads {', '.join(f'{m:.0f}' for m in ms)} ms")
    return {
        "load_ms": [round(m) for m in ms],
        "load_ms_median": round(statistics.median(ms)),
        "js_heap_mb": round(statistics.median(heaps) / 1e6, 1) if heaps else None,
        "points": samples[0]["points"],
        "charts": samples[0]["charts"],
    }


def scenario_report(bench: Any, results: dict[str, Any]) -> None:
    import duckdb

    from bench.cli import ROOT, log
    from bench.polls import week_of_polls
    from bench.proc import measure

    out: dict[str, Any] = {"before_commit": BEFORE, "loads": LOADS, "variants": {}}
    results["report"] = out
    run_dir = bench.run_dir("report")
    warehouse = run_dir / "week.duckdb"
    log("8. report: a week of 5 s polls into a fresh warehouse")
    con = duckdb.connect(str(warehouse))
    try:
        polls = week_of_polls(con, datetime.now(UTC), sites=SITES)
        out["readings"] = con.execute(
            "SELECT (SELECT count(*) FROM solarassistant.metrics) "
            "+ (SELECT count(*) FROM tesla.battery_soe)"
        ).fetchone()[0]
    finally:
        con.close()
    out["per_series"] = polls.per_series
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SOLARSYNC__", "SOURCES__"))}
    env |= {"RUNTIME__DLTHUB_TELEMETRY": "false", "DLT_DATA_DIR": str(run_dir / "dlt")}
    variants: list[tuple[str, list[str], dict[str, str], Path]] = []
    try:
        old = _old_tree(ROOT, Path(tempfile.mkdtemp(prefix="before-", dir=run_dir)))
        variants.append(
            (f"before ({BEFORE})", [bench.python, "-m", "pipelines"], {"PYTHONPATH": str(old)}, old)
        )
    except Exception as exc:  # no git, or not a clone: measure today's code only
        out["variants"][f"before ({BEFORE})"] = {"error": f"{type(exc).__name__}: {exc}"}
    variants += [
        ("every reading", bench.solarsync, {"SOLARSYNC__REPORT_MAX_POINTS": "0"}, run_dir),
        ("downsampled", bench.solarsync, {}, run_dir),
        ("no data (floor)", bench.solarsync, {}, run_dir),
    ]
    empty = run_dir / "empty.duckdb"
    duckdb.connect(str(empty)).close()
    for n, (name, cmd, extra, cwd) in enumerate(variants):
        page = run_dir / f"report-{n}.html"
        log(f"8. report: {name}")
        source = empty if name.startswith("no data") else warehouse
        m = measure(
            [*cmd, "--warehouse", str(source), "report", "--output", str(page)],
            env=env | extra,
            cwd=cwd,
            timeout_s=900,
            log_name=f"report-{n}",
        )
        result: dict[str, Any] = {"write_s": round(m.wall_s, 2), "peak_rss_mb": m.peak_rss_mb}
        out["variants"][name] = result
        if not m.ok or not page.exists():
            result["error"] = m.failure() or "no page written"
            continue
        result["html_bytes"] = page.stat().st_size
        try:
            result.update(load_times(page))
        except Exception as exc:
            result["error"] = f"{type(exc).__name__}: {str(exc).splitlines()[0]}"
    base = out["variants"].get(f"before ({BEFORE})", {})
    for result in out["variants"].values():
        if base.get("load_ms_median") and result.get("load_ms_median"):
            result["load_vs_before"] = round(result["load_ms_median"] / base["load_ms_median"], 3)
        if base.get("html_bytes") and result.get("html_bytes"):
            result["size_vs_before"] = round(result["html_bytes"] / base["html_bytes"], 3)


def render_report_page(results: dict[str, Any]) -> list[str]:
    s = results.get("report")
    if not s:
        return []
    lines = [
        f"8. Report page, a week of 5 s polls: {s.get('per_series', 0):,} polls per series "
        f"({s.get('readings', 0):,} readings: power of {len(SITES)} SolarAssistant sites, "
        f"the Powerwall's charge), opened {s['loads']}x in headless Chromium",
    ]
    head = (
        f"   {'page':<24}{'HTML MB':>9}{'points':>10}{'load ms':>9}{'vs before':>11}"
        f"{'JS heap MB':>12}{'write s':>9}{'RSS MB':>8}"
    )
    lines += [head, "   " + "-" * (len(head) - 3)]
    for name, v in s["variants"].items():
        if v.get("error") and not v.get("load_ms_median"):
            lines.append(f"   {name:<24}  ! {str(v['error'])[:110]}")
            continue
        ratio = v.get("load_vs_before")
        lines.append(
            f"   {name:<24}{v['html_bytes'] / 1e6:>9.1f}{v['points']:>10,}"
            f"{v['load_ms_median']:>9,}{(f'{ratio:.2f}x' if ratio else '-'):>11}"
            f"{(v.get('js_heap_mb') or 0):>12.0f}{v['write_s']:>9.1f}{v['peak_rss_mb']:>8.0f}"
        )
    lines.append("")
    return lines
