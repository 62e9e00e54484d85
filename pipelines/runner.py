"""Pipeline assembly: one dlt pipeline per source (``solarsync_<source>``, dataset ``<source>``),
one DuckDB file for all of them, a lock per pipeline, and a result per source run.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import re
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import dlt
from dlt.common.pipeline import get_dlt_pipelines_dir
from dlt.pipeline.exceptions import PipelineStepFailed

from pipelines.destinations import DEFAULT_WAREHOUSE as DEFAULT_WAREHOUSE
from pipelines.destinations import Warehouse, as_warehouse, duckdb_path
from pipelines.registry import SourceSpec
from sources.common import (
    LockedError,
    SolarsyncError,
    install_log_redaction,
    redact,
    reset_stats,
    solarsync_error_in,
    stats_for,
)
from sources.common.blobstore import default_root

logger = logging.getLogger("solarsync")

LOADER_FILE_FORMAT = "parquet"  # dlt's INSERT path needs GBs of RAM for nested rows
ADD_LOAD_ID_ENV = "NORMALIZE__PARQUET_NORMALIZER__ADD_DLT_LOAD_ID"


def warehouse_path(explicit: str | os.PathLike[str] | None = None) -> Path:
    """The DuckDB warehouse file (kept for callers that only know DuckDB)."""
    return duckdb_path(explicit)


def pipeline_name(source: str) -> str:
    return f"solarsync_{source}"


def make_pipeline(
    source: str, warehouse: Warehouse | str | os.PathLike[str], progress: Any = None
) -> dlt.Pipeline:
    """The source's dlt pipeline into ``warehouse`` (a :class:`Warehouse` or a DuckDB path)."""
    warehouse = as_warehouse(warehouse)
    warehouse.prepare()
    # every row carries _dlt_load_id (README; the SolarKnock views select around it), also the
    # rows a source yields as Arrow tables, for which dlt adds it only when told: set here, not
    # only in .dlt/config.toml, which a run from another directory (cron without `cd`, a
    # Dagster code location) does not read
    os.environ.setdefault(ADD_LOAD_ID_ENV, "true")
    pipeline = dlt.pipeline(
        pipeline_name=pipeline_name(source),
        destination=warehouse.dlt_destination(),
        dataset_name=source,
        progress=progress,
    )
    # dlt logs through its own handler: scrub secrets there too
    install_log_redaction(*logging.getLogger("dlt").handlers)
    return pipeline


@contextlib.contextmanager
def pipeline_lock(source: str) -> Iterator[None]:
    """One run per pipeline at a time: a cron run never overlaps a backfill or another run."""
    lock_dir = Path(get_dlt_pipelines_dir())
    lock_dir.mkdir(parents=True, exist_ok=True)
    path = lock_dir / f"{pipeline_name(source)}.lock"
    with open(path, "a+") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise LockedError(
                "another solarsync process is running this source",
                source=source,
                hint=f"wait for it to finish (lock file {path})",
            ) from None
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


@dataclass
class SourceResult:
    source: str
    ok: bool = False
    error: str | None = None
    error_class: str | None = None  # the exception's class name, for the run history
    exit_code: int = 0
    duration_s: float = 0.0
    rows: dict[str, int] = field(default_factory=dict)
    changes: dict[str, dict[str, int]] = field(default_factory=dict)
    http: dict[str, int] = field(default_factory=dict)
    resumed_packages: int = 0
    load_ids: list[str] = field(default_factory=list)
    views: list[str] = field(default_factory=list)
    #: what an analyst should know about the load (e.g. a field that changed type)
    warnings: list[str] = field(default_factory=list)


