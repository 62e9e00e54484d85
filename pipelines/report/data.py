"""What the report shows, read with read-only SQL (DuckDB's dialect, kept portable: no
``GROUP BY ALL`` or ``QUALIFY``) through the destination seam's reader
(:meth:`pipelines.destinations.Warehouse.reader`), so the report works on any destination
whose reader answers it. A relation that does not exist yet (a source never loaded) reads as
no rows, shown as "no data".
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Sequence
from datetime import date, datetime, timedelta
from typing import Any

from pipelines.destinations import Reader, Warehouse, as_warehouse

Rows = list[dict[str, Any]]


class WarehouseUnreadable(Exception):
    """The warehouse cannot be opened for reading."""


class Query:
    """``query(sql, *params, needs=...)``: the rows as dicts by column name, or [] when a
    relation in ``needs`` (``schema.name``) does not exist."""

    def __init__(self, reader: Reader) -> None:
        self.reader = reader
        self._tables: dict[str, set[str]] = {}

    def exists(self, relation: str) -> bool:
        schema, name = relation.split(".")
        if schema not in self._tables:
            self._tables[schema] = self.reader.tables(schema)
        return name in self._tables[schema]

    def __call__(self, sql: str, *params: Any, needs: Sequence[str]) -> Rows:
        if not all(self.exists(relation) for relation in needs):
            return []
        return self.reader.records(sql, params)


@contextlib.contextmanager
def open_query(warehouse: Warehouse | str | os.PathLike[str]) -> Iterator[Query]:
    """A :class:`Query` on the warehouse's read-only reader."""
    warehouse = as_warehouse(warehouse)
    try:
        with warehouse.reader() as reader:
            if reader is None:
                raise WarehouseUnreadable(
                    f"{warehouse.describe()} has no data yet: run `solarsync run` first"
                )
            yield Query(reader)
    except WarehouseUnreadable:
        raise
    except Exception as exc:  # a writer holding the DuckDB file, a server down
        raise WarehouseUnreadable(
            f"cannot read {warehouse.describe()} now: {str(exc).splitlines()[0]}"
        ) from None


# --------------------------------------------------------------------------- run history
RUN_SQL = (
    "run_id, source, command, started_at, finished_at, status, error_class, error_message, "
    "rows_loaded, requests, rate_limited, retries, warnings"
)


def last_runs(query: Query) -> dict[str, tuple[dict | None, dict | None]]:
    """Per source: (its newest run, its newest successful run)."""
    out: dict[str, tuple[dict | None, dict | None]] = {}
    for only_ok in (False, True):
        for row in query(
            f"""
            SELECT {RUN_SQL} FROM (
                SELECT *, row_number() OVER (PARTITION BY source ORDER BY finished_at DESC) AS n
                FROM analytics.sync_runs {"WHERE status = 'ok'" if only_ok else ""}
            ) AS ranked WHERE n = 1
            """,
            needs=["analytics.sync_runs"],
        ):
            last, last_ok = out.get(row["source"], (None, None))
            out[row["source"]] = (last, row) if only_ok else (row, last_ok)
    return out


def runs(query: Query, since: datetime) -> Rows:
    return query(
        f"SELECT {RUN_SQL} FROM analytics.sync_runs WHERE finished_at >= ? ORDER BY finished_at",
        since,
        needs=["analytics.sync_runs"],
    )


def failures(query: Query, limit: int = 10) -> Rows:
    return query(
        f"SELECT {RUN_SQL} FROM analytics.sync_runs WHERE status <> 'ok' "
        "ORDER BY finished_at DESC LIMIT ?",
        limit,
        needs=["analytics.sync_runs"],
    )


# --------------------------------------------------------------------------- SolarKnock
def funnel_by_week(query: Query) -> Rows:
    """Live knocks, leads and appointments created per week (Monday, UTC)."""
    return query(
        """
        WITH created AS (
            SELECT 'knocks' AS stage, created_at FROM analytics.knocks
            UNION ALL SELECT 'leads' AS stage, created_at FROM analytics.leads
            UNION ALL SELECT 'appointments' AS stage, created_at FROM solarknock.appointments
                WHERE deleted_at IS NULL
        ),
        weeks AS (
            SELECT CAST(date_trunc('week', timezone('UTC', created_at)) AS DATE) AS week, stage
            FROM created
            WHERE created_at IS NOT NULL
        )
        SELECT week, stage, count(*) AS n FROM weeks GROUP BY week, stage ORDER BY week, stage
        """,
        needs=["analytics.knocks", "analytics.leads", "solarknock.appointments"],
    )


def leaderboard(query: Query, top: int = 15) -> Rows:
    """Reps by knocks over every loaded day (analytics.rep_daily_activity)."""
    return query(
        """
        SELECT coalesce(rep_name, user_id) AS rep,
               sum(knock_count) AS knocks, sum(leads) AS leads,
               sum(appointments_set) AS appointments, sum(deals_closed) AS deals
        FROM analytics.rep_daily_activity
        GROUP BY coalesce(rep_name, user_id)
        ORDER BY knocks DESC, rep
        LIMIT ?
        """,
        top,
        needs=["analytics.rep_daily_activity"],
    )


# --------------------------------------------------------------------------- HEAT
def heat_schedules(query: Query) -> Rows:
    return query(
        "SELECT site_id, coalesce(site_name, site_id) AS site_name, asset, type, start_at, "
        "end_at, value "
        "FROM analytics.heat_schedules_current ORDER BY 2, asset, type, start_at",
        needs=["analytics.heat_schedules_current"],
    )


# --------------------------------------------------------------------------- SolarAssistant
POWER_TOPICS = ("total/pv_power", "total/load_power", "total/battery_power")


def solarassistant_power(query: Query, since: datetime) -> tuple[Rows, Rows]:
    """(PV/load/battery power readings since ``since``, every site of the account)."""
    readings = query(
        """
        SELECT m.site_id, coalesce(s.name, CAST(m.site_id AS VARCHAR)) AS site_name,
               m.topic, m.polled_at, m.value_number, m.unit
        FROM solarassistant.metrics AS m
        LEFT JOIN solarassistant.sites AS s ON s.id = m.site_id
        WHERE m.topic IN (?, ?, ?) AND m.polled_at >= ? AND m.value_number IS NOT NULL
        ORDER BY site_name, m.topic, m.polled_at
        """,
        *POWER_TOPICS,
        since,
        needs=["solarassistant.metrics", "solarassistant.sites"],
    )
    sites = query(
        "SELECT site_id, site_name, last_status, last_reason FROM "
        "analytics.solarassistant_site_status ORDER BY site_name",
        needs=["analytics.solarassistant_site_status"],
    )
    return readings, sites


# --------------------------------------------------------------------------- Tesla
def tesla_energy_daily(query: Query) -> Rows:
    return query(
        "SELECT gateway, meter, day, imported_kwh, exported_kwh FROM analytics.tesla_energy_daily "
        "ORDER BY gateway, meter, day",
        needs=["analytics.tesla_energy_daily"],
    )


def tesla_soc(query: Query, since: datetime) -> Rows:
    return query(
        "SELECT gateway, polled_at, percentage FROM tesla.battery_soe "
        "WHERE percentage IS NOT NULL AND polled_at >= ? ORDER BY gateway, polled_at",
        since,
        needs=["tesla.battery_soe"],
    )


def iso(value: Any) -> Any:
    """A JSON-friendly value: dates and instants as ISO 8601 text."""
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, timedelta):
        return value.total_seconds()
    return value
