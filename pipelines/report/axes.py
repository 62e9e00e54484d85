"""Axes that do not mislead: every time axis in one stated zone (named in its title), the
date under time ticks, a sensible least span (one run is not drawn on a sub-millisecond
axis, one day is not "00:00:00 Dec 7"), counts as integers from zero, ranges clipped to
where the data really is (outliers named, not drawn ten years wide), gaps left as gaps.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime, timedelta
from typing import Any

from pipelines.report.data import iso
from pipelines.report.series import Series, gap_threshold

DAY_MS = 86_400_000
#: tick labels by tick spacing: time over the date for sub-day ticks, dates above a day
TIME_TICKS = [
    {"dtickrange": [None, 60_000], "value": "%H:%M:%S<br>%b %-d, %Y"},
    {"dtickrange": [60_000, DAY_MS], "value": "%H:%M<br>%b %-d, %Y"},
    {"dtickrange": [DAY_MS, "M1"], "value": "%b %-d<br>%Y"},
    {"dtickrange": ["M1", "M12"], "value": "%b<br>%Y"},
    {"dtickrange": ["M12", None], "value": "%Y"},
]
HOVER_TIME = "%Y-%m-%d %H:%M:%S"


def time_axis(
    zone: str,
    what: str,
    lo: datetime,
    hi: datetime,
    least: timedelta = timedelta(hours=1),
    pad: float = 0.02,
) -> dict[str, Any]:
    """A date axis over [lo, hi] (naive wall-clock times in ``zone``), at least ``least``
    wide, titled ``what (zone)``."""
    span = hi - lo
    if span < least:
        middle = lo + span / 2
        lo, hi = middle - least / 2, middle + least / 2
    else:
        lo, hi = lo - span * pad, hi + span * pad
    return {
        "type": "date",
        "title": {"text": f"{what} ({zone})"},
        "range": [iso(lo), iso(hi)],
        "tickformatstops": TIME_TICKS,
        "hoverformat": HOVER_TIME,
        "showline": True,
    }


def day_axis(zone: str, what: str, first: date, last: date, step_days: int = 1) -> dict[str, Any]:
    """A date axis of whole days (or weeks: ``step_days`` 7) from ``first`` to ``last``: one
    label per day (or week) while they fit, never a time of day."""
    half = timedelta(days=step_days / 2)
    lo = datetime.combine(first, datetime.min.time()) - half
    hi = datetime.combine(last, datetime.min.time()) + half
    axis: dict[str, Any] = {
        "type": "date",
        "title": {"text": f"{what} ({zone})"},
        "range": [iso(lo), iso(hi)],
        "tickformat": "%b %-d<br>%Y",
        "hoverformat": "%a %Y-%m-%d",
        "showline": True,
    }
    steps = (last - first).days // step_days + 1
    if steps <= 16:
        axis.update(dtick=step_days * DAY_MS, tick0=iso(first))
    elif step_days == 1 and steps <= 16 * 7:
        axis.update(dtick=7 * DAY_MS, tick0=iso(first))
    elif steps > 16 * 31:
        axis["tickformat"] = "%b<br>%Y"
    return axis


def count_axis(title: str, largest: float) -> dict[str, Any]:
    """Counts: from zero, integers with thousands separators (``97,968``, not ``97.968k``)."""
    axis: dict[str, Any] = {
        "title": {"text": title},
        "rangemode": "tozero",
        "tickformat": ",d",
        "hoverformat": ",d",
    }
    if largest < 6:
        axis["dtick"] = 1
    if largest <= 0:
        axis["range"] = [0, 1]
    return axis


def outliers_apart(
    weights: Mapping[date, int], step_days: int, max_gap_steps: int = 8, share: float = 0.05
) -> tuple[date, date, list[date]]:
    """The range where the data really is: the keys (dates) split into clusters at gaps of
    more than ``max_gap_steps`` steps; clusters holding less than ``share`` of the weight (or
    fewer than 3), apart from the heaviest, are outliers (a 2016 leap-day row among 2026's).
    Returns
    (first, last, outlying keys)."""
    keys = sorted(weights)
    clusters: list[list[date]] = [[keys[0]]]
    for previous, key in zip(keys, keys[1:], strict=False):
        if (key - previous).days > max_gap_steps * step_days:
            clusters.append([])
        clusters[-1].append(key)
    total = sum(weights.values()) or 1
    weight = [sum(weights[k] for k in c) for c in clusters]
    heaviest = max(range(len(clusters)), key=lambda n: weight[n])
    kept = [
        n
        for n in range(len(clusters))
        if n == heaviest or (weight[n] / total >= share and weight[n] >= 3)
    ]
    first, last = clusters[min(kept)][0], clusters[max(kept)][-1]
    return first, last, [k for k in keys if k < first or k > last]


def steps(first: date, last: date, step_days: int) -> list[date]:
    return [first + timedelta(days=n) for n in range(0, (last - first).days + 1, step_days)]


def gapped(line: Series) -> tuple[list[Any], list[Any]]:
    """(x, y) of a line with a ``None`` between two readings further apart than the usual
    poll interval (:func:`gap_threshold`): Plotly breaks the line there."""
    limit = gap_threshold(line)
    x: list[Any] = []
    y: list[Any] = []
    for n, (t, e, v) in enumerate(zip(line.t, line.e, line.v, strict=True)):
        if n and limit is not None and e - line.e[n - 1] > limit:
            x.append(iso(line.t[n - 1] + (t - line.t[n - 1]) / 2))
            y.append(None)
        x.append(iso(t))
        y.append(v)
    return x, y
