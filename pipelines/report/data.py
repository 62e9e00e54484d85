"""What the report shows, read with read-only SQL (DuckDB's dialect, kept portable: no
``GROUP BY ALL`` or ``QUALIFY``) through the destination seam's reader
(:meth:`pipelines.destinations.Warehouse.reader`), so the report works on any destination
whose reader answers it.

- A relation that does not exist yet (a source never loaded) reads as no rows ("no data").
- Columns are looked up, not assumed, where the vendor leaves names open (SolarKnock's daily
  stats document "knock count", not a field name): see :mod:`pipelines.report.solarknock`.
- Every instant is read as wall-clock time in the report's zone (``timezone(zone, ts)`` in
  SQL: naive values, so neither the browser's nor the machine's zone can move them).
- Long series are downsampled in SQL (:mod:`pipelines.report.series`), never in a Python
  loop over readings.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import re
from collections.abc import Iterator, Sequence
from datetime import UTC, date, datetime, timedelta, tzinfo
from typing import Any

from pipelines.destinations import Reader, Warehouse, as_warehouse

logger = logging.getLogger("solarsync")

Rows = list[dict[str, Any]]
NUMERIC = re.compile(r"INT|DOUBLE|DECIMAL|NUMERIC|REAL|FLOAT", re.I)


class WarehouseUnreadable(Exception):
    """The warehouse cannot be opened for reading (locked, unreachable, not created)."""


class NothingReadable(WarehouseUnreadable):
    """The warehouse opened, but every query of the report failed."""


def q(name: str) -> str:
    """A quoted identifier (``date``, ``group`` and ``type`` are column names here)."""
    return '"' + name.replace('"', '""') + '"'


class Query:
    """``query(sql, *params, needs=...)``: the rows as dicts by column name, or [] when a
    relation in ``needs`` (``schema.name``) does not exist. Counts the queries that answered
    (``succeeded``) so the report can tell "nothing could be read" from "some charts failed".
    """

    def __init__(self, reader: Reader, zone: str = "UTC") -> None:
        self.reader = reader
        self.zone = zone
        self.succeeded = 0
        self._tables: dict[str, set[str]] = {}
        self._columns: dict[str, dict[str, str]] = {}

    def exists(self, relation: str) -> bool:
        schema, name = relation.split(".")
        if schema not in self._tables:
            self._tables[schema] = set(self._run(self.reader.tables, schema))
        return name in self._tables[schema]

    def columns(self, relation: str) -> dict[str, str]:
        """``{column: data type}`` in table order ({} when the relation does not exist)."""
        if relation not in self._columns:
            schema, name = relation.split(".")
            rows = (
                self._run(
                    self.reader.rows,
                    "select column_name, data_type from information_schema.columns "
                    "where table_schema = ? and table_name = ? order by ordinal_position",
                    [schema, name],
                )
                if self.exists(relation)
                else []
            )
            self._columns[relation] = {str(r[0]): str(r[1]).upper() for r in rows}
        return self._columns[relation]

    def __call__(self, sql: str, *params: Any, needs: Sequence[str]) -> Rows:
        if not all(self.exists(relation) for relation in needs):
            return []
        return self._run(self.reader.records, sql, params)

    def wall(self, column_sql: str) -> str:
        """SQL for ``column_sql`` (an instant) as naive wall-clock time in the report's zone."""
        return f"timezone('{self.zone}', CAST({column_sql} AS TIMESTAMPTZ))"

    def _run(self, fn: Any, *args: Any) -> Any:
        try:
            result = fn(*args)
        except Exception:
            # Postgres: a failed statement aborts the transaction; the next chart needs a new one
            with contextlib.suppress(Exception):
                self.reader.connection.rollback()
            raise
        self.succeeded += 1
        return result


#: errors of opening that pass: a lock another process holds, a server down or overloaded
_BUSY = re.compile(
    r"lock|conflict|in use|refused|timed? ?out|could not connect|connection to server|"
    r"too many (clients|connections)|unavailable|starting up|shutting down",
    re.I,
)


