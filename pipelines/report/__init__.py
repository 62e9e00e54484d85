"""``solarsync report``: one self-contained HTML page (Plotly's JS inlined; opens offline)
from the warehouse: data freshness per source, the SolarKnock funnel and leaderboard, HEAT
schedules per site, SolarAssistant power per site over the last day, Tesla energy per day and
battery state of charge.

Every time on the page is in one zone, ``[solarsync] report_timezone`` (default UTC), named on
each axis. A chart whose query fails shows the error in its place and the rest of the page
renders; only a warehouse that cannot be opened (or answers nothing at all) fails the command.

Layout: ``settings`` (the ``report_*`` keys), ``data``, ``series`` and ``solarknock``
(read-only SQL through one reader), ``axes``, ``charts`` and ``charts_energy`` (Plotly
figures), ``page`` (the HTML).
"""

from __future__ import annotations

import html
import logging
import os
import tempfile
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from pipelines.destinations import Warehouse, as_warehouse
from pipelines.history import age, health
from pipelines.report import charts, charts_energy, data, series, settings, solarknock
from pipelines.report.charts import Chart
from pipelines.report.data import NothingReadable, WarehouseUnreadable
from pipelines.report.page import Section, render, table_html

__all__ = ["NothingReadable", "WarehouseUnreadable", "default_output", "write_report"]

logger = logging.getLogger("solarsync")

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


