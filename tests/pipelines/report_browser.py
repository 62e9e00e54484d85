"""The report opened in a real headless Chromium (Debian's package) with the network blocked,
and what Plotly drew read back from the page: ``gd.data`` and ``gd.layout`` of every
``.js-plotly-plot``, the tick labels Plotly rendered, the notes and tables. No screenshots
are compared; one is saved for people.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

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


def chromium() -> str:
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
    header: str
    zone: str  # the browser's own time zone (Intl), to show the test really moved it
    screenshot: Path


READ_CHARTS = """() => Object.fromEntries([...document.querySelectorAll('figure.chart')].map(f => {
    const gd = f.querySelector('.js-plotly-plot');
    const arr = v => (v === undefined || v === null) ? null : Array.from(v);
    const axis = a => a ? {title: a.title ? a.title.text : null, range: arr(a.range),
        type: a.type, rangemode: a.rangemode, tickformat: a.tickformat, dtick: a.dtick,
        tickformatstops: a.tickformatstops ? a.tickformatstops.length : 0} : null;
    const ticks = cls => gd ? [...gd.querySelectorAll('.' + cls + ' text')].map(
        t => [...t.querySelectorAll('tspan')].map(s => s.textContent).join('\\n')
             || t.textContent) : [];
    const note = f.querySelector('p.note');
    return [f.dataset.chart, {
        empty: f.classList.contains('empty'),
        failed: f.classList.contains('failed'),
        text: f.innerText,
        note: note ? note.innerText : '',
        points: gd ? gd.querySelectorAll('.point').length : 0,
        lines: gd ? gd.querySelectorAll('.scatterlayer .js-line').length : 0,
        traces: gd ? gd.data.map(t => ({name: t.name, type: t.type, mode: t.mode,
            connectgaps: t.connectgaps, x: arr(t.x), y: arr(t.y), base: arr(t.base),
            text: arr(t.text), width: t.width, customdata: arr(t.customdata)})) : [],
        layout: gd ? {xaxis: axis(gd.layout.xaxis), yaxis: axis(gd.layout.yaxis),
            yaxis2: axis(gd.layout.yaxis2), barmode: gd.layout.barmode,
            annotations: (gd.layout.annotations || []).map(a => a.text)} : null,
        xticks: ticks('xtick'),
        yticks: ticks('ytick'),
    }];
}))"""
READ_CELLS = """sel => [...document.querySelectorAll(sel + ' tbody tr')].map(
    tr => [...tr.querySelectorAll('td')].map(td => td.innerText))"""
ALL_DRAWN = (
    "() => document.querySelectorAll('figure.chart:not(.empty) .js-plotly-plot .main-svg')"
    ".length >= document.querySelectorAll('figure.chart:not(.empty)').length"
)


def read_page(context: Any, path: Path, shot: Path) -> Rendered:
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
    page.wait_for_function(ALL_DRAWN)
    result = Rendered(
        charts=page.evaluate(READ_CHARTS),
        console=console,
        outside=outside,
        freshness=page.evaluate(READ_CELLS, "table.freshness"),
        failures=page.evaluate(READ_CELLS, "table.failures"),
        header=page.evaluate("() => document.querySelector('header').innerText"),
        zone=page.evaluate("() => Intl.DateTimeFormat().resolvedOptions().timeZone"),
        screenshot=shot,
    )
    page.screenshot(path=str(shot), full_page=True)
    page.close()
    return result


Opener = Callable[..., Rendered]


@contextmanager
def browser(root: Path) -> Iterator[Opener]:
    """``open(path, tz=None)``: the page read in Chromium; ``tz`` runs that browser with
    ``TZ`` set (and the same zone emulated), as on a machine in that zone."""
    executable = chromium()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        launched: dict[str | None, Any] = {}

        def open_page(path: Path, tz: str | None = None) -> Rendered:
            if tz not in launched:
                env = {k: v for k, v in os.environ.items() if k != "TZ"}
                if tz:
                    env["TZ"] = tz
                launched[tz] = pw.chromium.launch(
                    executable_path=executable, headless=True, args=CHROMIUM_FLAGS, env=env
                )
            context = launched[tz].new_context(
                offline=True, viewport={"width": 1280, "height": 900}, timezone_id=tz
            )
            blocked: list[str] = []

            def block(route: Any) -> None:
                blocked.append(route.request.url)
                route.abort()

            context.route(lambda url: not url.startswith(("file:", "data:", "about:")), block)
            try:
                result = read_page(context, path, root / f"{path.stem}-{tz or 'local'}.png")
            finally:
                context.close()
            result.outside.extend(blocked)
            return result

        try:
            yield open_page
        finally:
            for launched_browser in launched.values():
                launched_browser.close()
