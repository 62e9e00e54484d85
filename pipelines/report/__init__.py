"""``solarsync report``: one self-contained HTML page (Plotly's JS inlined; opens offline)
from the warehouse: data freshness per source, the SolarKnock funnel and leaderboard, HEAT
schedules per site, SolarAssistant power per site over the last day, Tesla energy per day and
battery state of charge.

Every time on the page is in one zone, ``[solarsync] report_timezone`` (default UTC), named on
each axis. A chart whose query fails shows the error in its place and the rest of the page
renders; only a warehouse that cannot be opened (or answers nothing at all) fails the command.

Layout: ``settings`` (the ``report_*`` keys), ``data``, ``series`` and ``solarknock``
(read-only SQL through one reader), ``axes``, ``charts`` and ``charts_energy`` (Plotly
figures), ``builder`` (the freshness section, the sources' sections in the registry's order),
``sections/<source>.py`` (each source's section), ``page`` (the HTML).
"""

from __future__ import annotations

import logging
import os
import tempfile
from datetime import UTC, datetime
from pathlib import Path

import plotly.offline

from pipelines.destinations import Warehouse, as_warehouse
from pipelines.report import data, settings
from pipelines.report.builder import Page
from pipelines.report.data import NothingReadable, WarehouseUnreadable
from pipelines.report.page import render

__all__ = ["NothingReadable", "WarehouseUnreadable", "default_output", "write_report"]

logger = logging.getLogger("solarsync")


def default_output(warehouse: Warehouse) -> Path:
    """Next to a DuckDB file (``warehouse/solarsync.duckdb`` ->
    ``warehouse/solarsync-report.html``), else ``warehouse/solarsync-report.html``."""
    path = getattr(warehouse, "path", None)
    if isinstance(path, Path):
        return path.with_name(f"{path.stem}-report.html")
    return Path("warehouse") / "solarsync-report.html"


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
