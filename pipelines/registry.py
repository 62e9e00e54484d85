"""Which sources solarsync knows, how to build each, and whether it is configured.

The only place that names sources; pipelines hold no API knowledge beyond this table.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import dlt


@dataclass(frozen=True)
class SourceSpec:
    name: str
    module: str  # the package with the @dlt.source function of the same name
    #: the tables; empty: the package's own ``RESOURCE_NAMES``
    tables: tuple[str, ...]
    #: settings that must resolve (config or secrets) for the source to count as configured
    #: (a module-level ``is_configured()`` in the source package overrides this)
    required: tuple[str, ...]
    #: ``solarsync poll``: the tables each poll refreshes after the first (None: not pollable;
    #: empty: every table each time)
    poll_resources: tuple[str, ...] | None = None

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
    "solarknock": SourceSpec(
        name="solarknock",
        module="sources.solarknock",
        tables=(),  # sources.solarknock.RESOURCE_NAMES (org and the list endpoints)
        required=("api_key",),
    ),
    "heat": SourceSpec(
        name="heat",
        module="sources.heat",
        tables=(),  # sources.heat.RESOURCE_NAMES
        required=("base_url", "api_key"),
    ),
    "solarassistant": SourceSpec(
        name="solarassistant",
        module="sources.solarassistant",
        tables=(),  # sources.solarassistant.RESOURCE_NAMES
        required=("api_token",),
        poll_resources=("metrics", "metric_polls"),
    ),
    "tesla": SourceSpec(
        name="tesla",
        module="sources.tesla",
        tables=(),  # sources.tesla.RESOURCE_NAMES
        required=("host", "password"),
        poll_resources=(),
    ),
}


def get(name: str) -> SourceSpec:
    try:
        return SOURCES[name]
    except KeyError:
        raise KeyError(f"unknown source {name!r}; known: {', '.join(sorted(SOURCES))}") from None


def configured() -> list[SourceSpec]:
    return [spec for spec in SOURCES.values() if spec.is_configured()]
