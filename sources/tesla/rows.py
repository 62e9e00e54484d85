"""Gateway JSON -> table rows. Pure functions: no HTTP, no dlt.

Shapes differ by firmware (see ``sandbox/tesla/captures``): extra meters beyond
site/battery/load/solar become rows, unknown fields become columns, ``site_info`` comes flat
(``grid_code`` a string, ``country`` etc. at the top) or nested (``grid_code`` an object) and
lands in the same columns either way. Numbers are written as floats (a counter that reads
``24200`` in one poll and ``24200.5`` in the next must not split into two columns), except the
few integer fields named in ``INTEGER_FIELDS``. A unit at the end of a field name becomes a
lower-case word, as in the HEAT tables: ``nominal_system_energy_kWh`` ->
``nominal_system_energy_kwh``, ``max_system_power_kW`` -> ``max_system_power_kw`` (dlt alone
would make them ``..._k_wh``, ``..._k_w``).
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

#: fields kept as integers (counts, ids); every other number is a float
INTEGER_FIELDS = frozenset(
    {"num_meters_aggregated", "timeout", "commission_count", "alert_raw", "timestamp"}
)
#: units at the end of a field name (``_kWh``), longest first: ``kWh`` before ``Wh``
UNIT_SUFFIXES = ("kVAr", "kWh", "MWh", "kVA", "kW", "MW", "Wh")
_FRACTION = re.compile(r"(\.\d{6})\d+")
_GO_DURATION = re.compile(r"(\d+(?:\.\d+)?)(h|ms|us|µs|ns|m|s)")
_DURATION_UNITS = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 1e-3, "us": 1e-6, "µs": 1e-6, "ns": 1e-9}


def parse_time(value: Any) -> datetime | None:
    """The gateway's timestamps (Go ``time.Time``: RFC 3339 with nanoseconds, or
    ``2021-12-16 22:13:25 +0800``) in UTC; ``0001-01-01T00:00:00Z`` ("never") is None."""
    if not isinstance(value, str) or not value.strip():
        return None
    text = _FRACTION.sub(r"\1", value.strip())
    if text.startswith("0001-01-01"):
        return None
    for candidate in (text, text.replace(" +", "+").replace(" -", "-")):
        try:
            parsed = datetime.fromisoformat(candidate)
        except ValueError:
            continue
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=UTC)
        return parsed.astimezone(UTC)
    return None


def parse_duration(value: Any) -> float | None:
    """Go durations such as ``230h55m59.932079901s`` -> seconds."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if not isinstance(value, str):
        return None
    parts = _GO_DURATION.findall(value)
    if not parts or "".join(n + u for n, u in parts) != value.strip():
        return None
    return sum(float(n) * _DURATION_UNITS[u] for n, u in parts)


def column_name(key: str) -> str:
    """The column of a field: a unit at its end lower-cased (``max_system_power_kW`` ->
    ``max_system_power_kw``); other names unchanged (dlt makes them snake_case)."""
    for unit in UNIT_SUFFIXES:
        if key.endswith("_" + unit):
            return key[: -len(unit)] + unit.lower()
    return key


def _number(key: str, value: Any) -> Any:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return value
    return int(value) if key in INTEGER_FIELDS else float(value)


def scalars(data: Mapping[str, Any]) -> dict[str, Any]:
    """Fields of an object with numbers normalised; nested values kept (JSON columns); nulls
    left out (a column appears with its first value, not as an untyped all-null column)."""
    return {
        column_name(key): _number(key, value) for key, value in data.items() if value is not None
    }


def _with_times(row: dict[str, Any], *fields: str) -> dict[str, Any]:
    for name in fields:
        if name in row:
            row[name] = parse_time(row[name])
    return row


def meter_rows(gateway: str, polled_at: datetime, aggregates: Any) -> Iterator[dict[str, Any]]:
    """One row per meter of ``/api/meters/aggregates`` (any meter name, any fields)."""
    if not isinstance(aggregates, Mapping):
        return
    for meter, fields in aggregates.items():
        if not isinstance(fields, Mapping):
            continue
        row = {"gateway": gateway, "polled_at": polled_at, "meter": meter, **scalars(fields)}
        time_fields = [k for k in row if k.endswith("communication_time")]
        # "0001-01-01T00:00:00Z" means never: left out like any null
        yield {k: v for k, v in _with_times(row, *time_fields).items() if v is not None}


