"""The report's settings: ``[solarsync]`` in ``.dlt/config.toml`` or ``SOLARSYNC__<KEY>``.

- ``report_timezone``: the one zone every time axis, day and week of the page is in
  (an IANA name such as ``Europe/Berlin``; default ``UTC``). The machine's ``TZ`` never
  matters.
- ``report_max_points``: the most readings drawn per series; a longer series (a week of 5 s
  polls is ~121k per series) is downsampled to the minimum and maximum of each time bucket
  (``0``: never downsample).
- ``report_leaderboard_top``: how many reps the leaderboard shows.
- ``report_funnel_from`` / ``report_funnel_to``: the weeks the weekly funnel shows
  (``YYYY-MM-DD``); default: the data's real range, outliers left out and named in a note.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pipelines import settings as solarsync_settings
from pipelines.settings import SolarsyncSettings
from sources.common import ConfigurationError

DEFAULT_MAX_POINTS = SolarsyncSettings.report_max_points
DEFAULT_TOP = SolarsyncSettings.report_leaderboard_top
_ZONE_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_+\-/]*$")


@dataclass(frozen=True)
class ReportSettings:
    zone_name: str
    zone: ZoneInfo
    max_points: int
    top: int
    funnel_from: date | None
    funnel_to: date | None


def _date(key: str, value: str | None) -> date | None:
    if value in (None, ""):
        return None
    try:
        return date.fromisoformat(str(value))
    except ValueError:
        raise ConfigurationError(
            f"[solarsync] {key} = {value!r} is not a date", hint="write it as YYYY-MM-DD"
        ) from None


def zone_info(name: str) -> ZoneInfo:
    """The IANA zone ``name`` (``UTC``, ``Asia/Kolkata``); ConfigurationError otherwise."""
    try:
        if not _ZONE_NAME.match(name):
            raise ValueError(name)
        return ZoneInfo(name)
    except (ValueError, ZoneInfoNotFoundError):
        raise ConfigurationError(
            f"[solarsync] report_timezone = {name!r} is not a time zone",
            hint="use an IANA name such as UTC, Europe/Berlin or America/New_York "
            "(SOLARSYNC__REPORT_TIMEZONE)",
        ) from None


def load(timezone: str | None = None) -> ReportSettings:
    """The settings from dlt's configuration; ``timezone`` overrides ``report_timezone``."""
    config = solarsync_settings.solarsync()
    name = (timezone or config.report_timezone or "UTC").strip()
    if config.report_max_points < 0 or 0 < config.report_max_points < 50:
        raise ConfigurationError(
            f"[solarsync] report_max_points = {config.report_max_points} is too small",
            hint="use 0 (never downsample) or at least 50",
        )
    return ReportSettings(
        zone_name=name,
        zone=zone_info(name),
        max_points=config.report_max_points,
        top=max(1, config.report_leaderboard_top),
        funnel_from=_date("report_funnel_from", config.report_funnel_from),
        funnel_to=_date("report_funnel_to", config.report_funnel_to),
    )
