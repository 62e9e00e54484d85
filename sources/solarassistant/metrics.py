"""One metrics poll: every selected site polled through the cloud proxy with bounded
concurrency, each site's outcome classified (``ok`` / ``offline`` / ``error``), and the rows
turned into the long ``metrics`` table (one row per site, topic and poll instant).

Values can be numbers, strings or booleans (or null): every row keeps the raw value as text
(``value_text``), its JSON type (``value_type``) and, when it is numeric, the number
(``value_number``: numbers, booleans as 1/0, and strings that are plain decimal numbers).
"""

from __future__ import annotations

import logging
import math
import re
import time
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import orjson
import pyarrow as pa

from sources.common import (
    AuthenticationError,
    SolarsyncError,
    SourceUnavailableError,
    redact,
)
from sources.solarassistant.client import SolarAssistantClient
from sources.solarassistant.settings import (
    METRIC_FIELDS,
    METRICS_PATH,
    OFFLINE_STATUSES,
    OFFLINE_WORDS,
    SOURCE_NAME,
)
from sources.solarassistant.shapes import SentNumber

logger = logging.getLogger("solarsync.solarassistant")

OK, OFFLINE, ERROR = "ok", "offline", "error"
_DECIMAL = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")

METRICS_SCHEMA = pa.schema(
    [
        pa.field("site_id", pa.int64(), nullable=False),
        pa.field("topic", pa.string(), nullable=False),
        pa.field("polled_at", pa.timestamp("us", tz="UTC"), nullable=False),
        pa.field("device", pa.string()),
        pa.field("group", pa.string()),
        pa.field("name", pa.string()),
        pa.field("unit", pa.string()),
        pa.field("number", pa.int64()),
        pa.field("value_number", pa.float64()),
        pa.field("value_text", pa.string()),
        pa.field("value_type", pa.string()),
    ]
)


# --------------------------------------------------------------------------- values
def typed_value(value: Any) -> tuple[float | None, str | None, str]:
    """``(value_number, value_text, value_type)`` of one metric value: the text as sent (a
    number read by :func:`~sources.solarassistant.client.parse_metrics_body` keeps its text;
    an integer of any size is exact), the number when it is a finite double."""
    if value is None:
        return None, None, "null"
    if isinstance(value, bool):
        return (1.0 if value else 0.0), ("true" if value else "false"), "boolean"
    if isinstance(value, int):
        return _finite(value), str(value), "number"
    if isinstance(value, float):
        number = _finite(value)
        if isinstance(value, SentNumber):
            return number, value.text, "number"
        if number is None:  # NaN / Infinity (non-standard JSON): no number, the text
            return (
                None,
                ("NaN" if math.isnan(value) else "Infinity" if value > 0 else "-Infinity"),
                "number",
            )
        return number, _dumps(value), "number"
    if isinstance(value, str):
        number = _finite(value) if _DECIMAL.fullmatch(value.strip()) else None
        return number, value, "string"
    return None, _dumps(value), "json"


def _finite(value: Any) -> float | None:
    """``value`` as a finite double, else None (an integer beyond ~1.8e308 overflows)."""
    try:
        number = float(value)
    except (OverflowError, ValueError):
        return None
    return number if math.isfinite(number) else None


def _dumps(value: Any) -> str:
    return orjson.dumps(value, default=float).decode()  # default: float subclasses


def _text(value: Any) -> str | None:
    if value is None:
        return None
    return value if isinstance(value, str) else _dumps(value)


_INT64 = (-(2**63), 2**63 - 1)


def _integer(value: Any) -> int | None:
    """An integer that fits the ``BIGINT`` column (``2``, ``"2"``, ``2.0``), else None."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, float):
        number = int(value) if value.is_integer() else None
    elif isinstance(value, int):
        number = value
    else:
        try:
            number = int(str(value).strip())
        except ValueError:
            return None
    if number is None or not _INT64[0] <= number <= _INT64[1]:
        return None
    return number


def metric_row(site_id: int, polled_at: datetime, row: Mapping[str, Any]) -> dict[str, Any]:
    topic = str(row["topic"])
    number, text, kind = typed_value(row.get("value"))
    out: dict[str, Any] = {"site_id": site_id, "topic": topic, "polled_at": polled_at}
    for name in METRIC_FIELDS:
        out[name] = _integer(row.get(name)) if name == "number" else _text(row.get(name))
    if out["device"] is None and "/" in topic:
        out["device"] = topic.split("/", 1)[0]  # topics are <device>/<metric>
    out.update(value_number=number, value_text=text, value_type=kind)
    return out


def metrics_table(rows: Iterable[dict[str, Any]]) -> pa.Table:
    return pa.Table.from_pylist(list(rows), schema=METRICS_SCHEMA)


# --------------------------------------------------------------------------- one poll
@dataclass
class SitePoll:
    site_id: int
    site_name: str | None
    status: str
    reason: str | None = None
    http_status: int | None = None
    authorized: bool = False
    duration_ms: int = 0
    rows: list[dict[str, Any]] = field(default_factory=list)
    #: the rows as the ``metrics`` table (when the poll was given its instant)
    table: pa.Table | None = None

    def record(self, polled_at: datetime) -> dict[str, Any]:
        """The site's ``metric_polls`` row."""
        return {
            "site_id": self.site_id,
            "polled_at": polled_at,
            "site_name": self.site_name,
            "status": self.status,
            "reason": self.reason,
            "http_status": self.http_status,
            "metric_count": len(self.rows),
            "authorized": self.authorized,
            "duration_ms": self.duration_ms,
        }