def soe_row(gateway: str, polled_at: datetime, body: Any) -> dict[str, Any] | None:
    if not isinstance(body, Mapping):
        return None
    return {"gateway": gateway, "polled_at": polled_at, **scalars(body)}


def grid_status_row(gateway: str, polled_at: datetime, body: Any) -> dict[str, Any] | None:
    return soe_row(gateway, polled_at, body)


def sitemaster_row(gateway: str, polled_at: datetime, body: Any) -> dict[str, Any] | None:
    return soe_row(gateway, polled_at, body)


def site_info_row(gateway: str, polled_at: datetime, body: Any) -> dict[str, Any] | None:
    """Flat (old) and nested (``grid_code`` object) shapes -> the same columns."""
    if not isinstance(body, Mapping):
        return None
    row: dict[str, Any] = {"gateway": gateway, "polled_at": polled_at}
    nested = body.get("grid_code")
    for key, value in body.items():
        if key != "grid_code" and value is not None:
            row[column_name(key)] = _number(key, value)
    if isinstance(nested, Mapping):
        for key, value in nested.items():  # grid_code.grid_code -> grid_code, country, ...
            if value is not None:
                row[column_name(key)] = _number(key, value)
    elif nested is not None:
        row["grid_code"] = nested
    return row


def gateway_status_row(
    gateway: str,
    polled_at: datetime,
    status: Any,
    *,
    state: str,
    error: str | None,
    unavailable: list[str],
    site_info: Any = None,
) -> dict[str, Any]:
    """``/api/status`` (firmware version, uptime) plus how this poll went, and the site's
    ``timezone`` from ``/api/site_info`` when it answered (the energy views' local days; kept
    here because gateway_status exists for every firmware, site_info does not)."""
    zone = site_info.get("timezone") if isinstance(site_info, Mapping) else None
    row: dict[str, Any] = {
        "gateway": gateway,
        "polled_at": polled_at,
        "gateway_state": state,
        "error": error,
        "unavailable_endpoints": ",".join(sorted(unavailable)) or None,
        "timezone": zone if isinstance(zone, str) and zone.strip() else None,
    }
    if isinstance(status, Mapping):
        for key, value in scalars(status).items():
            row.setdefault(key, value)
        if "up_time_seconds" in status:
            row["up_time_seconds"] = parse_duration(status["up_time_seconds"])
        if "start_time" in status:
            row["start_time"] = parse_time(status["start_time"])
    return row


def powerwall_rows(gateway: str, polled_at: datetime, body: Any) -> Iterator[dict[str, Any]]:
    """One row per device of ``/api/powerwalls`` (``position`` = its place in the list)."""
    devices = body.get("powerwalls") if isinstance(body, Mapping) else None
    for position, device in enumerate(devices or ()):
        if isinstance(device, Mapping):
            yield {
                "gateway": gateway,
                "position": position,
                "polled_at": polled_at,
                **scalars(device),
            }


def grid_fault_rows(gateway: str, polled_at: datetime, body: Any) -> Iterator[dict[str, Any]]:
    """Faults, keyed so the same fault seen by many polls is one row (``fault_id``)."""
    faults = body if isinstance(body, list) else (body or {}).get("grid_faults") or []
    for fault in faults:
        if not isinstance(fault, Mapping):
            continue
        row = {"gateway": gateway, "last_seen_at": polled_at, **scalars(fault)}
        stamp = fault.get("timestamp")
        row["fault_id"] = ":".join(
            str(fault.get(k) or "")
            for k in ("timestamp", "alert_name", "ecu_type", "ecu_package_serial_number")
        )
        if isinstance(stamp, (int, float)) and not isinstance(stamp, bool):
            row["fault_at"] = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(milliseconds=stamp)
        yield row


__all__ = [
    "column_name",
    "gateway_status_row",
    "grid_fault_rows",
    "grid_status_row",
    "meter_rows",
    "parse_duration",
    "parse_time",
    "powerwall_rows",
    "site_info_row",
    "sitemaster_row",
    "soe_row",
]
