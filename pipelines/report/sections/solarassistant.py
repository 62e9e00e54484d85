"""The SolarAssistant section: PV, load and battery power per site over the last day."""

from __future__ import annotations

from datetime import timedelta

from pipelines.report import charts_energy, data, series
from pipelines.report.builder import Page
from pipelines.report.page import Section

POWER_HOURS = 24


def section(page: Page) -> Section:
    query, bound = page.query, page.config.max_points
    since = page.now - timedelta(hours=POWER_HOURS)
    return Section(
        "solarassistant",
        "SolarAssistant: PV, load and battery power per site",
        f"Readings polled in the last {POWER_HOURS} hours (solarassistant.metrics).",
        charts=page.charts(
            "sa-power",
            "SolarAssistant power",
            lambda: charts_energy.solarassistant_power(
                series.solarassistant_power(query, since, bound),
                data.solarassistant_sites(query),
                data.solarassistant_units(query, since),
                page.zone,
                page.wall(since),
                page.wall_now,
                POWER_HOURS,
                bound,
            ),
        ),
    )
