"""The page's sections: data freshness, then each source's own section (the registry names its
module, ``SourceSpec.report``). A chart whose data or figure fails becomes that error in place."""

from __future__ import annotations

import html
import importlib
import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pipelines.report.charts as charts
import pipelines.report.data as data
import pipelines.report.settings as settings
from pipelines import registry
from pipelines.history import age, health
from pipelines.report.charts import Chart
from pipelines.report.page import Section, table_html

logger = logging.getLogger("solarsync")

RUNS_DAYS = 14


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
        for source in sorted(set(registry.SOURCES) | set(last)):
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

    def sections(self) -> list[Section]:
        """Data freshness, then each source's section, in the registry's order."""
        out = [self.freshness()]
        for spec in registry.SOURCES.values():
            if spec.report:
                out.append(importlib.import_module(spec.report).section(self))
        return out
