"""Freshness of a source from its last run and last success: ``ok``, ``stale`` (the last
success is older than ``[sources.<name>] expected_interval``), ``failed`` or ``never run``."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from pipelines.settings import DEFAULT_EXPECTED_INTERVAL, parse_duration, source_run
from sources.common import SolarsyncError


def now_utc() -> datetime:
    return datetime.now(UTC)


def expected_interval(source: str) -> tuple[float, str, str | None]:
    """``[sources.<name>] expected_interval`` (e.g. ``"26h"``, ``"15m"``, or seconds) ->
    (seconds, as written, a note when the setting is not a duration)."""
    default = parse_duration(DEFAULT_EXPECTED_INTERVAL), DEFAULT_EXPECTED_INTERVAL, None
    try:
        value = source_run(source).expected_interval
    except SolarsyncError:
        value = None
    if value in (None, ""):
        return default
    value = str(value).strip()
    if value.replace(".", "", 1).isdigit() and float(value) > 0:
        return float(value), f"{value}s", None
    try:
        return parse_duration(str(value)), str(value), None
    except ValueError:
        return (
            default[0],
            default[1],
            f"sources.{source}.expected_interval = {value!r} is not a duration (examples: "
            f"26h, 90m, 7d); using {DEFAULT_EXPECTED_INTERVAL}",
        )


def _when(value: Any) -> datetime | None:
    if value is None or isinstance(value, datetime):
        return value
    try:
        return datetime.fromisoformat(str(value))
    except ValueError:
        return None


def health(
    source: str, last: dict | None, last_ok: dict | None, now: datetime | None = None
) -> dict[str, Any]:
    """Freshness of one source from its last run and last success (journal or warehouse rows):
    ``state`` is ``ok``, ``stale`` (last success older than the expected interval), ``failed``
    (the last run failed) or ``never run``."""
    now = now or now_utc()
    seconds, written, note = expected_interval(source)
    last_success = _when(last_ok.get("finished_at")) if last_ok else None
    age = (now - last_success).total_seconds() if last_success else None
    stale = age is None or age > seconds
    failed = bool(last) and last.get("status") != "ok"
    state = "never run" if not last else "failed" if failed else "stale" if stale else "ok"
    out: dict[str, Any] = {
        "state": state,
        "stale": stale,
        "last_run_failed": failed,
        "expected_interval": written,
        "expected_interval_s": seconds,
        "last_success_at": last_success.isoformat() if last_success else None,
        "age_s": None if age is None else round(age, 1),
        "last_run": None,
    }
    if last:
        out["last_run"] = {
            k: (v.isoformat() if isinstance(v, datetime) else v)
            for k, v in last.items()
            if k
            in (
                "run_id",
                "command",
                "started_at",
                "finished_at",
                "status",
                "error_class",
                "error_message",
                "requests",
                "rate_limited",
                "retries",
                "warnings",
            )
        }
    if note:
        out["note"] = note
    return out


def age(seconds: float | None) -> str:
    """``3 h 12 min``, ``45 min``, ``4 days`` (``never`` for None)."""
    if seconds is None:
        return "never"
    minutes = int(seconds // 60)
    if minutes < 60:
        return f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{hours} h {minutes} min"
    return f"{hours // 24} days"


def when(value: Any) -> str:
    """An instant (or its ISO text) as ``2026-06-01 09:00 UTC``; ``-`` when there is none."""
    value = _when(value)
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC") if value else "-"
