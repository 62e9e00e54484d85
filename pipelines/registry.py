"""Which sources solarsync knows: each declares itself once, here, as a :class:`SourceSpec`.

The only place that names sources; pipelines hold no API knowledge beyond this table. The CLI
(``run``, ``backfill``, ``poll``, ``check``, ``status``), the report (its sections), Dagster
(assets, jobs, schedules) and the views (``warehouse/views/<views>``) read it from here.
Adding a source is its package under ``sources/`` plus one entry below (see
``docs/contributing.md``).
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import dlt


@dataclass(frozen=True)
class SourceSpec:
    """One source as solarsync runs it. The package (``module``) provides the
    ``@dlt.source`` function named ``name``, ``RESOURCE_NAMES`` and ``check()``; optionally
    ``backfill_followers()`` and ``is_configured()``."""

    name: str
    #: the package with the @dlt.source function of the same name
    module: str
    #: settings that must resolve (config or secrets) for the source to count as configured
    #: (a module-level ``is_configured()`` in the source package overrides this)
    required: tuple[str, ...]
    #: the tables; empty: the package's own ``RESOURCE_NAMES``
    tables: tuple[str, ...] = ()
    #: ``solarsync poll``: the tables each poll refreshes after the first (None: not pollable;
    #: empty: every table each time)
    poll_resources: tuple[str, ...] | None = None
    #: Dagster's default schedule (cron, in ``[solarsync] dagster_timezone``); ``[sources.<name>]
    #: schedule`` overrides it
    schedule: str = "15 2 * * *"
    #: the views file under ``warehouse/views/`` (its analytics views); None: no views
    views: str | None = None
    #: the module of the source's report section (a ``section(page) -> Section``
    #: function); None: the report has no section for it (its freshness is shown all the same)
    report: str | None = None

    def factory(self) -> Callable[..., Any]:
        return getattr(importlib.import_module(self.module), self.name)

    def check(self) -> list[tuple[str, str]]:
        """The source's ``check()``: one cheap request per endpoint, nothing loaded."""
        return importlib.import_module(self.module).check()

    @property
    def resources(self) -> tuple[str, ...]:
        if self.tables:
            return self.tables
        return tuple(importlib.import_module(self.module).RESOURCE_NAMES)

    def followers(self) -> dict[str, tuple[str, ...]]:
        """The source's ``backfill_followers()``: tables a resource produces besides its own
        (SolarKnock: ``leads`` -> ``lead_attachments`` while attachments are enabled), which a
        backfill of that resource runs too. Empty for a source without the hook."""
        hook = getattr(importlib.import_module(self.module), "backfill_followers", None)
        if not callable(hook):
            return {}
        return {name: tuple(tables) for name, tables in hook().items()}

    def loaded_tables(self) -> tuple[str, ...]:
        """Every table a run of the source loads, as the source declares them: its resources,
        then the tables they produce (:meth:`followers`). The Dagster assets have one key each;
        ``tests/pipelines/test_dagster.py`` checks the list against real loads."""
        produced = (table for tables in self.followers().values() for table in tables)
        return tuple(dict.fromkeys([*self.resources, *produced]))

    @property
    def backfills(self) -> bool:
        """Whether the source has a history to re-read (its function takes ``backfill``); the
        snapshot sources (HEAT, SolarAssistant, Tesla) show only what is true now."""
        return "backfill" in inspect.signature(self.factory()).parameters

    @property
    def pollable(self) -> bool:
        return self.poll_resources is not None

    def is_configured(self) -> bool:
        custom = getattr(importlib.import_module(self.module), "is_configured", None)
        if callable(custom):
            return bool(custom())
        for key in self.required:
            try:
                value = dlt.secrets.get(f"sources.{self.name}.{key}")
            except Exception:
                value = None
            if value in (None, ""):
                return False
        return True


SOURCES: dict[str, SourceSpec] = {
    spec.name: spec
    for spec in (
        SourceSpec(
            name="solarknock",
            module="sources.solarknock",
            required=("api_key",),
            schedule="15 2 * * *",  # nightly, as the README's cron line
            views="solarknock.sql",
            report="pipelines.report.sections.solarknock",
        ),
        SourceSpec(
            name="heat",
            module="sources.heat",
            required=("base_url", "api_key"),
            schedule="0 * * * *",  # hourly snapshots keep the schedule history fine-grained
            views="heat.sql",
            report="pipelines.report.sections.heat",
        ),
        SourceSpec(
            name="solarassistant",
            module="sources.solarassistant",
            required=("api_token",),
            poll_resources=("metrics", "metric_polls"),
            schedule="*/15 * * * *",
            views="solarassistant.sql",
            report="pipelines.report.sections.solarassistant",
        ),
        SourceSpec(
            name="tesla",
            module="sources.tesla",
            required=("host", "password"),
            poll_resources=(),
            schedule="*/5 * * * *",
            views="tesla.sql",
            report="pipelines.report.sections.tesla",
        ),
    )
}


def get(name: str) -> SourceSpec:
    try:
        return SOURCES[name]
    except KeyError:
        raise KeyError(f"unknown source {name!r}; known: {', '.join(sorted(SOURCES))}") from None


def configured() -> list[SourceSpec]:
    return [spec for spec in SOURCES.values() if spec.is_configured()]
