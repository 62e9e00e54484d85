"""The HEAT section: the schedules of the latest snapshot, per site."""

from __future__ import annotations

from pipelines.report import charts_energy, data
from pipelines.report.builder import Page
from pipelines.report.page import Section


def section(page: Page) -> Section:
    query = page.query
    return Section(
        "heat",
        "HEAT: schedules per site",
        "Entries of the latest snapshot (analytics.heat_schedules_current), every site "
        "listed (a site without a schedule in force says so).",
        charts=page.charts(
            "heat-schedule",
            "HEAT schedules",
            lambda: charts_energy.heat_timelines(
                data.heat_schedules(query), data.heat_sites(query), page.zone
            ),
        ),
    )
