"""``solarsync report``: one self-contained HTML page (Plotly's JS inlined; opens offline)
from the analytics views: data freshness per source, the SolarKnock funnel and leaderboard,
HEAT schedules per site, SolarAssistant power per site over the last day, Tesla energy per
day and battery state of charge.

Layout: ``data`` (read-only SQL through one reader), ``charts`` (Plotly figures), ``page``
(the HTML).
"""

from __future__ import annotations

import html
import os
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

from pipelines.destinations import Warehouse, as_warehouse
from pipelines.history import age, health, when
from pipelines.report import charts, data
from pipelines.report.data import WarehouseUnreadable
from pipelines.report.page import Section, render, table_html

__all__ = ["WarehouseUnreadable", "default_output", "write_report"]

RUNS_DAYS = 14
POWER_HOURS = 24
SOC_DAYS = 7


def default_output(warehouse: Warehouse) -> Path:
    """Next to a DuckDB file (``warehouse/solarsync.duckdb`` ->
    ``warehouse/solarsync-report.html``), else ``warehouse/solarsync-report.html``."""
    path = getattr(warehouse, "path", None)
    if isinstance(path, Path):
        return path.with_name(f"{path.stem}-report.html")
    return Path("warehouse") / "solarsync-report.html"


def freshness(query: data.Query, now: datetime) -> Section:
    from pipelines.registry import SOURCES

    last = data.last_runs(query)
    rows = []
    for source in sorted(set(SOURCES) | set(last)):
        state = health(source, *last.get(source, (None, None)), now=now)
        run = state["last_run"] or {}
        label = state["state"]
        error = run.get("error_message") or ""
        if error:
            error = f'<span class="error">{html.escape(run.get("error_class") or "")}: '
            error += f"{html.escape(run['error_message'])}</span>"
        rows.append(
            [
                html.escape(source),
                f'<span class="state state-{label.replace(" ", "-")}">{label.upper()}</span>',
                html.escape(
                    f"{when(run.get('finished_at'))} ({run['command']}, {run['status']})"
                    if run
                    else "-"
                ),
                html.escape(when(state["last_success_at"])),
                html.escape(age(state["age_s"])),
                html.escape(state["expected_interval"]),
                error,
            ]
        )
    headers = [
        "source",
        "state",
        "last run",
        "last success",
        "since last success",
        "expected every",
        "last run's error",
    ]
    blocks = [table_html(headers, rows, "freshness")]
    failed = data.failures(query)
    if failed:
        blocks.append("<h3>Recent failed runs</h3>")
        blocks.append(
            table_html(
                ["finished", "source", "command", "error"],
                [
                    [
                        html.escape(when(f["finished_at"])),
                        html.escape(f["source"]),
                        html.escape(f["command"]),
                        f'<span class="error">{html.escape(f["error_class"] or "")}: '
                        f"{html.escape(f['error_message'] or '')}</span>",
                    ]
                    for f in failed
                ],
                "failures",
            )
        )
    return Section(
        "freshness",
        "Data freshness",
        "From analytics.sync_runs. A source is stale when its last success is older than its "
        "expected interval ([sources.<name>] expected_interval, default 26h).",
        blocks,
        [charts.runs_timeline(data.runs(query, now - timedelta(days=RUNS_DAYS)), RUNS_DAYS)],
    )


def build(query: data.Query, now: datetime) -> list[Section]:
    funnel = data.funnel_by_week(query)
    readings, sites = data.solarassistant_power(query, now - timedelta(hours=POWER_HOURS))
    return [
        freshness(query, now),
        Section(
            "solarknock",
            "SolarKnock: funnel and leaderboard",
            charts=[
                charts.funnel_weekly(funnel),
                charts.funnel_totals(funnel),
                charts.leaderboard(data.leaderboard(query)),
            ],
        ),
        Section(
            "heat",
            "HEAT: schedules per site",
            "Entries of the latest snapshot (analytics.heat_schedules_current); bar labels are "
            "the scheduled values.",
            charts=charts.heat_timelines(data.heat_schedules(query)),
        ),
        Section(
            "solarassistant",
            "SolarAssistant: PV, load and battery power per site",
            f"Readings polled in the last {POWER_HOURS} hours (solarassistant.metrics).",
            charts=charts.solarassistant_power(readings, sites, POWER_HOURS),
        ),
        Section(
            "tesla",
            "Tesla gateway: energy and battery",
            charts=[
                charts.tesla_energy(data.tesla_energy_daily(query)),
                charts.tesla_soc(data.tesla_soc(query, now - timedelta(days=SOC_DAYS)), SOC_DAYS),
            ],
        ),
    ]


def write_report(
    warehouse: Warehouse | str | os.PathLike[str],
    output: str | os.PathLike[str] | None = None,
    now: datetime | None = None,
) -> Path:
    """Write the page for ``warehouse`` (a :class:`Warehouse` or a DuckDB file) to ``output``
    (atomically) and return its path. Raises :class:`WarehouseUnreadable`."""
    import plotly.offline

    warehouse = as_warehouse(warehouse)
    now = now or datetime.now(UTC)
    output = Path(output or default_output(warehouse))
    with data.open_query(warehouse) as query:
        sections = build(query, now)
    page = render(
        "solarsync report",
        f"{warehouse.describe()} · generated {now:%Y-%m-%d %H:%M} UTC",
        sections,
        plotly.offline.get_plotlyjs(),
    )
    output.parent.mkdir(parents=True, exist_ok=True)
    fd, temp = tempfile.mkstemp(dir=output.parent, prefix=f".{output.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(page)
        os.chmod(temp, 0o644)
        os.replace(temp, output)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise
    return output