def _fix_session(reader: Reader) -> None:
    """Naive timestamps and casts mean UTC, whatever the machine's zone (DuckDB takes the
    session zone from ``TZ``)."""
    try:
        if reader.dialect == "duckdb":
            reader.connection.execute("SET TimeZone = 'UTC'")
        else:
            with reader.connection.cursor() as cursor:
                cursor.execute("SET TIME ZONE 'UTC'")
    except Exception as exc:  # a reader that cannot: casts of naive values follow its zone
        logger.debug("report: could not set the session time zone: %s", exc)


@contextlib.contextmanager
def open_query(warehouse: Warehouse | str | os.PathLike[str], zone: str = "UTC") -> Iterator[Query]:
    """A :class:`Query` on the warehouse's read-only reader. Only opening it can raise
    :class:`WarehouseUnreadable` (a writer holding the DuckDB file, a server down); a query
    that fails later is the caller's (one chart's) problem."""
    warehouse = as_warehouse(warehouse)
    stack = contextlib.ExitStack()
    try:
        reader = stack.enter_context(warehouse.reader())
    except Exception as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        if _BUSY.search(str(exc)):  # held by a writer, or the server is not there: try later
            raise WarehouseUnreadable(f"cannot read {warehouse.describe()} now: {first}") from None
        raise WarehouseUnreadable(
            f"cannot open {warehouse.describe()}: {type(exc).__name__}: {first}"
        ) from None
    with stack:
        if reader is None:
            raise WarehouseUnreadable(
                f"{warehouse.describe()} has no data yet: run `solarsync run` first"
            )
        _fix_session(reader)
        yield Query(reader, zone)


def pick(
    columns: dict[str, str],
    names: Sequence[str],
    pattern: str | None = None,
    numeric: bool = False,
    exclude: str | None = None,
) -> str | None:
    """The first of ``names`` that ``columns`` has, else the first column whose name matches
    ``pattern`` and not ``exclude``; numeric columns only, when asked."""
    lowered = {c.lower(): c for c in columns}
    for name in names:
        if name in lowered and (not numeric or NUMERIC.search(columns[lowered[name]])):
            return lowered[name]
    if pattern:
        for column, data_type in columns.items():
            if column.startswith("_dlt"):
                continue
            if not re.search(pattern, column, re.I):
                continue
            if exclude and re.search(exclude, column, re.I):
                continue
            if numeric and not NUMERIC.search(data_type):
                continue
            return column
    return None


class MissingColumns(Exception):
    """A relation the report reads lacks columns it cannot do without."""


def columns_sql(
    query: Query, relation: str, required: Sequence[str], optional: Sequence[str] = ()
) -> dict[str, str]:
    """``{name: SQL}`` for a select list: the column (quoted) when ``relation`` has it, NULL
    for a missing optional one; MissingColumns names the required ones it lacks."""
    have = query.columns(relation)
    missing = [c for c in required if c not in have]
    if have and missing:
        raise MissingColumns(f"{relation} has no column {', '.join(missing)}")
    return {c: (q(c) if c in have else "NULL") for c in (*required, *optional)}