class Page:
    """Builds the sections; a chart whose data or figure fails becomes that error in place."""

    def __init__(self, query: data.Query, config: settings.ReportSettings, now: datetime) -> None:
        self.query = query
        self.config = config
        self.now = now  # aware
        self.zone = config.zone_name
        self.wall_now = now.astimezone(config.zone).replace(tzinfo=None)
        self.failures: list[str] = []
        self.drawn = 0

    def wall(self, instant: datetime) -> datetime:
        return instant.astimezone(self.config.zone).replace(tzinfo=None)

    def when(self, value: Any) -> str:
        """An instant as ``2026-06-01 09:00 <zone>``; ``-`` when there is none."""
        if value is None or value == "":
            return "-"
        if not isinstance(value, datetime):
            value = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return f"{self.wall(value):%Y-%m-%d %H:%M} {self.zone}"

    def charts(self, chart_id: str, title: str, make: Callable[[], Any]) -> list[Chart]:
        try:
            made = make()
        except Exception as exc:
            first = (str(exc).strip().splitlines() or [""])[0]
            logger.warning(
                "report: %r could not be drawn (%s: %s); the page shows why",
                title,
                type(exc).__name__,
                first,
            )
            self.failures.append(f"{title}: {type(exc).__name__}: {first}")
            return [charts.failed(chart_id, title, exc)]
        made = made if isinstance(made, list) else [made]
        self.drawn += len(made)
        return made

    def once(self, make: Callable[[], Any]) -> Callable[[], Any]:
        """``make``'s result for several charts, read once (its error raised for each)."""
        try:
            result, error = make(), None
        except Exception as exc:
            result, error = None, exc

        def get() -> Any:
            if error is not None:
                raise error
            return result

        return get

    # ----------------------------------------------------------------------- sections
    def freshness(self) -> Section:
        from pipelines.registry import SOURCES

        query, now = self.query, self.now
        blocks: list[str] = []
        try:
            last = data.last_runs(query)
            failed = data.failures(query)
        except Exception as exc:
            self.failures.append(f"freshness: {type(exc).__name__}: {exc}")
            logger.warning("report: the freshness table could not be read: %s", exc)
            last, failed = {}, []
            blocks.append(
                f'<p class="nodata error">The run history could not be read: '
                f"{html.escape(type(exc).__name__)}: {html.escape(str(exc).splitlines()[0])}</p>"
            )
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
                        f"{self.when(run.get('finished_at'))} ({run['command']}, {run['status']})"
                        if run
                        else "-"
                    ),
                    html.escape(self.when(state["last_success_at"])),
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
        blocks.append(table_html(headers, rows, "freshness"))
        if failed:
            blocks.append("<h3>Recent failed runs</h3>")
            blocks.append(
                table_html(
                    ["finished", "source", "command", "error"],
                    [
                        [
                            html.escape(self.when(f["finished_at"])),
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
        since = now - timedelta(days=RUNS_DAYS)
        return Section(
            "freshness",
            "Data freshness",
            "From analytics.sync_runs. A source is stale when its last success is older than its "
            "expected interval ([sources.<name>] expected_interval, default 26h).",
            blocks,
            self.charts(
                "freshness-runs",
                f"Runs of the last {RUNS_DAYS} days",
                lambda: charts.runs_timeline(data.runs(query, since), RUNS_DAYS, self.zone),
            ),
        )

    def solarknock(self) -> Section:
        query, config = self.query, self.config
        funnel = self.once(lambda: solarknock.funnel_by_week(query))
        return Section(
            "solarknock",
            "SolarKnock: funnel and leaderboard",
            charts=[
                *self.charts(
                    "sk-funnel-weekly",
                    "Knocks → leads → appointments created per week",
                    lambda: charts.funnel_weekly(
                        funnel(), self.zone, config.funnel_from, config.funnel_to
                    ),
                ),
                *self.charts(
                    "sk-funnel-total",
                    "Funnel over every loaded week",
                    lambda: charts.funnel_totals(funnel()),
                ),
                *self.charts(
                    "sk-leaderboard",
                    "Rep leaderboard",
                    lambda: charts.leaderboard(solarknock.leaderboard(query), config.top),
                ),
            ],
        )

    def heat(self) -> Section:
        query = self.query
        return Section(
            "heat",
            "HEAT: schedules per site",
            "Entries of the latest snapshot (analytics.heat_schedules_current), every site "
            "listed (a site without a schedule in force says so).",
            charts=self.charts(
                "heat-schedule",
                "HEAT schedules",
                lambda: charts_energy.heat_timelines(
                    data.heat_schedules(query), data.heat_sites(query), self.zone
                ),
            ),
        )

    def solarassistant(self) -> Section:
        query, bound = self.query, self.config.max_points
        since = self.now - timedelta(hours=POWER_HOURS)
        return Section(
            "solarassistant",
            "SolarAssistant: PV, load and battery power per site",
            f"Readings polled in the last {POWER_HOURS} hours (solarassistant.metrics).",
            charts=self.charts(
                "sa-power",
                "SolarAssistant power",
                lambda: charts_energy.solarassistant_power(
                    series.solarassistant_power(query, since, bound),
                    data.solarassistant_sites(query),
                    data.solarassistant_units(query, since),
                    self.zone,
                    self.wall(since),
                    self.wall_now,
                    POWER_HOURS,
                    bound,
                ),
            ),
        )

    def tesla(self) -> Section:
        query, bound = self.query, self.config.max_points
        since = self.now - timedelta(days=SOC_DAYS)
        return Section(
            "tesla",
            "Tesla gateway: energy and battery",
            charts=[
                *self.charts(
                    "tesla-energy",
                    "Energy per day and meter",
                    lambda: charts_energy.tesla_energy(*data.tesla_energy_daily(query)),
                ),
                *self.charts(
                    "tesla-soc",
                    f"Battery state of charge (last {SOC_DAYS} days)",
                    lambda: charts_energy.tesla_soc(
                        series.tesla_soc(query, since, bound),
                        self.zone,
                        self.wall(since),
                        self.wall_now,
                        SOC_DAYS,
                        bound,
                    ),
                ),
            ],
        )

    def sections(self) -> list[Section]:
        return [
            self.freshness(),
            self.solarknock(),
            self.heat(),
            self.solarassistant(),
            self.tesla(),
        ]


def write_report(
    warehouse: Warehouse | str | os.PathLike[str],
    output: str | os.PathLike[str] | None = None,
    now: datetime | None = None,
    timezone: str | None = None,
) -> Path:
    """Write the page for ``warehouse`` (a :class:`Warehouse` or a DuckDB file) to ``output``
    (atomically) and return its path. ``timezone`` overrides ``[solarsync] report_timezone``.

    Raises :class:`WarehouseUnreadable` when the warehouse cannot be opened (locked, down, not
    created) and :class:`NothingReadable` when every query failed; a chart that fails alone is
    shown as its error and logged as a warning."""
    import plotly.offline

    config = settings.load(timezone)
    warehouse = as_warehouse(warehouse)
    now = now or datetime.now(UTC)
    output = Path(output or default_output(warehouse))
    with data.open_query(warehouse, config.zone_name) as query:
        page = Page(query, config, now)
        sections = page.sections()
        if page.failures and query.succeeded == 0:
            raise NothingReadable(
                f"nothing could be read from {warehouse.describe()}: {page.failures[0]}"
            )
    if page.failures:
        logger.warning(
            "report: %d chart(s) could not be drawn (above); the rest of the page is written",
            len(page.failures),
        )
    text = render(
        "solarsync report",
        f"{warehouse.describe()} · generated {page.wall_now:%Y-%m-%d %H:%M} {config.zone_name}"
        f" · every time on this page is in {config.zone_name}",
        sections,
        plotly.offline.get_plotlyjs(),
    )
    output.parent.mkdir(parents=True, exist_ok=True)
    fd, temp = tempfile.mkstemp(dir=output.parent, prefix=f".{output.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.chmod(temp, 0o644)
        os.replace(temp, output)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise
    return output
