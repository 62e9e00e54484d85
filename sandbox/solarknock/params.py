"""Query parameters of the SolarKnock list endpoints: standard params, per-endpoint filters and
opaque cursors. Pure functions; errors are ``ApiError`` (turned into the error envelope)."""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date

import orjson

from sandbox.solarknock.data import (
    iso_ms,
    ms_of,
    parse_iso,
)
from sandbox.solarknock.pools import (
    APPOINTMENT_STATUSES,
    KNOCK_STATUSES,
    LEAD_STATUSES,
)

DEFAULT_LIMIT = 500
MAX_LIMIT = 1000
_FIPS = re.compile(r"\d{5}")
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def invalid_param(message: str) -> ApiError:
    return ApiError(400, "INVALID_PARAM", message)


@dataclass
class ListParams:
    since: str | None = None
    until: str | None = None
    after: tuple[str, str] | None = None
    limit: int = DEFAULT_LIMIT
    include_deleted: bool = False
    predicate: Callable[[dict], bool] | None = None
    has_cursor: bool = False


# ---------------------------------------------------------------- cursors


def encode_cursor(endpoint: str, position: tuple[str, str]) -> str:
    raw = orjson.dumps({"e": endpoint, "u": position[0], "k": position[1]})
    return base64.urlsafe_b64encode(raw).decode("ascii")


def decode_cursor(endpoint: str, cursor: str) -> tuple[str, str]:
    bad = ApiError(400, "INVALID_CURSOR", "Cursor is invalid or belongs to another endpoint.")
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        obj = orjson.loads(raw)
    except (binascii.Error, ValueError, orjson.JSONDecodeError):
        raise bad from None
    if not isinstance(obj, dict) or obj.get("e") != endpoint:
        raise bad
    u, k = obj.get("u"), obj.get("k")
    if not isinstance(u, str) or not isinstance(k, str):
        raise bad
    return u, k


# ---------------------------------------------------------------- values


def _timestamp(name: str, value: str) -> str:
    """ISO 8601 -> the store's canonical ``...sss.mmmZ`` (floored to the millisecond, which
    keeps both ``> since`` and ``<= until`` exact against millisecond timestamps)."""
    try:
        return iso_ms(ms_of(parse_iso(value)))
    except (ValueError, OverflowError):
        raise invalid_param(
            f"'{name}' must be an ISO 8601 timestamp such as 2024-01-31T00:00:00Z "
            "(offsets must be URL-encoded: %2B01:00)."
        ) from None


def _day(name: str, value: str) -> str:
    if not _DATE.fullmatch(value):
        raise invalid_param(f"'{name}' must be a date YYYY-MM-DD.")
    try:
        date.fromisoformat(value)
    except ValueError:
        raise invalid_param(f"'{name}' is not a valid date.") from None
    return value


def _enum(name: str, value: str, allowed: tuple[str, ...]) -> str:
    if value not in allowed:
        raise invalid_param(f"'{name}' must be one of: {', '.join(allowed)}.")
    return value


def _bool(name: str, value: str) -> bool:
    v = value.lower()
    if v in ("true", "1"):
        return True
    if v in ("false", "0"):
        return False
    raise invalid_param(f"'{name}' must be true or false.")


def _limit(value: str) -> int:
    if not re.fullmatch(r"\d{1,7}", value) or not 1 <= int(value) <= MAX_LIMIT:
        raise invalid_param(f"'limit' must be an integer between 1 and {MAX_LIMIT}.")
    return int(value)


# ---------------------------------------------------------------- filters

_Check = Callable[[dict], bool]


def _eq(field: str, value: str) -> _Check:
    return lambda row: row.get(field) == value


def _ge(field: str, value: str) -> _Check:
    return lambda row: (row.get(field) or "") >= value


def _le(field: str, value: str) -> _Check:
    return lambda row: row.get(field) is not None and row[field] <= value


def _created_bound(name: str, value: str, upper: bool) -> str:
    if _DATE.fullmatch(value):
        _day(name, value)
        return value + ("T23:59:59.999Z" if upper else "T00:00:00.000Z")
    return _timestamp(name, value)


def _filters(endpoint: str, q: dict[str, str]) -> list[_Check]:
    checks: list[_Check] = []

    def has(name: str) -> bool:
        return name in q and q[name] != ""

    if endpoint == "knocks":
        if has("user_id"):
            checks.append(_eq("user_id", q["user_id"]))
        if has("status"):
            checks.append(_eq("status", _enum("status", q["status"], KNOCK_STATUSES)))
        if has("county_fips"):
            if not _FIPS.fullmatch(q["county_fips"]):
                raise invalid_param("'county_fips' must be 5 digits.")
            checks.append(_eq("county_fips", q["county_fips"]))
        if has("knock_date_from"):
            checks.append(_ge("knock_date", _day("knock_date_from", q["knock_date_from"])))
        if has("knock_date_to"):
            checks.append(_le("knock_date", _day("knock_date_to", q["knock_date_to"])))
    elif endpoint == "leads":
        if has("status"):
            checks.append(_eq("status", _enum("status", q["status"], LEAD_STATUSES)))
        if has("user_id"):
            checks.append(_eq("user_id", q["user_id"]))
        if has("created_from"):
            v = _created_bound("created_from", q["created_from"], upper=False)
            checks.append(_ge("created_at", v))
        if has("created_to"):
            v = _created_bound("created_to", q["created_to"], upper=True)
            checks.append(_le("created_at", v))
    elif endpoint == "appointments":
        for f in ("closer_id", "setter_id"):
            if has(f):
                checks.append(_eq(f, q[f]))
        if has("status"):
            checks.append(_eq("status", _enum("status", q["status"], APPOINTMENT_STATUSES)))
    if endpoint in ("appointments", "daily-stats", "app-opens"):
        if endpoint != "appointments" and has("user_id"):
            checks.append(_eq("user_id", q["user_id"]))
        if has("date_from"):
            checks.append(_ge("date", _day("date_from", q["date_from"])))
        if has("date_to"):
            checks.append(_le("date", _day("date_to", q["date_to"])))
    return checks


def parse_list_params(endpoint: str, q: dict[str, str]) -> ListParams:
    """Validate a list request's query (unknown parameters are ignored, like the real API)."""
    p = ListParams()
    if "limit" in q:
        p.limit = _limit(q["limit"])
    if "since" in q:
        p.since = _timestamp("since", q["since"])
    if "until" in q:
        p.until = _timestamp("until", q["until"])
    if "include_deleted" in q:
        p.include_deleted = _bool("include_deleted", q["include_deleted"])
    if q.get("cursor"):
        p.has_cursor = True
        p.after = decode_cursor(endpoint, q["cursor"])
    checks = _filters(endpoint, q)
    if len(checks) == 1:
        p.predicate = checks[0]
    elif checks:
        p.predicate = lambda row: all(c(row) for c in checks)
    return p