def live(columns: dict[str, str]) -> str:
    """``AND ...`` keeping live rows only (soft-deleted rows excluded) when the table says."""
    if "deleted_at" in columns:
        return " AND deleted_at IS NULL"
    for flag in ("is_deleted", "deleted"):
        if flag in columns and "BOOL" in columns[flag]:
            return f" AND NOT coalesce({q(flag)}, false)"
    return ""


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
    """Runs finished since ``since``, ``finished_at`` as wall-clock time in the zone."""
    return query(
        f"SELECT source, command, status, rows_loaded, requests, error_message, "
        f"{query.wall('finished_at')} AS finished_at "
        "FROM analytics.sync_runs WHERE finished_at >= ? ORDER BY finished_at",
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


# --------------------------------------------------------------------------- HEAT
def heat_schedules(query: Query) -> Rows:
    """The entries in force (latest snapshot), start and end as wall-clock time."""
    relation = "analytics.heat_schedules_current"
    if not query.exists(relation):
        return []
    c = columns_sql(
        query, relation, ("site_id", "asset", "type", "start_at", "end_at"), ("site_name", "value")
    )
    return query(
        f"SELECT CAST({c['site_id']} AS VARCHAR) AS site_id, {c['site_name']} AS site_name, "
        f"{c['asset']} AS asset, {c['type']} AS type, {c['value']} AS value, "
        f"{query.wall(c['start_at'])} AS start_at, {query.wall(c['end_at'])} AS end_at "
        f"FROM {relation} WHERE {c['start_at']} IS NOT NULL AND {c['end_at']} IS NOT NULL "
        "ORDER BY 1, 3, 4, 6",
        needs=[relation],
    )


def heat_sites(query: Query) -> Rows:
    """Every HEAT site solarsync knows, with or without a schedule."""
    for relation in ("analytics.heat_sites", "heat.sites"):
        if query.exists(relation):
            c = columns_sql(query, relation, ("site_id",), ("site_name",))
            return query(
                f"SELECT CAST({c['site_id']} AS VARCHAR) AS site_id, "
                f"{c['site_name']} AS site_name FROM {relation} ORDER BY 2, 1",
                needs=[relation],
            )
    return []


POWER_TOPICS = ("total/pv_power", "total/load_power", "total/battery_power")


def solarassistant_sites(query: Query) -> Rows:
    """Every SolarAssistant site: id, name, last poll status."""
    relation = "analytics.solarassistant_site_status"
    if query.exists(relation):
        c = columns_sql(query, relation, ("site_id",), ("site_name", "last_status", "last_reason"))
    elif query.exists(relation := "solarassistant.sites"):
        c = columns_sql(query, relation, ("id",), ("name",))
        c = {"site_id": c["id"], "site_name": c["name"], "last_status": "NULL"}
        c["last_reason"] = "NULL"
    else:
        return []
    return query(
        f"SELECT CAST({c['site_id']} AS VARCHAR) AS site_id, {c['site_name']} AS site_name, "
        f"{c['last_status']} AS last_status, {c['last_reason']} AS last_reason "
        f"FROM {relation} ORDER BY 2, 1",
        needs=[relation],
    )


def solarassistant_units(query: Query, since: datetime) -> dict[str, str]:
    if "unit" not in query.columns("solarassistant.metrics"):
        return {}
    return {
        r["topic"]: r["unit"]
        for r in query(
            "SELECT topic, max(unit) AS unit FROM solarassistant.metrics "
            "WHERE topic IN (?, ?, ?) AND polled_at >= ? GROUP BY topic",
            *POWER_TOPICS,
            since,
            needs=["solarassistant.metrics"],
        )
    }


# --------------------------------------------------------------------------- Tesla
def tesla_energy_daily(query: Query) -> tuple[Rows, str]:
    """Energy per gateway, meter and day of the report's zone (an interval counts for the
    day it ends), and a word on where the days come from."""
    if query.exists("analytics.tesla_energy_intervals"):
        day = f"CAST({query.wall('interval_end')} AS DATE)"
        rows = query(
            f"""
            SELECT gateway, meter, {day} AS day,
                   sum(CASE WHEN direction = 'imported' THEN energy_wh ELSE 0 END) / 1000
                       AS imported_kwh,
                   sum(CASE WHEN direction = 'exported' THEN energy_wh ELSE 0 END) / 1000
                       AS exported_kwh
            FROM analytics.tesla_energy_intervals
            GROUP BY gateway, meter, {day}
            ORDER BY gateway, meter, day
            """,
            needs=["analytics.tesla_energy_intervals"],
        )
        return rows, query.zone
    rows = query(
        "SELECT gateway, meter, day, imported_kwh, exported_kwh FROM analytics.tesla_energy_daily "
        "ORDER BY gateway, meter, day",
        needs=["analytics.tesla_energy_daily"],
    )
    return rows, "UTC"


# --------------------------------------------------------------------------- values
def number(value: Any) -> int | float | None:
    """A count or measure as a JSON number: integral values as int (never ``97.968k``)."""
    if value is None:
        return None
    value = float(value)
    if math.isnan(value):
        return None
    return int(value) if value.is_integer() else value


def iso(value: Any, zone: tzinfo = UTC) -> Any:
    """A JSON-friendly value: dates and (naive, wall-clock) instants as ISO 8601 text without
    an offset, so the browser's zone cannot move them (an aware instant, from a reader that
    kept the offset, is first put in ``zone``)."""
    if isinstance(value, datetime):
        if value.tzinfo is not None:
            value = value.astimezone(zone).replace(tzinfo=None)
        return value.isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, timedelta):
        return value.total_seconds()
    return value
