"""The SolarAssistant settings that need reading: which sites and topics (``sites``,
``topics``) and each site's time zone (``timezone``, ``site_timezones``)."""

from __future__ import annotations

import logging
import zoneinfo
from collections.abc import Callable
from typing import Any

import orjson

from sources.common import ConfigurationError
from sources.solarassistant.settings import SOURCE_NAME

logger = logging.getLogger("solarsync.solarassistant")


def selectors(value: Any) -> list[str]:
    """``"a, b"`` / ``["a", 1]`` / None -> ``["a", "b"]``; ``all`` or ``*`` alone -> []."""
    if value is None:
        return []
    if isinstance(value, str) and value.strip().startswith("["):
        # a list written as in TOML/JSON, e.g. SOURCES__SOLARASSISTANT__TOPICS='["total/*"]'
        try:
            value = orjson.loads(value)
        except orjson.JSONDecodeError:
            value = [v.strip().strip("'\"") for v in value.strip().strip("[]").split(",")]
    if isinstance(value, (str, int)):
        value = str(value)
    items = value.split(",") if isinstance(value, str) else list(value)
    out = [str(item).strip() for item in items if str(item).strip()]
    return [] if out in (["all"], ["*"]) else out


def select(site_list: list[dict[str, Any]], wanted: list[str]) -> list[dict[str, Any]]:
    if not wanted:
        return list(site_list)
    chosen = [s for s in site_list if str(s["id"]) in wanted or str(s.get("name")) in wanted]
    matched = {str(s["id"]) for s in chosen} | {str(s.get("name")) for s in chosen}
    unknown = [w for w in wanted if w not in matched]
    if unknown:
        logger.warning(
            "solarassistant: sources.solarassistant.sites names %s, not on this account", unknown
        )
    return chosen


def zones(default: str | None, per_site: Any) -> tuple[Callable[[Any], str | None], set[str]]:
    """The configured time zone of a polled site (by id, then name, then ``default``), or
    None; and the site ids/names ``per_site`` names. Every zone is checked here: a wrong one
    is a configuration error, not a view that fails when queried."""
    if isinstance(per_site, str):
        text = per_site.strip()
        try:
            per_site = orjson.loads(text) if text else {}
        except orjson.JSONDecodeError:
            per_site = None
    if per_site is None:
        per_site = {}
    if not isinstance(per_site, dict) and hasattr(per_site, "items"):
        per_site = dict(per_site.items())
    if not isinstance(per_site, dict):
        raise ConfigurationError(
            "site_timezones is not a mapping of site ids or names to time zones",
            source=SOURCE_NAME,
            hint="set [sources.solarassistant.site_timezones] in config.toml, e.g. "
            '"my-site" = "Europe/Berlin", or SOURCES__SOLARASSISTANT__SITE_TIMEZONES='
            '\'{"my-site": "Europe/Berlin"}\'',
        )
    by_site = {str(k).strip(): str(v).strip() for k, v in per_site.items() if v}
    fallback = str(default).strip() if default else None
    for setting, zone in [("timezone", fallback), *by_site.items()]:
        if not zone:
            continue
        try:
            zoneinfo.ZoneInfo(zone)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            where = "timezone" if setting == "timezone" else f"site_timezones[{setting!r}]"
            raise ConfigurationError(
                f"{where} = {zone!r} is not an IANA time zone",
                source=SOURCE_NAME,
                hint=f"set sources.solarassistant.{where} to a name such as Europe/Berlin or "
                "America/New_York",
            ) from None

    def zone_of(site: Any) -> str | None:
        return by_site.get(str(site.site_id)) or by_site.get(str(site.site_name)) or fallback

    return zone_of, set(by_site)


__all__ = ["select", "selectors", "zones"]
