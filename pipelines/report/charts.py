"""The report's charts: Plotly figures built from what ``data`` and ``solarknock`` read.

A chart without data carries the reason instead of a figure (the page says so; no empty
axes); a chart whose query failed carries the error. Every figure is plain lists (exact
numbers in the page, readable by tests and people); instants are naive wall-clock ISO text
in the report's zone, which every time axis names. Energy charts: ``charts_energy``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import plotly.graph_objects as go

from pipelines.report.axes import DAY_MS, count_axis, day_axis, outliers_apart, steps, time_axis
from pipelines.report.data import Rows, iso, number
from pipelines.report.solarknock import Funnel, Leaderboard, Offices

OK, FAILED = "#2e7d32", "#c62828"
STAGES = ("knocks", "leads", "appointments")
STAGE_COLORS = {"knocks": "#9db4cc", "leads": "#e07b39", "appointments": "#2e7d32"}


@dataclass
class Chart:
    id: str  # DOM id of the chart
    title: str
    figure: go.Figure | None = None
    empty: str | None = None  # why there is nothing to show
    note: str = ""
    failed: bool = False  # ``empty`` is the error that stopped this chart


def layout(fig: go.Figure, height: int = 360, **kwargs: Any) -> go.Figure:
    margin = {"l": 60, "r": 20, "t": 30, "b": 60} | kwargs.pop("margin", {})
    fig.update_layout(
        template="plotly_white",
        height=height,
        margin=margin,
        legend={"orientation": "h", "y": -0.25},
        **kwargs,
    )
    return fig


def no_data(chart_id: str, title: str, why: str, note: str = "") -> Chart:
    return Chart(chart_id, title, empty=why, note=note)


def failed(chart_id: str, title: str, exc: BaseException) -> Chart:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return Chart(
        chart_id,
        title,
        empty=f"This chart could not be drawn: {type(exc).__name__}: {text}"[:600],
        failed=True,
    )


def plural(n: int, word: str) -> str:
    """``1 knock``, ``3 knocks``, ``2 entries``, ``2 series``."""
    if n != 1 and not word.endswith("s"):
        word = word[:-1] + "ies" if word.endswith("y") and word[-2] not in "aeiou" else word + "s"
    return f"{n:,} {word}"


# --------------------------------------------------------------------------- freshness
def runs_timeline(runs: Rows, days: int, zone: str) -> Chart:
    title = f"Runs of the last {days} days"
    if not runs:
        return no_data("freshness-runs", title, f"No runs recorded in the last {days} days.")
    fig = go.Figure()
    for status, color, symbol in (("ok", OK, "circle"), ("failed", FAILED, "x")):
        chosen = [r for r in runs if (r["status"] == "ok") == (status == "ok")]
        if not chosen:
            continue
        fig.add_trace(
            go.Scatter(
                name=status,
                x=[iso(r["finished_at"]) for r in chosen],
                y=[r["source"] for r in chosen],
                mode="markers",
                marker={"color": color, "symbol": symbol, "size": 11},
                customdata=[
                    [r["command"], r["rows_loaded"], r["requests"], r["error_message"] or ""]
                    for r in chosen
                ],
                hovertemplate="%{y} %{customdata[0]} at %{x}<br>%{customdata[1]} rows, "
                "%{customdata[2]} requests<br>%{customdata[3]}<extra>" + status + "</extra>",
            )
        )
    finished = [r["finished_at"] for r in runs]
    xaxis = time_axis(zone, "finished", min(finished), max(finished), least=timedelta(hours=2))
    return Chart(
        "freshness-runs",
        title,
        layout(fig, 300, xaxis=xaxis, yaxis={"type": "category", "automargin": True}),
    )


# --------------------------------------------------------------------------- SolarKnock
def _weeks_shown(
    weights: dict[date, int], first: date | None, last: date | None
) -> tuple[date, date]:
    data_first, data_last, _ = outliers_apart(weights, 7)
    monday = lambda d: d - timedelta(days=d.weekday())  # noqa: E731
    first = monday(first) if first else data_first
    last = monday(last) if last else data_last
    if last < first:
        last = first
    return first, last


def funnel_weekly(
    funnel: Funnel, zone: str, first: date | None = None, last: date | None = None
) -> Chart:
    """Rows created per week, all on one count axis (leads never look as many as knocks)."""
    chart_id, title = "sk-funnel-weekly", "Knocks → leads → appointments created per week"
    weights: dict[date, int] = {}
    for counts in funnel.counts.values():
        for week, n in counts.items():
            weights[week] = weights.get(week, 0) + n
    notes = list(funnel.notes)
    if not weights:
        return no_data(
            chart_id, title, "No SolarKnock knocks, leads or appointments.", " ".join(notes)
        )
    chosen = bool(first or last)
    first, last = _weeks_shown(weights, first, last)
    weeks = steps(first, last, 7)
    fig = go.Figure()
    largest = 0
    for stage in STAGES:
        counts = funnel.counts.get(stage)
        if counts is None:
            continue
        # a week without any row at all is a gap (None), not a week of zero
        y = [counts.get(w, 0) if w in weights else None for w in weeks]
        largest = max([largest, *(v for v in y if v)])
        common = {"name": stage, "x": [iso(w) for w in weeks], "y": y}
        hover = "week of %{x|%Y-%m-%d}: %{y:,d} " + stage + "<extra></extra>"
        if stage == "knocks":
            fig.add_trace(
                go.Bar(
                    **common,
                    width=0.8 * 7 * DAY_MS,  # a lone week is not drawn 1 ms wide
                    marker={"color": STAGE_COLORS[stage]},
                    hovertemplate=hover,
                )
            )
        else:
            fig.add_trace(
                go.Scatter(
                    **common,
                    mode="lines+markers",
                    connectgaps=False,
                    line={"color": STAGE_COLORS[stage]},
                    hovertemplate=hover,
                )
            )
    outside = {
        stage: {w: n for w, n in counts.items() if w < first or w > last}
        for stage, counts in funnel.counts.items()
    }
    if any(outside.values()):
        weeks_out = sorted({w for counts in outside.values() for w in counts})
        listed = ", ".join(w.isoformat() for w in weeks_out[:5])
        more = f" and {len(weeks_out) - 5} more" if len(weeks_out) > 5 else ""
        what = ", ".join(
            plural(sum(c.values()), stage.rstrip("s")) for stage, c in outside.items() if c
        )
        if chosen:
            notes.append(
                f"Not drawn: {what} created in the weeks of {listed}{more}, outside the weeks "
                f"chosen ({first} to {last}: [solarsync] report_funnel_from / _to); they "
                "count in the totals below."
            )
        else:
            notes.append(
                f"Outliers not drawn: {what} created in the weeks of {listed}{more}, far from "
                f"the weeks shown ({first} to {last}); they count in the totals below. "
                "[solarsync] report_funnel_from / report_funnel_to set the weeks shown."
            )
    empty_weeks = sum(1 for w in weeks if w not in weights)
    if empty_weeks:
        notes.append(f"{plural(empty_weeks, 'week')} without any row: left as gaps.")
    fig = layout(
        fig,
        xaxis=day_axis(zone, "week starting Monday", first, last, step_days=7),
        yaxis=count_axis("rows created", largest),
        barmode="overlay",
    )
    notes.insert(
        0,
        "Live rows (soft-deleted excluded), by the week they were created; one axis for all "
        "three stages.",
    )
    return Chart(chart_id, title, fig, note=" ".join(notes))


def funnel_totals(funnel: Funnel) -> Chart:
    title = "Funnel over every loaded week"
    totals = {s: sum(funnel.counts.get(s, {}).values()) for s in STAGES if s in funnel.counts}
    if not any(totals.values()):
        return no_data("sk-funnel-total", title, "No SolarKnock knocks, leads or appointments.")
    fig = go.Figure(
        go.Funnel(
            y=list(totals),
            x=list(totals.values()),
            texttemplate="%{value:,d} (%{percentInitial:.1%})",
            hovertemplate="%{y}: %{x:,d}<extra></extra>",
        )
    )
    return Chart(
        "sk-funnel-total",
        title,
        layout(fig, 280, xaxis={"tickformat": ",d"}),
        note="Percentages are of the first stage shown.",
    )


def offices(data: Offices) -> Chart:
    """Each org's live knocks, leads and appointments, side by side (grouped bars)."""
    chart_id, title = "sk-offices", "Offices side by side: live knocks, leads, appointments"
    labels = sorted(data.counts)
    if len(labels) < 2:
        return no_data(chart_id, title, "One SolarKnock org only.")
    fig = go.Figure(
        [
            go.Bar(
                name=stage,
                x=labels,
                y=[data.counts[label].get(stage, 0) for label in labels],
                hovertemplate=f"%{{x}}: %{{y:,d}} {stage}<extra></extra>",
            )
            for stage in ("knocks", "leads", "appointments")
        ]
    )
    fig.update_layout(barmode="group")
    return Chart(
        chart_id,
        title,
        layout(fig, 320, yaxis={"tickformat": ",d"}),
        note="One group per org (its name and the account that reads it); live rows only.",
    )


