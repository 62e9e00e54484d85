"""A week of 5-second polls in a DuckDB warehouse, as ``solarsync poll solarassistant`` and
``solarsync poll tesla --every 5s`` would leave it: PV, load and battery power per
SolarAssistant site (``solarassistant.metrics``) and the Powerwall's state of charge
(``tesla.battery_soe``). Written with DuckDB SQL (``range`` + arithmetic), so a million rows
take about a second. Used by the report's bench group and by its browser test.

The series have what a chart must not hide: a gap (hours without a poll, the poller down)
and one spike (a single reading far above the rest) per series.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

EVERY_S = 5
SA_TABLES = """
CREATE SCHEMA IF NOT EXISTS solarassistant;
CREATE SCHEMA IF NOT EXISTS tesla;
CREATE TABLE IF NOT EXISTS solarassistant.sites (
    id BIGINT NOT NULL, "name" VARCHAR, _dlt_load_id VARCHAR NOT NULL, _dlt_id VARCHAR NOT NULL,
    account VARCHAR);
CREATE TABLE IF NOT EXISTS solarassistant.metrics (
    site_id BIGINT NOT NULL, topic VARCHAR NOT NULL, polled_at TIMESTAMPTZ NOT NULL,
    device VARCHAR, "group" VARCHAR, "name" VARCHAR, unit VARCHAR, number BIGINT,
    value_number DOUBLE, value_text VARCHAR, value_type VARCHAR, _dlt_load_id VARCHAR NOT NULL,
    account VARCHAR);
CREATE TABLE IF NOT EXISTS tesla.battery_soe (
    polled_at TIMESTAMPTZ NOT NULL, gateway VARCHAR NOT NULL, percentage DOUBLE,
    _dlt_load_id VARCHAR NOT NULL, _dlt_id VARCHAR NOT NULL);
"""
#: (topic, name, W at mid-day, W amplitude of noise)
TOPICS = (
    ("total/pv_power", "PV power", 4000.0, 400.0),
    ("total/load_power", "Load power", 900.0, 600.0),
    ("total/battery_power", "Battery power", 0.0, 1500.0),
)


@dataclass
class Polls:
    """What was written: the truth the charts are checked against."""

    start: datetime
    end: datetime
    per_series: int  # polls per series over the whole period
    gap: tuple[datetime, datetime]  # no poll in [gap[0], gap[1])
    spike_at: datetime
    spikes: dict[str, float] = field(default_factory=dict)  # series -> spike value
    sites: list[tuple[int, str]] = field(default_factory=list)
    gateway: str = "home"


def week_of_polls(
    con: object,
    end: datetime,
    sites: list[tuple[int, str]] | None = None,
    gateway: str = "home",
    days: float = 7,
    every_s: int = EVERY_S,
) -> Polls:
    """Write ``days`` of polls every ``every_s`` seconds ending at ``end`` (aware) into the
    DuckDB connection ``con``; tables are created when missing. Returns what was written."""
    sites = sites or [(1, "Home")]
    start = end - timedelta(days=days)
    n = int(days * 86400 // every_s)
    # a 3-hour outage inside the last day (so the 24 h and the 7-day charts both have it)
    gap = (end - timedelta(hours=10), end - timedelta(hours=7))
    spike_at = end - timedelta(hours=20)
    con.execute(SA_TABLES)
    for site_id, name in sites:
        con.execute(
            'INSERT INTO solarassistant.sites (id, "name", _dlt_load_id, _dlt_id, account) '
            "SELECT ?, ?, 'bench', 'bench-' || CAST(? AS VARCHAR), 'default' "
            "WHERE NOT EXISTS (SELECT 1 FROM solarassistant.sites WHERE id = ?)",
            [site_id, name, site_id, site_id],
        )
    polls = f"""
        SELECT i, CAST(? AS TIMESTAMPTZ) + to_seconds(i * {every_s}) AS ts
        FROM range({n}) AS r(i)
    """
    keep = "NOT (ts >= CAST(? AS TIMESTAMPTZ) AND ts < CAST(? AS TIMESTAMPTZ))"
    spike_i = int((spike_at - start).total_seconds() // every_s)
    truth = Polls(start, end, n, gap, start + timedelta(seconds=spike_i * every_s))
    truth.sites = list(sites)
    truth.gateway = gateway
    for site_id, _ in sites:
        for k, (topic, label, level, noise) in enumerate(TOPICS):
            spike = 20_000.0 + 1000 * k + site_id % 1000
            truth.spikes[f"{site_id} {topic}"] = spike
            value = (
                f"CASE WHEN i = {spike_i} THEN {spike} ELSE "
                f"round({level} * greatest(0, sin(pi() * ((i * {every_s}) % 86400) / 86400)) "
                f"+ {noise} * (hash(i, {k}, {site_id}) % 1000 / 1000.0 - 0.5), 1) END"
            )
            con.execute(
                f"""
                INSERT INTO solarassistant.metrics
                    (site_id, topic, polled_at, device, "group", "name", unit, value_number,
                     value_text, value_type, _dlt_load_id, account)
                SELECT ?, ?, ts, 'total', 'Status', ?, 'W', {value}, CAST({value} AS VARCHAR),
                       'number', 'bench', 'default'
                FROM ({polls}) AS p WHERE {keep}
                """,
                [site_id, topic, label, start, gap[0], gap[1]],
            )
    truth.spikes[gateway] = 100.0
    con.execute(
        f"""
        INSERT INTO tesla.battery_soe (polled_at, gateway, percentage, _dlt_load_id, _dlt_id)
        SELECT ts, ?, CASE WHEN i = {spike_i} THEN 100.0
                      ELSE round(50 + 40 * sin(2 * pi() * i * {every_s} / 86400), 2) END,
               'bench', 'soe-' || CAST(i AS VARCHAR)
        FROM ({polls}) AS p WHERE {keep}
        """,
        [gateway, start, gap[0], gap[1]],
    )
    return truth
