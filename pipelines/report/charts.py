"""The report's charts: Plotly figures built from the rows of ``pipelines.report.data``.

A chart without data carries the reason instead of a figure (the page says so; no empty
axes). Every figure is plain lists (exact numbers in the page, readable by tests and people).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Any

import plotly.graph_objects as go

from pipelines.report.data import Rows, iso

OK, FAILED = "#2e7d32", "#c62828"
STAGES = ("knocks", "leads", "appointments")
POWER_NAMES = {
    "total/pv_power": "PV",
    "total/load_power": "load",
    "total/battery_power": "battery",
}


@dataclass
class Chart:
    id: str  # DOM id of the chart
    title: str
    figure: go.Figure | None = None
    empty: str | None = None  # why there is nothing to show
    note: str = ""


def _layout(fig: go.Figure, height: int = 360, **kwargs: Any) -> go.Figure:
    margin = {"l": 60, "r": 20, "t": 30, "b": 50} | kwargs.pop("margin", {})
    fig.update_layout(
        template="plotly_white",
        height=height,
        margin=margin,
        legend={"orientation": "h", "y": -0.18},
        **kwargs,
    )
    return fig


def _no(chart_id: str, title: str, why: str) -> Chart:
    return Chart(chart_id, title, empty=why)


# --------------------------------------------------------------------------- freshness
def runs_timeline(runs: Rows, days: int) -> Chart:
    title = f"Runs of the last {days} days"
    if not runs:
        return _no("freshness-runs", title, f"No runs recorded in the last {days} days.")
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
    return Chart("freshness-runs", title, _layout(fig, 280, yaxis={"type": "category"}))


# --------------------------------------------------------------------------- SolarKnock
def funnel_weekly(rows: Rows) -> Chart:
    title = "Knocks → leads → appointments created per week"
    if not rows:
        return _no("sk-funnel-weekly", title, "No SolarKnock knocks, leads or appointments.")
    weeks = sorted({iso(r["week"]) for r in rows})
    counts = {(iso(r["week"]), r["stage"]): r["n"] for r in rows}
    fig = go.Figure()
    for stage in STAGES:
        y = [counts.get((w, stage), 0) for w in weeks]
        if stage == "knocks":  # knocks outnumber the rest: bars on the left axis
            fig.add_trace(go.Bar(name=stage, x=weeks, y=y, marker={"color": "#9db4cc"}))
        else:
            fig.add_trace(go.Scatter(name=stage, x=weeks, y=y, mode="lines+markers", yaxis="y2"))
    return Chart(
        "sk-funnel-weekly",
        title,
        _layout(
            fig,
            xaxis={"title": "week (Monday, UTC)"},
            yaxis={"title": "knocks"},
            yaxis2={"title": "leads, appointments", "overlaying": "y", "side": "right"},
        ),
        note="Live rows (soft-deleted excluded), by the week they were created: knocks as "
        "bars (left axis), leads and appointments as lines (right axis).",
    )


def funnel_totals(rows: Rows) -> Chart:
    title = "Funnel over every loaded week"
    totals = {stage: sum(r["n"] for r in rows if r["stage"] == stage) for stage in STAGES}
    if not any(totals.values()):
        return _no("sk-funnel-total", title, "No SolarKnock knocks, leads or appointments.")
    fig = go.Figure(
        go.Funnel(y=list(STAGES), x=[totals[s] for s in STAGES], textinfo="value+percent initial")
    )
    return Chart("sk-funnel-total", title, _layout(fig, 280))


def leaderboard(rows: Rows) -> Chart:
    if not rows:
        return _no("sk-leaderboard", "Rep leaderboard", "No SolarKnock daily stats.")
    title = f"Rep leaderboard: top {len(rows)} by knocks"
    ordered = list(reversed(rows))  # the best rep on top
    fig = go.Figure(
        go.Bar(
            name="knocks",
            orientation="h",
            x=[r["knocks"] for r in ordered],
            y=[r["rep"] for r in ordered],
            text=[
                f"{r['knocks']} knocks · {r['leads']} leads · {r['appointments']} appts · "
                f"{r['deals']} deals"
                for r in ordered
            ],
            textposition="auto",
        )
    )
    return Chart(
        "sk-leaderboard",
        title,
        _layout(fig, 60 + 28 * len(rows), yaxis={"type": "category"}, margin={"l": 160}),
        note="Sums of analytics.rep_daily_activity over every loaded day.",
    )


# --------------------------------------------------------------------------- HEAT
def heat_timelines(rows: Rows) -> list[Chart]:
    if not rows:
        return [_no("heat-schedule", "HEAT schedules", "No HEAT schedule entries.")]
    by_site: dict[str, Rows] = defaultdict(list)
    for row in rows:
        by_site[row["site_name"]].append(row)
    charts = []
    for n, (site, entries) in enumerate(sorted(by_site.items())):
        fig = go.Figure()
        for asset in sorted({e["asset"] for e in entries}):
            mine = [e for e in entries if e["asset"] == asset]
            fig.add_trace(
                go.Bar(
                    name=asset,
                    orientation="h",
                    base=[iso(e["start_at"]) for e in mine],
                    x=[(e["end_at"] - e["start_at"]).total_seconds() * 1000 for e in mine],
                    y=[f"{e['asset']} {e['type']}" for e in mine],
                    text=[_num(e["value"]) for e in mine],
                    customdata=[[iso(e["start_at"]), iso(e["end_at"])] for e in mine],
                    hovertemplate="%{y}: %{text}<br>%{customdata[0]} → %{customdata[1]}"
                    "<extra></extra>",
                )
            )
        fig = _layout(
            fig,
            80 + 34 * len({(e["asset"], e["type"]) for e in entries}),
            xaxis={"type": "date"},
            yaxis={"type": "category", "autorange": "reversed"},
            margin={"l": 170},
        )
        charts.append(Chart(f"heat-schedule-{n}", f"{site}: schedule in force", fig))
    return charts


# --------------------------------------------------------------------------- SolarAssistant
def solarassistant_power(readings: Rows, sites: Rows, hours: int) -> list[Chart]:
    silent = [s for s in sites if s["site_name"] not in {r["site_name"] for r in readings}]
    note = ""
    if silent:
        note = "No readings in the last {} h: {}.".format(
            hours,
            ", ".join(
                f"{s['site_name']} (last poll {s['last_status'] or 'none'}"
                f"{': ' + s['last_reason'] if s['last_reason'] else ''})"
                for s in silent
            ),
        )
    if not readings:
        why = f"No SolarAssistant PV, load or battery readings in the last {hours} hours."
        return [Chart("sa-power", "SolarAssistant power", empty=why, note=note)]
    by_site: dict[str, Rows] = defaultdict(list)
    for row in readings:
        by_site[row["site_name"]].append(row)
    charts = []
    for n, (site, rows) in enumerate(sorted(by_site.items())):
        fig = go.Figure()
        for topic, name in POWER_NAMES.items():
            mine = [r for r in rows if r["topic"] == topic]
            if mine:
                fig.add_trace(
                    go.Scatter(
                        name=name,
                        x=[iso(r["polled_at"]) for r in mine],
                        y=[r["value_number"] for r in mine],
                        mode="lines+markers",
                    )
                )
        unit = rows[0]["unit"] or "W"
        fig = _layout(fig, 300, yaxis={"title": unit})
        charts.append(Chart(f"sa-power-{n}", f"{site}: power (last {hours} h)", fig))
    charts[-1].note = note
    return charts


# --------------------------------------------------------------------------- Tesla
def tesla_energy(rows: Rows) -> Chart:
    title = "Energy per day and meter (kWh, UTC days)"
    if not rows:
        return _no("tesla-energy", title, "No Tesla energy yet (it needs two meter readings).")
    fig = go.Figure()
    for direction in ("imported", "exported"):
        for key in sorted({(r["gateway"], r["meter"]) for r in rows}):
            mine = [r for r in rows if (r["gateway"], r["meter"]) == key]
            fig.add_trace(
                go.Bar(
                    name=f"{key[0]} {key[1]} {direction}",
                    x=[iso(r["day"]) for r in mine],
                    y=[r[f"{direction}_kwh"] for r in mine],
                )
            )
    return Chart("tesla-energy", title, _layout(fig, barmode="group", yaxis={"title": "kWh"}))


def tesla_soc(rows: Rows, days: int) -> Chart:
    title = f"Battery state of charge (last {days} days)"
    if not rows:
        return _no("tesla-soc", title, f"No battery state of charge in the last {days} days.")
    fig = go.Figure()
    for gateway in sorted({r["gateway"] for r in rows}):
        mine = [r for r in rows if r["gateway"] == gateway]
        fig.add_trace(
            go.Scatter(
                name=gateway,
                x=[iso(r["polled_at"]) for r in mine],
                y=[r["percentage"] for r in mine],
                mode="lines+markers",
            )
        )
    return Chart("tesla-soc", title, _layout(fig, 300, yaxis={"title": "%", "range": [0, 100]}))


def _num(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return "" if value is None else str(value)
