"""solarsync's own settings, typed: dlt configspecs read from ``.dlt/config.toml``,
``.dlt/secrets.toml`` and environment variables (which override both), like every dlt setting.

``[solarsync]`` (env ``SOLARSYNC__<KEY>``), :class:`SolarsyncSettings`:

| key | env | default | what |
|---|---|---|---|
| ``destination`` | ``SOLARSYNC__DESTINATION`` | ``duckdb`` | ``duckdb``, ``filesystem`` (the Delta lake) or ``postgres`` |
| ``report_timezone`` | ``SOLARSYNC__REPORT_TIMEZONE`` | ``UTC`` | the report's one time zone |
| ``report_max_points`` | ``SOLARSYNC__REPORT_MAX_POINTS`` | 2000 | points per series before downsampling (0: never) |
| ``report_leaderboard_top`` | ``SOLARSYNC__REPORT_LEADERBOARD_TOP`` | 25 | reps on the leaderboard |
| ``report_funnel_from`` / ``_to`` | ``SOLARSYNC__REPORT_FUNNEL_FROM`` / ``_TO`` | the data's range | weeks of the funnel |
| ``dagster_sources`` | ``SOLARSYNC__DAGSTER_SOURCES`` | the configured ones | sources of the Dagster definitions |
| ``dagster_timezone`` | ``SOLARSYNC__DAGSTER_TIMEZONE`` | the machine's | the schedules' time zone |
| ``account_concurrency`` | ``SOLARSYNC__ACCOUNT_CONCURRENCY`` | 4 | accounts of a source synced at once |

``[sources.<name>]`` (env ``SOURCES__<NAME>__<KEY>``), :class:`SourceRunSettings`, besides each
source's own settings: ``schedule`` (Dagster's cron line) and ``expected_interval`` (``status``
calls a source stale after this long without a success, default ``26h``).

The destinations' own settings live with them: ``[destination.duckdb]``
(:mod:`pipelines.destinations.duckdb.settings`), ``[destination.postgres]``
(:mod:`pipelines.destinations.postgres.config`), ``[solarsync.lake]``
(:mod:`pipelines.destinations.lake.settings`). ``docs/configuration.md`` lists them all.

Durations are written ``"30s"``, ``"5m"``, ``"1h30m"``, ``"500ms"`` or as a number of seconds.
"""

from __future__ import annotations

import re
from typing import Any, Optional, TypeVar

from dlt.common.configuration import configspec, resolve_configuration
from dlt.common.configuration.exceptions import ConfigurationException
from dlt.common.configuration.specs import BaseConfiguration

from sources.common import ConfigurationError

#: the destinations solarsync loads into (``--destination``, ``[solarsync] destination``)
KINDS = ("duckdb", "filesystem", "postgres")
#: a source whose last success is older than this is stale: a nightly cron job plus two hours
DEFAULT_EXPECTED_INTERVAL = "26h"

_DURATION = re.compile(r"(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?", re.I)
_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(text: str) -> float:
    """``"60s"``, ``"5m"``, ``"1h30m"``, ``"0.5s"``, ``"500ms"``, ``"90"`` (seconds) -> seconds."""
    value = str(text).strip()
    pos, total = 0, 0.0
    for match in _DURATION.finditer(value):
        if match.start() != pos or (match.group(2) is None and match.end() != len(value)):
            break
        total += float(match.group(1)) * _UNITS[(match.group(2) or "s").lower()]
        pos = match.end()
    if pos != len(value) or not value or total <= 0:
        raise ValueError(f"not a duration: {text!r} (examples: 30s, 5m, 1h, 1h30m)")
    return total


def duration(value: Any, setting: str, *, where: str | None = None) -> float:
    """A duration setting's value in seconds; a :class:`ConfigurationError` naming
    ``setting`` when it is none."""
    if isinstance(value, int | float) and not isinstance(value, bool) and value > 0:
        return float(value)
    try:
        return parse_duration(str(value))
    except ValueError as exc:
        raise ConfigurationError(
            f"{setting}: {exc}", source=where, hint="e.g. 30s, 5m, 1h"
        ) from None


S = TypeVar("S", bound=BaseConfiguration)


def resolve(spec: S, *sections: str) -> S:
    """``spec`` resolved from dlt's configuration under ``sections``; a setting of the wrong
    type is a :class:`ConfigurationError` naming the section.

    The last section is the spec's own (dlt's ``__section__``): a key is looked up there and
    in the sections above it, never at the top level, where ``[solarsync] destination`` would
    find dlt's ``[destination]`` table."""
    *parents, own = sections
    spec.__section__ = own
    try:
        return resolve_configuration(spec, sections=tuple(parents))
    except ConfigurationException as exc:
        text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ConfigurationError(
            f"[{'.'.join(sections)}] settings do not resolve: {text}",
            hint=f"check [{'.'.join(sections)}] in .dlt/config.toml and the "
            f"{'__'.join(s.upper() for s in sections)}__* environment variables",
        ) from None


@configspec
class SolarsyncSettings(BaseConfiguration):
    """``[solarsync]``: the table in the module docstring."""

    destination: str = "duckdb"
    report_timezone: str = "UTC"
    report_max_points: int = 2000
    report_leaderboard_top: int = 25
    report_funnel_from: Optional[str] = None  # noqa: UP045
    report_funnel_to: Optional[str] = None  # noqa: UP045
    #: a list, ``"a,b"``, a JSON list or ``all``
    dagster_sources: Optional[Any] = None  # noqa: UP045
    dagster_timezone: Optional[str] = None  # noqa: UP045
    #: accounts of one source extracted at once (docs/accounts.md); 1: one after the other
    account_concurrency: int = 4


def solarsync() -> SolarsyncSettings:
    """``[solarsync]`` as configured."""
    return resolve(SolarsyncSettings(), "solarsync")


def destination_kind(explicit: str | None = None) -> str:
    """``--destination`` > ``[solarsync] destination`` (``SOLARSYNC__DESTINATION``) > duckdb."""
    kind = explicit or solarsync().destination or "duckdb"
    if kind not in KINDS:
        raise ConfigurationError(
            f"unknown destination {kind!r}",
            hint=f"choose one of {', '.join(KINDS)} (--destination or [solarsync] destination)",
        )
    return kind


@configspec
class SourceRunSettings(BaseConfiguration):
    """``[sources.<name>]`` keys solarsync reads for every source (not the source's own)."""

    #: Dagster's schedule for the source (a cron line); default: the registry's
    schedule: Optional[str] = None  # noqa: UP045
    #: ``status`` calls the source stale after this long without a successful run
    expected_interval: Optional[str] = None  # noqa: UP045


def source_run(source: str) -> SourceRunSettings:
    return resolve(SourceRunSettings(), "sources", source)


__all__ = [
    "DEFAULT_EXPECTED_INTERVAL",
    "KINDS",
    "SolarsyncSettings",
    "SourceRunSettings",
    "destination_kind",
    "duration",
    "parse_duration",
    "resolve",
    "solarsync",
    "source_run",
]