def classify(exc: SolarsyncError) -> str:
    """``offline`` for what an unconnected site looks like through the proxy (gateway
    errors, timeouts, an error saying so); ``error`` for the rest (TLS failures included)."""
    detail = f"{exc.detail} {exc.code or ''}".lower()
    if "sslerror" in detail or "certificate" in detail:
        return ERROR
    if isinstance(exc, SourceUnavailableError) and exc.status is None:
        return OFFLINE  # no answer at all: connection refused, timeouts, dropped connections
    if exc.status in OFFLINE_STATUSES or any(word in detail for word in OFFLINE_WORDS):
        return OFFLINE
    return ERROR


def _is_fatal(exc: BaseException) -> bool:
    """The account's API token rejected while authorizing: no site can be polled."""
    return (
        isinstance(exc, AuthenticationError)
        and exc.status == 401
        and (exc.endpoint or "").endswith("/authorize")
    )


def poll_site(
    client: SolarAssistantClient,
    site: Mapping[str, Any],
    topics: Sequence[str | None],
    polled_at: datetime | None = None,
) -> SitePoll:
    """One site's poll; with ``polled_at`` its rows are also turned into the ``metrics`` table
    here, so a row that cannot be stored is this site's error, not the run's."""
    site_id = int(site["id"])
    name = site.get("name")
    started = time.monotonic()
    result = SitePoll(site_id=site_id, site_name=str(name) if name is not None else None, status=OK)

    def authorized() -> None:
        result.authorized = True

    try:
        rows, _ = client.metrics(site_id, topics, on_authorize=authorized)
        if polled_at is not None:
            result.table = metrics_table(metric_row(site_id, polled_at, r) for r in rows)
        result.rows = rows
    except SolarsyncError as exc:
        if _is_fatal(exc):
            raise
        result.status = classify(exc)
        result.reason = redact(str(exc))
        if result.status == ERROR and "SSLError" in exc.detail:
            result.reason = redact(
                f"TLS verification of the proxy failed ({exc.detail}); if it uses a private CA, "
                "point REQUESTS_CA_BUNDLE at it (verification is never turned off)"
            )
        result.http_status = exc.status
    except Exception as exc:  # a bug for one site must not cost the other sites their poll
        result.status = ERROR
        result.reason = redact(f"{type(exc).__name__}: {exc}")
        logger.debug("solarassistant site %s: unexpected failure", site_id, exc_info=True)
    result.duration_ms = int((time.monotonic() - started) * 1000)
    if result.status != OK:
        logger.warning(
            "solarassistant site %s (%s): %s: %s", site_id, name, result.status, result.reason
        )
    return result


def poll_errors(results: Sequence[SitePoll]) -> list[str]:
    """Why a poll failed although its ``metric_polls`` rows are loaded: no site could be read,
    and at least one failed with an ``error`` (TLS, authorization, configuration, an answer
    that is not metric rows), not only by being offline. Empty when any site answered, when
    every failing site was offline, and when no site was polled."""
    failed = [r for r in results if r.status == ERROR]
    if not failed or any(r.status == OK for r in results):
        return []
    by_reason: dict[str, list[int]] = {}
    for r in failed:
        by_reason.setdefault(r.reason or "unknown error", []).append(r.site_id)
    parts = []
    for reason, ids in list(by_reason.items())[:3]:
        shown = ", ".join(str(i) for i in ids[:5]) + (", ..." if len(ids) > 5 else "")
        parts.append(f"{reason} (site {shown})" if len(ids) == 1 else f"{reason} (sites {shown})")
    if len(by_reason) > 3:
        parts.append(f"and {len(by_reason) - 3} other reason(s)")
    offline = sum(r.status == OFFLINE for r in results)
    what = f"no site could be read: {len(failed)} of {len(results)} failed with an error"
    what += f" ({offline} offline)" if offline else ""
    return [
        str(
            SolarsyncError(
                f"{what}: " + "; ".join(parts),
                source=SOURCE_NAME,
                endpoint=METRICS_PATH,
                hint="Every site's outcome is loaded in metric_polls (status, reason): fix the "
                "cause and rerun",
            )
        )
    ]


def poll_sites(
    client: SolarAssistantClient,
    sites: Sequence[Mapping[str, Any]],
    topics: Sequence[str | None],
    concurrency: int,
    polled_at: datetime | None = None,
) -> list[SitePoll]:
    """Every site once, at most ``concurrency`` at a time; results in the order of ``sites``.

    Raises only when the API token itself is rejected (then no site can be polled)."""
    if not sites:
        return []
    with ThreadPoolExecutor(
        max_workers=max(1, min(concurrency, len(sites))), thread_name_prefix="solarassistant"
    ) as pool:
        futures = [pool.submit(poll_site, client, site, topics, polled_at) for site in sites]
        done, _ = wait(futures, return_when=FIRST_EXCEPTION)
        for future in done:
            if future.exception() is not None:
                for other in futures:
                    other.cancel()
                raise future.exception()  # type: ignore[misc]
        return [future.result() for future in futures]


__all__ = [
    "ERROR",
    "METRICS_SCHEMA",
    "OFFLINE",
    "OK",
    "SitePoll",
    "classify",
    "metric_row",
    "metrics_table",
    "poll_errors",
    "poll_sites",
    "typed_value",
]
