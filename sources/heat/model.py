"""HEAT payloads -> table rows. Pure functions: no HTTP, no dlt state.

A site's ``schedules`` are ``[{asset, type, entries: [{startAt, endAt, value}]}]`` and its
``assets`` an object keyed by asset kind; both may grow new members, fields and types at any
time (see ``/work/shared/apis/heat.md``). Rows keep every field they are given: a field this
module does not know lands as a new nullable column, under its snake_case name.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from dlt.common.data_types.type_helpers import coerce_value, py_type_to_sc_type

from sources.common.accounts import DEFAULT
from sources.heat.settings import (
    ASSET_RENAMED_FIELDS,
    ASSET_STATIC_FIELDS,
    ASSET_STATIC_PREFIXES,
    ENTRY_HASH_COLUMN,
    ENTRY_HASH_FIELDS,
    OWN_COLUMNS,
    RENAMED_FIELDS,
    SOURCE_NAME,
    UNIT_SUFFIXES,
)

logger = logging.getLogger("solarsync.heat")

_UNITS = tuple(sorted(UNIT_SUFFIXES, key=len, reverse=True))
_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])")
SITE_NESTED = ("schedules", "assets")  # site fields that are tables of their own


def column_name(field: str) -> str:
    """The column of an API field: ``activePowerkW`` -> ``active_power_kw``,
    ``availableStorageCapacitykWh`` -> ``available_storage_capacity_kwh``, ``siteId`` ->
    ``site_id``. Units glued to the name become their own lower-case word."""
    if field in RENAMED_FIELDS:
        return RENAMED_FIELDS[field]
    name = field
    for unit in _UNITS:
        if name.endswith(unit) and len(name) > len(unit):
            name = f"{name[: -len(unit)].rstrip('_')}_{unit.lower()}"
            break
    return _CAMEL.sub("_", name).lower()


def _renamed(fields: Mapping[str, Any], skip: Iterable[str] = ()) -> dict[str, Any]:
    skipped = set(skip)
    return {column_name(k): v for k, v in fields.items() if k not in skipped}


def _with_own(row: dict[str, Any], own: Mapping[str, Any]) -> dict[str, Any]:
    clash = sorted(k for k in own if k in row and row[k] != own[k])
    if clash:
        logger.warning("heat: API field(s) %s clash with solarsync's own columns: ignored", clash)
    return {**_numbers_as_float(row), **own}


def _numbers_as_float(row: dict[str, Any]) -> dict[str, Any]:
    """Every JSON number as a float (identifiers aside): JSON does not tell ``50`` from
    ``50.0``, so a column typed by a first whole value (``activePowerkW: 120``) would send a
    later ``150.5`` to a variant column ``..__v_double`` and leave the column NULL."""
    return {
        k: float(v)
        if isinstance(v, int) and not isinstance(v, bool) and not _is_identifier(k)
        else v
        for k, v in row.items()
    }


def _is_identifier(column: str) -> bool:
    return column == "id" or column.endswith("_id")


# --------------------------------------------------------------------------- sites
def site_row(site: Mapping[str, Any], at: datetime) -> dict[str, Any]:
    """``sites``: every field of the site but its schedules and assets, plus ``last_seen_at``."""
    row = _renamed(site, skip=SITE_NESTED)
    return _with_own(row, {"site_id": site["siteId"], "last_seen_at": at})


def status_row(site: Mapping[str, Any], at: datetime) -> dict[str, Any]:
    """``site_status_history``: connectivity of one site in one snapshot."""
    return {
        "site_id": site["siteId"],
        "snapshot_at": at,
        "is_online": site.get("isOnline"),
        "reported_at": site.get("reportedAt"),
    }


# --------------------------------------------------------------------------- schedules
def schedule_rows(
    site: Mapping[str, Any], detail: Mapping[str, Any] | None = None
) -> list[dict[str, Any]]:
    """``schedule_entries`` rows of one site: one per (asset, type, startAt), extra fields of
    the schedule and of the entry as columns, and first a marker row ``{site_id}`` (everything
    else NULL) saying "this site was in the snapshot". The list's ``schedules`` are used, else
    those of the site's ``detail`` (the same site object); a site with neither gets no marker:
    its schedule is unknown, not cleared."""
    site_id = site["siteId"]
    schedules = site.get("schedules")
    if schedules is None and detail is not None:
        schedules = detail.get("schedules")
    if schedules is None:
        logger.warning(
            "heat site %s: no 'schedules' field in the list nor in its detail; its schedule "
            "history is left as is",
            site_id,
        )
        return []
    rows: dict[tuple[str, str, str], dict[str, Any]] = {}  # by (asset, type, start)
    for schedule in schedules:
        common = _renamed(schedule, skip=("entries",))
        for entry in schedule.get("entries") or ():
            row = {**common, **_renamed(entry), "site_id": site_id}
            _canonical(row)
            key = (schedule["asset"], schedule["type"], str(row["start_at"]))
            if key in rows:
                logger.warning(
                    "heat site %s: schedule %s/%s has two entries starting %s; the last one is kept",
                    site_id,
                    *key,
                )
            rows[key] = row
    return [{"site_id": site_id}, *rows.values()]


def _canonical(row: dict[str, Any]) -> None:
    """One spelling per value, so an entry is a new scd2 version only when it really changed
    (``entry_hash`` is taken over the values as extracted): ``start_at``/``end_at`` as UTC
    datetimes (``...08:00:00Z`` = ``...08:00:00.000Z`` = ``...10:00:00+02:00``), numbers
    (``value`` and any extra field) as floats (``50`` = ``50.0``)."""
    for name in ("start_at", "end_at"):
        value = row.get(name)
        if isinstance(value, str):
            try:
                row[name] = datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(UTC)
            except ValueError:
                pass  # left as sent: dlt's type check reports it
    row.update(_numbers_as_float(row))


def with_entry_hash(row: dict[str, Any], account: str = DEFAULT) -> dict[str, Any]:
    """The row with its scd2 row version, ``entry_hash`` (see :func:`entry_hash`)."""
    return {**row, ENTRY_HASH_COLUMN: entry_hash(row, account)}


def entry_hash(row: Mapping[str, Any], account: str = DEFAULT) -> str:
    """The scd2 row version of a ``schedule_entries`` row: a hash of its ``site_id, asset,
    type, start_at, end_at, value`` only (``ENTRY_HASH_FIELDS``), so a field the API adds to
    unchanged entries makes no new version. The same for a row as extracted and as read back
    from the warehouse (timestamps in UTC, numbers as floats), which is how the rows of a
    warehouse written before this hash get theirs (:mod:`sources.heat.upgrade`).

    A named account's hash covers its name too: a site two keys see has its own versions in
    each account (dlt's scd2 matches versions by this hash across the whole table). The
    default account's hash is the six fields alone, as before accounts, so the versions an
    existing warehouse holds keep matching."""
    parts = [_hash_part(row.get(name)) for name in ENTRY_HASH_FIELDS]
    if account != DEFAULT:
        parts.insert(0, account)
    text = json.dumps(parts, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def _hash_part(value: Any) -> Any:
    if isinstance(value, datetime):
        aware = value if value.tzinfo else value.replace(tzinfo=UTC)  # naive: UTC
        return aware.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, (int, float, Decimal)):
        return float(value)
    return str(value)


# --------------------------------------------------------------------------- assets
def _asset_items(assets: Any) -> list[tuple[str, Mapping[str, Any]]]:
    """``(kind, asset)`` pairs of the ``assets`` object (a list of assets is accepted too,
    keyed by their ``type``)."""
    if isinstance(assets, Mapping):
        return [(str(k), v) for k, v in assets.items() if isinstance(v, Mapping)]
    if isinstance(assets, list):
        return [
            (str(a.get("type") or a.get("id")), a)
            for a in assets
            if isinstance(a, Mapping) and (a.get("type") or a.get("id"))
        ]
    return []


def is_static_field(field: str) -> bool:
    return field in ASSET_STATIC_FIELDS or field.startswith(ASSET_STATIC_PREFIXES)


def asset_rows(
    site_id: str, assets: Any, at: datetime
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """``(assets rows, asset_readings rows)`` of one site: ``assets`` has every field of the
    asset (rated limits, capacity, latest readings), ``asset_readings`` the readings only
    (every field that is not an identity, a rating or the capacity)."""
    current, readings = [], []
    for kind, asset in _asset_items(assets):
        fields = {ASSET_RENAMED_FIELDS.get(k, column_name(k)): v for k, v in asset.items()}
        own = {"site_id": site_id, "asset_kind": kind}
        current.append(_with_own(fields, {**own, "last_seen_at": at}))
        reading = {column_name(k): v for k, v in asset.items() if not is_static_field(k)}
        readings.append(_with_own(reading, {**own, "snapshot_at": at}))
    return current, readings


# --------------------------------------------------------------------------- type changes
class TypeWatch:
    """Notices a field whose values changed type, before dlt quietly puts them in a variant
    column (``soc`` -> ``soc__v_text``).

    ``known(table)`` gives the table's columns as dlt knows them (from earlier runs); the first
    value seen in this run types a column dlt does not know yet. A value dlt cannot coerce to
    the column's type is a type change: logged as a warning naming table, column and types,
    once per run, and kept in :attr:`changes` for the run's state.
    """

    def __init__(self, known: Callable[[str], Mapping[str, Any]]) -> None:
        self._known = known
        self._seen: dict[tuple[str, str], str] = {}
        self.changes: list[str] = []

    def check(self, table: str, row: Mapping[str, Any]) -> None:
        for column, value in row.items():
            if value is None or column in OWN_COLUMNS:
                continue
            try:
                value_type = py_type_to_sc_type(type(value))
            except TypeError:
                continue
            expected = self._expected(table, column, value_type)
            if expected in (None, value_type, "json") or value_type == "json":
                continue
            try:
                coerce_value(expected, value_type, value)
            except (ValueError, TypeError):
                self._report(table, column, expected, value_type)

    def _expected(self, table: str, column: str, value_type: str) -> str | None:
        key = (table, column)
        if key not in self._seen:
            known = self._known(table).get(column) or {}
            self._seen[key] = known.get("data_type") or value_type
        return self._seen[key]

    def _report(self, table: str, column: str, expected: str, got: str) -> None:
        change = f"{table}.{column}: {expected} -> {got} (new values in {column}__v_{got})"
        if change in self.changes:
            return
        self.changes.append(change)
        logger.warning(
            "%s %s.%s: the API changed the type of this field: it sent %s where the column is "
            "%s. dlt keeps such values in a new column %s__v_%s (the %s column stays NULL for "
            "them); adapt the views and report the API change",
            SOURCE_NAME,
            table,
            column,
            got,
            expected,
            column,
            got,
            column,
        )
