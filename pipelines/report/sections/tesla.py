"""The Tesla section: energy per day and meter, and the battery's state of charge."""

from __future__ import annotations

from datetime import timedelta

from pipelines.report import charts_energy, data, series
from pipelines.report.builder import Page
from pipelines.report.page import Section

SOC_DAYS = 7


def section(page: Page) -> Section:
    query, bound = page.query, page.config.max_points
    since = page.now - timedelta(days=SOC_DAYS)
    return Section(
        "tesla",
        "Tesla gateway: energy and battery",
        charts=[
            *page.charts(
                "tesla-energy",
                "Energy per day and meter",
                lambda: charts_energy.tesla_energy(*data.tesla_energy_daily(query)),
            ),
            *page.charts(
                "tesla-soc",
                f"Battery state of charge (last {SOC_DAYS} days)",
                lambda: charts_energy.tesla_soc(
                    series.tesla_soc(query, since, bound),
                    page.zone,
                    page.wall(since),
                    page.wall_now,
                    SOC_DAYS,
                    bound,
                ),
            ),
        ],
    )
