"""``[solarsync.lake]``: what solarsync adds to dlt's filesystem destination (whose
``[destination.filesystem]`` has the bucket and its credentials).

| key | env | default | what |
|---|---|---|---|
| ``views_file`` | ``SOLARSYNC__LAKE__VIEWS_FILE`` | ``<bucket>/_views.duckdb`` (local); ``$DLT_DATA_DIR/solarsync/lake_views/<bucket>.sql`` (remote) | the DuckDB file of views (local lake), the local copy of the views script (remote lake) |
| ``optimize_every`` | ``SOLARSYNC__LAKE__OPTIMIZE_EVERY`` | 50 | compact and vacuum a source's tables after this many loads (0: never) |
| ``vacuum_retention_hours`` | ``SOLARSYNC__LAKE__VACUUM_RETENTION_HOURS`` | 168 | files no longer in a table's current version stay this long |
| ``job_memory`` | ``SOLARSYNC__LAKE__JOB_MEMORY`` | ``256MB`` | DuckDB's memory while a load job deduplicates or diffs (it spills beyond) |
| ``load_lock_timeout`` | ``SOLARSYNC__LAKE__LOAD_LOCK_TIMEOUT`` | ``30m`` | how long a load waits for another load of the same dataset on this host |
"""

from __future__ import annotations

from typing import Optional

from dlt.common.configuration import configspec
from dlt.common.configuration.specs import BaseConfiguration

from pipelines import settings as solarsync_settings

DEFAULT_OPTIMIZE_EVERY = 50
DEFAULT_RETENTION_HOURS = 168
DEFAULT_JOB_MEMORY = "256MB"
DEFAULT_LOAD_LOCK_TIMEOUT = "30m"


@configspec
class LakeSettings(BaseConfiguration):
    """The table in the module docstring."""

    views_file: Optional[str] = None  # noqa: UP045
    optimize_every: int = DEFAULT_OPTIMIZE_EVERY
    vacuum_retention_hours: int = DEFAULT_RETENTION_HOURS
    job_memory: str = DEFAULT_JOB_MEMORY
    load_lock_timeout: str = DEFAULT_LOAD_LOCK_TIMEOUT

    def load_lock_timeout_s(self) -> float:
        return solarsync_settings.duration(
            self.load_lock_timeout, "[solarsync.lake] load_lock_timeout", where="lake"
        )


def settings() -> LakeSettings:
    """``[solarsync.lake]`` as configured."""
    return solarsync_settings.resolve(LakeSettings(), "solarsync", "lake")


__all__ = ["LakeSettings", "settings"]