def leaderboard(board: Leaderboard, top: int) -> Chart:
    chart_id = "sk-leaderboard"
    if not board.reps:
        return no_data(chart_id, "Rep leaderboard", "No SolarKnock daily stats.")
    measure = "knocks" if "knocks" in board.sources else next(iter(board.sources))
    shown = board.reps[:top]
    title = f"Rep leaderboard: top {len(shown)} of {len(board.reps)} reps by {measure}"
    others = [m for m in ("knocks", "leads", "appointments", "deals") if m in board.sources]

    def text(rep: Any) -> str:
        return " · ".join(f"{number(rep.get(m)):,} {m}" for m in others)

    fig = go.Figure(
        go.Bar(
            name=measure,
            orientation="h",
            x=[rep.get(measure) for rep in shown],
            y=[rep.label for rep in shown],
            customdata=[rep.user_id for rep in shown],
            text=[text(rep) for rep in shown],
            textposition="auto",
            hovertemplate="%{y} (user %{customdata})<br>%{text}<extra></extra>",
        )
    )
    fig = layout(
        fig,
        90 + 26 * len(shown),
        xaxis=count_axis(measure, max(rep.get(measure) for rep in shown)),
        yaxis={"type": "category", "autorange": "reversed", "automargin": True},
        margin={"l": 20},
    )
    sources = "; ".join(f"{m}: {where}" for m, where in board.sources.items())
    return Chart(
        chart_id,
        title,
        fig,
        note=f"Sums over every loaded day, one bar per rep (user id); reps who share a name "
        f"show their user id. From {sources}.",
    )