def run_source(
    spec: SourceSpec,
    warehouse: Warehouse | str | os.PathLike[str],
    *,
    resources: Sequence[str] | None = None,
    source_kwargs: dict[str, Any] | None = None,
    progress: Any = None,
) -> SourceResult:
    """Sync one source. Never raises for source failures: the result says what happened.
    The run is journaled in the run history (``pipelines.history``), failed or not."""
    warehouse = as_warehouse(warehouse)
    result = SourceResult(source=spec.name)
    started, started_at = time.monotonic(), datetime.now(UTC)
    reset_stats(spec.name)
    try:
        with (
            pipeline_lock(spec.name),
            warehouse.lock(spec.name),
            default_root(warehouse.blob_root()),
        ):
            pipeline = make_pipeline(spec.name, warehouse, progress)
            with warehouse.writing(spec.name):
                result.resumed_packages = _finish_pending(pipeline)
            source = warehouse.adapt(spec.factory()(**(source_kwargs or {})))
            with warehouse.writing(spec.name):
                result.resumed_packages += _finish_poll_journal(
                    pipeline, spec, source, warehouse.loader_file_format
                )
            if resources:
                source = source.with_resources(*resources)
            # pipeline.run() step by step, so that only the load and the publish after it
            # hold the warehouse (extracting, often minutes of HTTP, does not)
            if pipeline.config.restore_from_destination and not pipeline.dev_mode:
                pipeline.sync_destination()  # as run() does: the warehouse's state if newer
            pipeline.extract(source, loader_file_format=warehouse.loader_file_format)
            normalize_info = pipeline.normalize()
            with warehouse.writing(spec.name):
                info = pipeline.load()
                info.raise_on_failed_jobs()
                result.views = warehouse.publish(pipeline, spec.name)
            result.load_ids = list(info.loads_ids)
            if normalize_info is not None:
                result.rows = {
                    table: count
                    for table, count in normalize_info.row_counts.items()
                    if not table.startswith("_dlt")
                }
            result.changes = _last_sync_changes(pipeline, resources or spec.resources)
            for table, change in result.changes.items():
                # a source that counts its own rows (HEAT: without its scd2 scope markers)
                if "rows" in change:
                    result.rows[table] = change.pop("rows")
            result.warnings = _last_sync_warnings(pipeline, resources or spec.resources)
            result.warnings += warehouse.publish_warnings(spec.name)
            errors = _last_sync_errors(pipeline, resources or spec.resources)
            if errors:  # loaded, and still failed (e.g. no SolarAssistant site could be read)
                raise SolarsyncError("; ".join(errors))
            result.ok = True
    except Exception as exc:  # one failing source must not stop the others
        known = solarsync_error_in(exc)
        result.error = redact(str(known) if known else describe_failure(spec, exc))
        result.exit_code = known.exit_code if known else 1
        result.error_class = error_class(exc)
        logger.error("%s failed: %s", spec.name, result.error)
        logger.debug("%s failure details", spec.name, exc_info=True)
    result.duration_s = time.monotonic() - started
    result.http = stats_for(spec.name).as_dict()
    from pipelines import history

    command = "backfill" if (source_kwargs or {}).get("backfill") else "run"
    history.record_run(result, command=command, started_at=started_at, warehouse=warehouse)
    return result


def _finish_pending(pipeline: dlt.Pipeline) -> int:
    """Load what an interrupted run left extracted or normalized, before extracting anew."""
    if not pipeline.has_pending_data:
        return 0
    pending = len(pipeline.list_extracted_load_packages()) + len(
        pipeline.list_normalized_load_packages()
    )
    logger.warning(
        "%s: completing %d load package(s) left by an interrupted run",
        pipeline.pipeline_name,
        pending,
    )
    if pipeline.list_extracted_load_packages():
        pipeline.normalize()
    if pipeline.list_normalized_load_packages():
        pipeline.load().raise_on_failed_jobs()
    return pending


def _finish_poll_journal(
    pipeline: dlt.Pipeline,
    spec: SourceSpec,
    source: Any,
    loader_file_format: str = LOADER_FILE_FORMAT,
) -> int:
    """Load the polls a killed ``solarsync poll`` journaled but did not extract."""
    if not spec.pollable:
        return 0
    from pipelines.journal import PollJournal, resource_hints

    polls = PollJournal(pipeline, spec.name).extract(
        resource_hints(source), loader_file_format=loader_file_format
    )
    if not polls:
        return 0
    logger.warning("%s: loading %d poll(s) left by an interrupted poll", spec.name, polls)
    return _finish_pending(pipeline)


