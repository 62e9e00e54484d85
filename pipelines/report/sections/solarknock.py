"""The SolarKnock section: the weekly funnel and the rep leaderboard."""

from __future__ import annotations

from pipelines.report import charts, solarknock
from pipelines.report.builder import Page
from pipelines.report.page import Section


def section(page: Page) -> Section:
    query, config = page.query, page.config
    funnel = page.once(lambda: solarknock.funnel_by_week(query))
    organizations = page.once(lambda: _offices(query))
    return Section(
        "solarknock",
        "SolarKnock: funnel and leaderboard",
        charts=[
            *page.charts(
                "sk-funnel-weekly",
                "Knocks → leads → appointments created per week",
                lambda: charts.funnel_weekly(
                    funnel(), page.zone, config.funnel_from, config.funnel_to
                ),
            ),
            *page.charts(
                "sk-funnel-total",
                "Funnel over every loaded week",
                lambda: charts.funnel_totals(funnel()),
            ),
            *(
                page.charts(
                    "sk-offices",
                    "Offices side by side",
                    lambda: charts.offices(organizations()),
                )
                if len(organizations().counts) > 1
                else []
            ),
            *page.charts(
                "sk-leaderboard",
                "Rep leaderboard",
                lambda: charts.leaderboard(solarknock.leaderboard(query), config.top),
            ),
        ],
    )


def _offices(query):
    try:
        return solarknock.offices(query)
    except Exception:  # a warehouse the offices cannot be read from: the chart is left out
        return solarknock.Offices()
