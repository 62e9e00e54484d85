"""solarsync on Dagster: one multi-asset per source, a job and a schedule each.

Drop-in file for a Dagster code location (``pip install -e '.[dagster]'``)::

    # definitions.py
    from pipelines.dagster_defs import solarsync_definitions

    defs = solarsync_definitions()            # every configured source, shared destination

Each asset runs :func:`pipelines.runner.run_source`: the same runner as ``solarsync run``, so
pending packages of a killed run are completed first, analytics views are published, and run
history is the same. What Dagster adds: the schedule, retries with back-off, one asset key per
table (``<source>/<table>``) with row counts as metadata, and the run in its UI.

- **Any worker**: dlt restores a pipeline's state (checkpoints) from the destination when the
  worker's local pipeline directory is empty, so give every worker the same shared destination
  (``SOLARSYNC__DESTINATION=postgres`` or ``filesystem`` with an ``s3://`` bucket), never the
  local DuckDB file. A retry on another worker re-extracts what the killed attempt had not
  loaded; loads are merges, so nothing is duplicated.
- **Retries**: 5xx, timeouts and 429 storms raise a retryable failure (3 retries, exponential
  back-off from 60 s, jitter); a rejected credential, a lapsed subscription or a configuration
  error fails at once without retries (no retry storm against an API that said no).
- **Secrets** come from the worker's environment (``SOURCES__<SOURCE>__<KEY>``,
  ``DESTINATION__POSTGRES__CREDENTIALS``, ...), which is how Dagster deployments inject their
  secret store; they are never run config, never rendered, and every log line is scrubbed.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence
from typing import Any

import dagster as dg

from pipelines import history, registry
from pipelines.destinations import resolve
from pipelines.runner import SourceResult, run_source
from sources.common import ConfigurationError, install_log_redaction
from sources.common.errors import AuthenticationError
from sources.common.redact import RedactingFilter

#: when each source runs (cron, the worker's time zone); ``[sources.<name>] schedule`` overrides
DEFAULT_SCHEDULES: Mapping[str, str] = {
    "solarknock": "15 2 * * *",  # nightly, as the README's cron line
    "heat": "0 * * * *",  # hourly snapshots keep the schedule history fine-grained
    "solarassistant": "*/15 * * * *",
    "tesla": "*/5 * * * *",
}
#: exit codes of errors that another attempt cannot fix
NOT_RETRYABLE = {AuthenticationError.exit_code, ConfigurationError.exit_code}
RETRY_POLICY = dg.RetryPolicy(
    max_retries=3, delay=60, backoff=dg.Backoff.EXPONENTIAL, jitter=dg.Jitter.PLUS_MINUS
)

_redaction = RedactingFilter()


def _scrub_logs() -> None:
    """Secrets never reach Dagster's captured logs, whatever handler Dagster installed."""
    install_log_redaction()
    for name in ("solarsync", "dlt"):
        logger = logging.getLogger(name)
        if _redaction not in logger.filters:
            logger.addFilter(_redaction)
        install_log_redaction(*logger.handlers)


def _project_settings() -> None:
    """A Dagster worker starts in its own directory: read solarsync's ``.dlt/config.toml``
    (unless ``DLT_PROJECT_DIR`` says otherwise), as ``solarsync`` run from the project does."""
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    if (root / ".dlt" / "config.toml").exists():
        os.environ.setdefault("DLT_PROJECT_DIR", str(root))


def _schedule(source: str) -> str:
    import dlt

    try:
        configured = dlt.config.get(f"sources.{source}.schedule")
    except Exception:
        configured = None
    return str(configured or DEFAULT_SCHEDULES.get(source, "15 2 * * *"))


def _materializations(spec: registry.SourceSpec, result: SourceResult):
    for table in spec.resources:
        change = result.changes.get(table, {})
        metadata: dict[str, Any] = {"rows_loaded": result.rows.get(table, 0)}
        metadata.update({k: v for k, v in change.items() if k in ("new", "updated", "deleted")})
        yield dg.MaterializeResult(asset_key=[spec.name, table], metadata=metadata)


def source_assets(
    name: str, destination: str | None = None, retry_policy: dg.RetryPolicy = RETRY_POLICY
) -> dg.AssetsDefinition:
    """The multi-asset that syncs source ``name`` (one asset key per table)."""
    spec = registry.get(name)

    @dg.multi_asset(
        name=f"solarsync_{name}",
        specs=[
            dg.AssetSpec(
                key=[name, table],
                group_name=name,
                kinds={"dlt"},
                description=f"{name}.{table}, synced by solarsync",
            )
            for table in spec.resources
        ],
        retry_policy=retry_policy,
        op_tags={"solarsync/source": name},
    )
    def _sync(context):  # no annotation: dagster reads it at runtime (postponed here)
        _scrub_logs()
        _project_settings()
        warehouse = resolve(destination)
        context.log.info("solarsync: %s -> %s", name, warehouse.describe())
        result = run_source(spec, warehouse)
        history.load_into(warehouse)  # the run's row, journaled by run_source, into analytics
        for warning in result.warnings:
            context.log.warning("%s: %s", name, warning)
        if not result.ok:
            raise dg.Failure(
                description=result.error or f"{name} failed",
                metadata={"exit_code": result.exit_code, **result.http},
                allow_retries=result.exit_code not in NOT_RETRYABLE,
            )
        yield from _materializations(spec, result)

    return _sync


def solarsync_definitions(
    sources: Sequence[str] | None = None,
    destination: str | None = None,
    schedules: Mapping[str, str] | None = None,
) -> dg.Definitions:
    """Assets, a job and a schedule per source (default: every configured source; the
    destination: ``SOLARSYNC__DESTINATION`` / ``--destination``'s configuration)."""
    _project_settings()
    names = list(sources) if sources else [s.name for s in registry.configured()]
    assets, jobs, scheduled = [], [], []
    for name in names:
        asset = source_assets(name, destination)
        job = dg.define_asset_job(
            f"solarsync_{name}_job", selection=dg.AssetSelection.assets(asset)
        )
        cron = (schedules or {}).get(name) or _schedule(name)
        assets.append(asset)
        jobs.append(job)
        scheduled.append(
            dg.ScheduleDefinition(
                name=f"solarsync_{name}_schedule",
                job=job,
                cron_schedule=cron,
                execution_timezone=os.environ.get("TZ", "UTC"),
            )
        )
    return dg.Definitions(assets=assets, jobs=jobs, schedules=scheduled)
