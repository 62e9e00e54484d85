"""The device charts: HEAT schedules, SolarAssistant power, Tesla energy and battery.

Long series arrive downsampled by :func:`pipelines.report.data.series` (the chart says so);
lines break where readings are missing; power axes start at 0; every time axis is in the
report's zone and says which.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable
from datetime import date, datetime
from typing import Any

import plotly.graph_objects as go

from pipelines.report.axes import DAY_MS, day_axis, gapped, outliers_apart, time_axis
from pipelines.report.charts import Chart, layout, no_data, plural
from pipelines.report.data import POWER_TOPICS, Rows, iso, number
from pipelines.report.series import Series

POWER_NAMES = dict(zip(POWER_TOPICS, ("PV", "load", "battery"), strict=True))
MARKERS_UP_TO = 300  # points per line drawn with markers; denser lines are lines only


def labels(names: dict[str, str | None]) -> dict[str, str]:
    """``{id: label}``: the name, with the id when another id has the same name."""
    taken = Counter((n or "").casefold() for n in names.values() if n)
    return {
        key: (f"{name} ({key})" if taken[name.casefold()] > 1 else name) if name else key
        for key, name in names.items()
    }


def _duration(start: datetime, end: datetime) -> float:
    return (end - start).total_seconds() * 1000


def _bucket(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def downsampled_note(lines: Iterable[Series], bound: int) -> str:
    lines = [line for line in lines if line.downsampled]
    if not lines:
        return ""
    readings = max(line.readings for line in lines)
    bucket = _bucket(max(line.bucket_s or 0 for line in lines))
    return (
        f"Downsampled: {plural(len(lines), 'series')} over {bound:,} readings (up to "
        f"{readings:,}) drawn as the minimum and maximum of each {bucket} bucket, first and "
        f"last reading kept: at most {bound:,} points per series."
    )


def _mark(fig: go.Figure, note: str) -> None:
    """Say it on the chart itself too (a screenshot keeps it)."""
    if note:
        fig.add_annotation(
            text="downsampled (min/max per bucket)",
            xref="paper",
            yref="paper",
            x=1,
            y=1.0,
            xanchor="right",
            yanchor="bottom",
            showarrow=False,
            font={"size": 11, "color": "#666"},
        )


def _line(name: str, line: Series, **kwargs: Any) -> go.Scatter:
    x, y = gapped(line)
    drawn = sum(1 for v in y if v is not None)
    return go.Scatter(
        name=name,
        x=x,
        y=y,
        mode="lines+markers" if drawn <= MARKERS_UP_TO else "lines",
        connectgaps=False,
        **kwargs,
    )


# --------------------------------------------------------------------------- HEAT
def heat_timelines(rows: Rows, sites: Rows, zone: str) -> list[Chart]:
    """One timeline per HEAT site; a site without a schedule in force says so."""
    names: dict[str, str | None] = {s["site_id"]: s["site_name"] for s in sites}
    by_site: dict[str, Rows] = defaultdict(list)
    for row in rows:
        by_site[row["site_id"]].append(row)
        names.setdefault(row["site_id"], row["site_name"])
    if not names:
        return [no_data("heat-schedule", "HEAT schedules", "No HEAT schedule entries.")]
    label = labels(names)
    charts = []
    for n, site in enumerate(sorted(names, key=lambda s: (label[s].casefold(), s))):
        title = f"{label[site]}: schedule in force"
        entries = by_site.get(site)
        if not entries:
            charts.append(
                no_data(
                    f"heat-schedule-{n}",
                    title,
                    "No schedule entries in force for this site (latest snapshot).",
                )
            )
            continue
        note = "Bar labels are the scheduled values (hover for start and end)."
        days = Counter(e["start_at"].date() for e in entries)
        first, last, outside = outliers_apart(days, 1, max_gap_steps=31)
        if outside:
            far = [e for e in entries if e["start_at"].date() in set(outside)]
            entries = [e for e in entries if e not in far]
            note += (
                f" Not drawn, far from the other entries: {plural(len(far), 'entry')} starting "
                + ", ".join(sorted({e["start_at"].date().isoformat() for e in far})[:5])
                + "."
            )
        fig = go.Figure()
        for asset in sorted({e["asset"] for e in entries}, key=str):
            mine = [e for e in entries if e["asset"] == asset]
            fig.add_trace(
                go.Bar(
                    name=str(asset),
                    orientation="h",
                    base=[iso(e["start_at"]) for e in mine],
                    x=[_duration(e["start_at"], e["end_at"]) for e in mine],
                    y=[f"{e['asset']} {e['type']}" for e in mine],
                    text=[_value(e["value"]) for e in mine],
                    textposition="inside",
                    insidetextanchor="middle",
                    customdata=[[iso(e["start_at"]), iso(e["end_at"])] for e in mine],
                    hovertemplate="%{y}: %{text}<br>%{customdata[0]} → %{customdata[1]}"
                    f" ({zone})<extra></extra>",
                )
            )
        rows_shown = len({(e["asset"], e["type"]) for e in entries})
        fig = layout(
            fig,
            110 + 44 * rows_shown,
            barmode="overlay",  # one row per asset and type: no thin grouped slivers
            bargap=0.2,
            uniformtext={"minsize": 10, "mode": "hide"},
            xaxis=time_axis(
                zone,
                "time",
                min(e["start_at"] for e in entries),
                max(e["end_at"] for e in entries),
                pad=0,
            ),
            yaxis={"type": "category", "autorange": "reversed", "automargin": True},
            margin={"l": 20},
        )
        charts.append(Chart(f"heat-schedule-{n}", title, fig, note=note))
    return charts


def _value(value: Any) -> str:
    value = number(value)
    return "" if value is None else str(value)


# --------------------------------------------------------------------------- SolarAssistant
def solarassistant_power(
    lines: list[Series],
    sites: Rows,
    units: dict[str, str],
    zone: str,
    since: datetime,
    now: datetime,
    hours: int,
    bound: int,
) -> list[Chart]:
    names: dict[str, str | None] = {s["site_id"]: s["site_name"] for s in sites}
    for line in lines:
        names.setdefault(line.key[0], None)
    label = labels(names)
    with_readings = {line.key[0] for line in lines}
    silent = [s for s in sites if s["site_id"] not in with_readings]
    note = ""
    if silent:
        note = "No readings in the last {} h: {}.".format(
            hours,
            ", ".join(
                f"{label[s['site_id']]} (last poll {s['last_status'] or 'none'}"
                f"{': ' + s['last_reason'] if s['last_reason'] else ''})"
                for s in silent
            ),
        )
    if not lines:
        why = f"No SolarAssistant PV, load or battery readings in the last {hours} hours."
        return [Chart("sa-power", "SolarAssistant power", empty=why, note=note)]
    unit = next((u for u in (units.get(t) for t in POWER_TOPICS) if u), "W")
    charts = []
    ordered = sorted(with_readings, key=lambda s: (label[s].casefold(), s))
    for n, site in enumerate(ordered):
        mine = {line.key[1]: line for line in lines if line.key[0] == site}
        fig = go.Figure()
        for topic, name in POWER_NAMES.items():
            if topic in mine:
                fig.add_trace(_line(name, mine[topic]))
        largest = max(max(line.v) for line in mine.values())
        smallest = min(min(line.v) for line in mine.values())
        fig = layout(
            fig,
            320,
            xaxis=time_axis(zone, "time", since, now, pad=0),
            yaxis={
                "title": {"text": f"power ({unit})"},
                "rangemode": "tozero",
                "zeroline": True,
                "zerolinecolor": "#888",
                "tickformat": ",~r" if largest - smallest >= 10 else "",
            },
        )
        down = downsampled_note(mine.values(), bound)
        _mark(fig, down)
        charts.append(
            Chart(f"sa-power-{n}", f"{label[site]}: power (last {hours} h)", fig, note=down)
        )
    charts[-1].note = " ".join(x for x in (charts[-1].note, note) if x)
    return charts


# --------------------------------------------------------------------------- Tesla
def tesla_energy(rows: Rows, day_zone: str) -> Chart:
    title = f"Energy per day and meter (kWh, days of {day_zone})"
    if not rows:
        return no_data("tesla-energy", title, "No Tesla energy yet (it needs two meter readings).")
    days = [
        r["day"] if isinstance(r["day"], date) else date.fromisoformat(str(r["day"])) for r in rows
    ]
    weights = Counter(days)
    first, last, outside = outliers_apart(weights, 1, max_gap_steps=31)
    fig = go.Figure()
    meters = sorted({(r["gateway"], r["meter"]) for r in rows}, key=str)
    # explicit widths and offsets: Plotly draws a lone day's bars 1 ms wide on a date axis
    width = 0.8 * DAY_MS / (2 * len(meters))
    for n, (direction, key) in enumerate((d, k) for d in ("imported", "exported") for k in meters):
        mine = [r for r in rows if (r["gateway"], r["meter"]) == key]
        fig.add_trace(
            go.Bar(
                name=f"{key[0]} {key[1]} {direction}",
                x=[iso(r["day"]) for r in mine],
                y=[number(r[f"{direction}_kwh"]) for r in mine],
                width=width,
                offset=-0.4 * DAY_MS + n * width,
                hovertemplate="%{x|%Y-%m-%d}: %{y:,.3f} kWh<extra>%{fullData.name}</extra>",
            )
        )
    note = "An interval between two meter readings counts for the day it ends."
    if outside:
        note += (
            f" Outliers not drawn: {plural(len(outside), 'day')} far from the others "
            f"({', '.join(d.isoformat() for d in sorted(outside)[:5])})."
        )
    fig = layout(
        fig,
        barmode="overlay",  # side by side by the offsets above
        xaxis=day_axis(day_zone, "day", first, last),
        yaxis={"title": {"text": "kWh"}, "rangemode": "tozero"},
    )
    return Chart("tesla-energy", title, fig, note=note)


def tesla_soc(
    lines: list[Series], zone: str, since: datetime, now: datetime, days: int, bound: int
) -> Chart:
    title = f"Battery state of charge (last {days} days)"
    if not lines:
        return no_data("tesla-soc", title, f"No battery state of charge in the last {days} days.")
    fig = go.Figure()
    for line in sorted(lines, key=lambda s: str(s.key[0])):
        fig.add_trace(_line(str(line.key[0]), line))
    fig = layout(
        fig,
        320,
        xaxis=time_axis(zone, "time", since, now, pad=0),
        yaxis={"title": {"text": "state of charge (%)"}, "range": [0, 100]},
    )
    down = downsampled_note(lines, bound)
    _mark(fig, down)
    return Chart("tesla-soc", title, fig, note=down)
