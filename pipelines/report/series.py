"""Time series for the report, downsampled in SQL: a series longer than the bound keeps the
minimum and maximum reading of each time bucket (about one per pixel) and its first and last,
so spikes survive and the page stays small; no Python loop ever walks the readings. Lines
break where readings are missing (:func:`gap_threshold`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from pipelines.report.data import POWER_TOPICS, Query


@dataclass
class Series:
    """One line: wall-clock instants ``t``, epoch seconds ``e``, values ``v``; ``readings`` is
    how many the warehouse holds, ``bucket_s`` the bucket width when downsampled."""

    key: tuple
    t: list[datetime] = field(default_factory=list)
    e: list[float] = field(default_factory=list)
    v: list[float] = field(default_factory=list)
    readings: int = 0
    bucket_s: float | None = None

    @property
    def downsampled(self) -> bool:
        return self.bucket_s is not None


def buckets_for(bound: int) -> int:
    """Buckets so min + max per bucket, the first and last readings and the gap breaks
    (at most one per three buckets: a gap is longer than 2.5 buckets) stay within ``bound``."""
    return max(1, (bound - 4) * 3 // 7)


def series(
    query: Query,
    relation: str,
    keys: Sequence[str],
    time: str,
    value: str,
    where: str,
    params: Sequence[Any],
    bound: int,
    needs: Sequence[str],
) -> list[Series]:
    """Readings of ``relation`` (``FROM`` text) grouped by the ``keys`` expressions, ordered by
    time. A series longer than ``bound`` keeps, per time bucket (``bound`` buckets across its
    range, about one per pixel), its minimum and maximum reading, plus its first and last:
    extremes survive, the page gets at most ``bound`` points per series. ``bound`` 0: all."""
    limit = bound if bound > 0 else 2**62
    buckets = buckets_for(bound) if bound > 0 else 1
    aliases = [f"k{n}" for n in range(len(keys))]
    key_list = ", ".join(aliases)
    selected = ", ".join(f"{expr} AS {alias}" for expr, alias in zip(keys, aliases, strict=True))
    joined = " AND ".join(f"s.{a} = p.{a}" for a in aliases)
    not_null = " AND ".join(f"{expr} IS NOT NULL" for expr in (*keys, time, value))
    sql = f"""
        WITH src AS (
            SELECT {selected}, {query.wall(time)} AS t,
                   extract(epoch FROM CAST({time} AS TIMESTAMPTZ)) AS e,
                   CAST({value} AS DOUBLE) AS v
            FROM {relation}
            WHERE {not_null} AND ({where})
        ),
        span AS (
            SELECT {key_list}, min(e) AS lo, max(e) AS hi, count(*) AS n FROM src GROUP BY {key_list}
        ),
        bucketed AS (
            SELECT s.*, p.lo, p.hi, p.n,
                   CASE WHEN p.n <= {limit} OR p.hi <= p.lo THEN 0
                        ELSE floor((s.e - p.lo) * {buckets} / (p.hi - p.lo)) END AS bucket
            FROM src AS s JOIN span AS p ON {joined}
        ),
        ranked AS (
            SELECT *,
                   row_number() OVER (PARTITION BY {key_list}, bucket ORDER BY v, e) AS r_lo,
                   row_number() OVER (PARTITION BY {key_list}, bucket ORDER BY v DESC, e) AS r_hi
            FROM bucketed
        )
        SELECT {key_list}, t, e, v, n, lo, hi FROM ranked
        WHERE n <= {limit} OR r_lo = 1 OR r_hi = 1 OR e = lo OR e = hi
        ORDER BY {key_list}, e
    """
    out: dict[tuple, Series] = {}
    for row in query(sql, *params, needs=needs):
        key = tuple(row[a] for a in aliases)
        line = out.get(key)
        if line is None:
            line = out[key] = Series(key, readings=int(row["n"]))
            if row["n"] > limit:
                line.bucket_s = (float(row["hi"]) - float(row["lo"])) / buckets
        line.t.append(row["t"])
        line.e.append(float(row["e"]))
        line.v.append(float(row["v"]))
    return list(out.values())


def gap_threshold(line: Series) -> float | None:
    """Seconds between two drawn points above which the line breaks (no line across a
    period without readings): 3 typical poll intervals, and when downsampled 2.5 buckets."""
    if len(line.e) < 3:
        return None
    steps = sorted(b - a for a, b in zip(line.e, line.e[1:], strict=False) if b > a)
    if not steps:
        return None
    if line.downsampled:
        typical = (line.e[-1] - line.e[0]) / max(1, line.readings - 1)
        return max(3 * typical, 2.5 * (line.bucket_s or 0))
    return 3 * steps[len(steps) // 2]


def solarassistant_power(query: Query, since: datetime, bound: int) -> list[Series]:
    """PV/load/battery power per (site, topic) since ``since``."""
    return series(
        query,
        "solarassistant.metrics",
        ["CAST(site_id AS VARCHAR)", "topic"],
        "polled_at",
        "value_number",
        "topic IN (?, ?, ?) AND polled_at >= ?",
        [*POWER_TOPICS, since],
        bound,
        ["solarassistant.metrics"],
    )


def tesla_soc(query: Query, since: datetime, bound: int) -> list[Series]:
    return series(
        query,
        "tesla.battery_soe",
        ["gateway"],
        "polled_at",
        "percentage",
        "polled_at >= ?",
        [since],
        bound,
        ["tesla.battery_soe"],
    )