def _last_sync_changes(
    pipeline: dlt.Pipeline, resources: Sequence[str]
) -> dict[str, dict[str, int]]:
    state = pipeline.state.get("sources", {})
    out: dict[str, dict[str, int]] = {}
    for source_state in state.values():
        for name, res_state in (source_state.get("resources") or {}).items():
            last = res_state.get("last_sync") if isinstance(res_state, dict) else None
            if name in resources and isinstance(last, dict):
                out[name] = {k: v for k, v in last.items() if isinstance(v, int)}
    return out


def _last_sync_warnings(pipeline: dlt.Pipeline, resources: Sequence[str]) -> list[str]:
    """``last_sync.type_changes`` (fields whose type changed in this load) and
    ``last_sync.warnings`` (e.g. a site whose detail could not be read) of each resource."""
    out: list[str] = []
    for source_state in pipeline.state.get("sources", {}).values():
        for name, res_state in (source_state.get("resources") or {}).items():
            last = res_state.get("last_sync") if isinstance(res_state, dict) else None
            if name in resources and isinstance(last, dict):
                out.extend(f"type change: {c}" for c in last.get("type_changes") or ())
                out.extend(str(w) for w in last.get("warnings") or ())
    return out


def _last_sync_errors(
    pipeline: dlt.Pipeline | Mapping[str, Any], resources: Sequence[str]
) -> list[str]:
    """``last_sync.errors`` of each resource: why this sync failed although its rows were
    loaded (e.g. a poll in which no site could be read). ``pipeline``: a pipeline, or a
    pipeline state (the scratch state of a ``poll`` that ran outside dlt)."""
    state = pipeline if isinstance(pipeline, Mapping) else pipeline.state
    out: list[str] = []
    for source_state in (state.get("sources") or {}).values():
        for name, res_state in (source_state.get("resources") or {}).items():
            last = res_state.get("last_sync") if isinstance(res_state, dict) else None
            if name in resources and isinstance(last, dict):
                out.extend(str(e) for e in last.get("errors") or ())
    return out


def error_class(exc: BaseException) -> str:
    """The class name of the error that ended a run (inside dlt's step wrapper)."""
    known = solarsync_error_in(exc)
    if known is not None:
        return type(known).__name__
    if isinstance(exc, PipelineStepFailed) and exc.exception is not None:
        exc = exc.exception
    return type(exc).__name__


def describe_failure(spec: SourceSpec, exc: BaseException) -> str:
    from dlt.common.configuration.exceptions import ConfigFieldMissingException

    if isinstance(exc, PipelineStepFailed) and isinstance(
        exc.exception, ConfigFieldMissingException
    ):
        exc = exc.exception
    text = str(exc)
    if "Could not set lock on file" in text:
        holder = re.search(r"Conflicting lock is held in (.+?) \(PID (\d+)\)", text)
        who = f" ({holder.group(1)}, PID {holder.group(2)})" if holder else ""
        file = re.search(r'Could not set lock on file "(.+?)"', text)
        return (
            f"{spec.name}: the warehouse's working file {file.group(1) if file else ''} is "
            f"locked by another process{who}: a program opened it directly (BI tools open the "
            "published file, never the one in .solarsync/). Close it, then rerun: nothing was "
            "lost, a pending load is completed first"
        )
    if isinstance(exc, ConfigFieldMissingException):
        fields = ", ".join(exc.fields)
        upper = spec.name.upper()
        envs = ", ".join(f"SOURCES__{upper}__{f.upper()}" for f in exc.fields)
        return (
            f"{spec.name}: missing setting(s) {fields}. Add them under [sources.{spec.name}] in "
            f".dlt/secrets.toml (see .dlt/secrets.toml.example) or set {envs}"
        )
    return f"{spec.name}: {type(exc).__name__}: {exc}"
