"""``[destination.duckdb]``: dlt's DuckDB destination settings plus what solarsync adds.

| key | env | default | what |
|---|---|---|---|
| ``credentials`` | ``DESTINATION__DUCKDB__CREDENTIALS`` | ``warehouse/solarsync.duckdb`` | the file BI tools open (``--warehouse`` overrides) |
| ``memory_limit`` | ``DESTINATION__DUCKDB__MEMORY_LIMIT`` | ``64MB`` | DuckDB spills to disk beyond this while loading |
| ``lock_timeout`` | ``DESTINATION__DUCKDB__LOCK_TIMEOUT`` | ``30m`` | how long a run waits for another using the warehouse |
| ``publish_every`` | ``DESTINATION__DUCKDB__PUBLISH_EVERY`` | ``5m`` | ``poll``: a copy for BI at most this often |
| ``compact`` | ``DESTINATION__DUCKDB__COMPACT`` | ``auto`` | compact the working file when publishing: ``auto``, ``always``, ``never`` |
| ``storage_version`` | ``DESTINATION__DUCKDB__STORAGE_VERSION`` | ``v1.4.0`` | DuckDB storage version of the files BI tools open |
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Optional

from dlt.common.configuration import configspec
from dlt.common.configuration.specs import BaseConfiguration

from pipelines import settings as solarsync_settings
from pipelines.destinations.duckdb.storage import DEFAULT_STORAGE_VERSION, normalize
from sources.common import ConfigurationError

DEFAULT_WAREHOUSE = Path("warehouse") / "solarsync.duckdb"
COMPACT_MODES = ("auto", "always", "never")
WHERE = "destination duckdb"


@configspec
class DuckDBSettings(BaseConfiguration):
    """The table in the module docstring."""

    #: dlt's name for the file; a path or ``duckdb:///path``
    credentials: Optional[Any] = None  # noqa: UP045
    memory_limit: str = "64MB"
    lock_timeout: str = "30m"
    publish_every: str = "5m"
    compact: str = "auto"
    storage_version: str = DEFAULT_STORAGE_VERSION

    @property
    def version(self) -> str:
        """``storage_version`` as DuckDB names it (``1.4`` -> ``v1.4.0``); a value DuckDB does
        not know is a :class:`ConfigurationError` (read when a run needs it)."""
        return normalize(self.storage_version)

    @property
    def compact_mode(self) -> str:
        if self.compact not in COMPACT_MODES:
            raise ConfigurationError(
                f"[destination.duckdb] compact = {self.compact!r}",
                source=WHERE,
                hint=f"one of {', '.join(COMPACT_MODES)} (DESTINATION__DUCKDB__COMPACT)",
            )
        return self.compact

    @property
    def lock_timeout_s(self) -> float:
        return solarsync_settings.duration(
            self.lock_timeout, "[destination.duckdb] lock_timeout", where=WHERE
        )

    @property
    def publish_every_s(self) -> float:
        return solarsync_settings.duration(
            self.publish_every, "[destination.duckdb] publish_every", where=WHERE
        )

    def path(self) -> Path:
        """The configured file (``credentials``), else the default."""
        value = self.credentials
        if isinstance(value, str | os.PathLike) and str(value).strip():
            text = str(value).strip()
            for prefix in ("duckdb:///", "duckdb://"):
                text = text.removeprefix(prefix)
            return Path(text)
        database = getattr(value, "database", None)  # dlt's credentials object
        if isinstance(database, str) and database and database != ":memory:":
            return Path(database)
        return DEFAULT_WAREHOUSE


def settings() -> DuckDBSettings:
    """``[destination.duckdb]`` as configured."""
    return solarsync_settings.resolve(DuckDBSettings(), "destination", "duckdb")


def duckdb_path(explicit: str | os.PathLike[str] | None = None) -> Path:
    """``--warehouse`` > ``DESTINATION__DUCKDB__CREDENTIALS`` / .dlt config > the default."""
    if explicit:
        return Path(explicit)
    return settings().path()


__all__ = ["COMPACT_MODES", "DEFAULT_WAREHOUSE", "DuckDBSettings", "duckdb_path", "settings"]
