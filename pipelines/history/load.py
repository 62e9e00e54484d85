"""Loading the journal into a destination through dlt: pipeline ``solarsync_history``,
dataset ``solarsync``, tables ``sync_runs`` (key ``run_id``) and ``sync_run_tables`` (key
``run_id, table_name``), merged with the ``upsert`` strategy (DuckDB, Postgres and the Delta
lake all support it), through the destination seam (``Warehouse``: its dlt destination,
``adapt``, ``lock``, ``publish`` of the views). How far each journal was loaded into each
destination location is kept in the pipeline's dlt state, committed with each load package."""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import dlt
import orjson

from pipelines.destinations import UpsertRows, Warehouse, as_warehouse
from pipelines.history.jsonl import journal_id, journal_path, read
from sources.common import redact

logger = logging.getLogger("solarsync")

PIPELINE_NAME = "solarsync_history"
DATASET_NAME = "solarsync"
#: the run history's analytics views (``analytics.sync_runs``, ``analytics.sync_run_tables``)
VIEWS = "solarsync.sql"
#: how long a load waits for another process loading the history before leaving the rows to
#: the next load (they are in the journal already)
LOAD_LOCK_WAIT_S = 10.0


@contextlib.contextmanager
def _load_lock(path: Path, wait_s: float) -> Iterator[bool]:
    """One process at a time loads the history (it shares one dlt working dir)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+") as handle:
        deadline = time.monotonic() + wait_s
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    yield False
                    return
                time.sleep(0.1)
        try:
            yield True
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


RUN_COLUMNS: dict[str, str] = {
    "run_id": "text",
    "source": "text",
    "command": "text",
    "started_at": "timestamp",
    "finished_at": "timestamp",
    "duration_s": "double",
    "status": "text",
    "error_class": "text",
    "error_message": "text",
    "requests": "bigint",
    "rate_limited": "bigint",
    "retries": "bigint",
    "warning_count": "bigint",
    "warnings": "text",
    "rows_loaded": "bigint",
    "polls": "bigint",
    "failed_polls": "bigint",
    "destination": "text",
}
TABLE_COLUMNS: dict[str, str] = {
    "run_id": "text",
    "table_name": "text",
    "rows": "bigint",
    "new": "bigint",
    "updated": "bigint",
    "deleted": "bigint",
}
_KEYS = ("run_id", "source", "command", "table_name")


def _columns(types: dict[str, str]) -> dict[str, dict[str, Any]]:
    return {
        name: {"data_type": kind, "nullable": name not in _KEYS} for name, kind in types.items()
    }


def _flat(row: dict[str, Any]) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """A journal row as a ``sync_runs`` row (BI-friendly: no lists) and its table rows."""
    tables = [dict(t, run_id=row["run_id"]) for t in row.get("tables") or ()]
    warnings = row.get("warnings") or []
    run = {name: row.get(name) for name in RUN_COLUMNS}
    run["warning_count"] = len(warnings)
    run["warnings"] = "\n".join(warnings) if warnings else None
    run["rows_loaded"] = sum(t.get("rows") or 0 for t in tables)
    return run, tables


@dlt.source(name=DATASET_NAME, max_table_nesting=0)
def history_source(journal: str, location: str, start: int) -> Any:
    """The journal rows after byte ``start`` (what ``location`` has not loaded yet) as
    ``sync_runs`` and ``sync_run_tables``; the new offset is committed with the package."""
    merge = {"disposition": "merge", "strategy": "upsert"}
    rows, end = read(Path(journal), start)
    unique = {row["run_id"]: row for row in rows}  # upsert wants one row per key in a load
    flat = [_flat(row) for row in unique.values()]

    @dlt.resource(
        name="sync_runs",
        primary_key="run_id",
        write_disposition=merge,
        columns=_columns(RUN_COLUMNS),
    )
    def sync_runs() -> Iterator[list[dict[str, Any]]]:
        yield [run for run, _ in flat]
        dlt.current.source_state().setdefault("journal_offsets", {})[location] = end

    @dlt.resource(
        name="sync_run_tables",
        primary_key=("run_id", "table_name"),
        write_disposition=merge,
        columns=_columns(TABLE_COLUMNS),
    )
    def sync_run_tables() -> Iterator[list[dict[str, Any]]]:
        yield [table for _, tables in flat for table in tables]

    return sync_runs, sync_run_tables


def _location(pipeline: dlt.Pipeline) -> str:
    """Where the destination keeps its data: offsets are per location, so a second warehouse
    (``--warehouse``) gets the whole journal."""
    try:
        return str(pipeline.destination_client().config.data_location())
    except Exception:
        return str(pipeline.destination.destination_name if pipeline.destination else "default")


def load(warehouse: Warehouse | str | os.PathLike[str], *, journal: Path | None = None) -> int:
    """Load the journal rows ``warehouse`` has not seen, and a package an earlier load left
    pending, then publish ``analytics.sync_runs``; returns how many runs were loaded (at least
    1 when only a pending package was). Raises when the destination cannot be loaded."""
    warehouse = as_warehouse(warehouse)
    journal = journal or journal_path()
    with _load_lock(journal.with_suffix(".load.lock"), LOAD_LOCK_WAIT_S) as locked:
        if not locked:
            logger.info("run history: another process is loading it; this run's row waits")
            return 0
        warehouse.prepare()
        direct = _direct(warehouse, journal)
        if direct is not None:
            return direct
        pipeline = dlt.pipeline(
            pipeline_name=PIPELINE_NAME,
            destination=warehouse.dlt_destination(),
            dataset_name=DATASET_NAME,
        )
        # offsets are per journal (each host has its own; dlt may restore the state of
        # another host from the destination) and per destination location
        key = f"{journal_id(journal)}@{_location(pipeline)}"
        offsets = (pipeline.state.get("sources", {}).get(DATASET_NAME) or {}).get(
            "journal_offsets"
        ) or {}
        size = journal.stat().st_size if journal.exists() else 0
        pending = pipeline.has_pending_data
        if offsets.get(key) == size and not pending:
            return 0
        with warehouse.lock(PIPELINE_NAME):
            source = warehouse.adapt(history_source(str(journal), key, int(offsets.get(key) or 0)))
            loaded = max(_run(pipeline, source, warehouse), int(pending))
            if loaded:
                warehouse.publish(pipeline, DATASET_NAME, views=VIEWS)
        _save_offset(journal, _direct_key(warehouse, journal), size)
        return loaded


def _offsets_path(journal: Path) -> Path:
    return journal.with_name(journal.name + ".offsets.json")


def _direct_key(warehouse: Warehouse, journal: Path) -> str:
    return f"{journal_id(journal)}@{warehouse.describe()}"


def _save_offset(journal: Path, key: str, size: int) -> None:
    """How far the journal is in ``key``'s warehouse, for :func:`_direct` (a file next to the
    journal: the direct path has no dlt state; a lost update only re-merges rows)."""
    path = _offsets_path(journal)
    try:
        offsets = orjson.loads(path.read_bytes()) if path.exists() else {}
    except ValueError:
        offsets = {}
    offsets[key] = size
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(orjson.dumps(offsets))
    os.replace(tmp, path)


def _direct(warehouse: Warehouse, journal: Path) -> int | None:
    """The journal rows merged straight into the history tables (:meth:`Warehouse.upsert_rows`)
    when the destination can and the tables are there, then published: a run's row costs a
    transaction, not a dlt pipeline run. None: load through dlt (no tables yet, a destination
    without the hook, or a package an earlier dlt load left pending, which must land first)."""
    key = _direct_key(warehouse, journal)
    path = _offsets_path(journal)
    try:
        start = int(orjson.loads(path.read_bytes()).get(key) or 0) if path.exists() else 0
    except ValueError:
        start = 0
    size = journal.stat().st_size if journal.exists() else 0
    if start > size:  # the journal was replaced: everything again (merges are idempotent)
        start = 0
    if dlt.pipeline(pipeline_name=PIPELINE_NAME, dataset_name=DATASET_NAME).has_pending_data:
        return None
    if start == size:
        return 0
    rows, end = read(journal, start)
    flat = [_flat(row) for row in {row["run_id"]: row for row in rows}.values()]
    tables = [
        UpsertRows("sync_runs", ("run_id",), [run for run, _ in flat]),
        UpsertRows("sync_run_tables", ("run_id", "table_name"), [t for _, ts in flat for t in ts]),
    ]
    with warehouse.lock(PIPELINE_NAME):
        try:
            merged = warehouse.upsert_rows(DATASET_NAME, tables)
        except Exception as exc:  # e.g. a value the table's type refuses: dlt's load decides
            logger.debug("run history: merged through dlt (%s)", redact(str(exc)))
            return None
        if not merged:
            return None
        warehouse.publish(None, DATASET_NAME, views=VIEWS)
    _save_offset(journal, key, end)
    return len(flat)


def _run(pipeline: dlt.Pipeline, source: Any, warehouse: Warehouse) -> int:
    """``pipeline.run(source)`` step by step: a package an earlier load left first, the
    destination's state only where another host may have written it (a shared warehouse, or
    this host's pipeline dir is new), then extract, normalize, load. Returns the runs loaded."""
    if pipeline.has_pending_data:
        if pipeline.list_extracted_load_packages():
            pipeline.normalize()
        pipeline.load().raise_on_failed_jobs()
    if pipeline.config.restore_from_destination and (warehouse.shared or pipeline.first_run):
        pipeline.sync_destination()
    pipeline.extract(source)
    normalized = pipeline.normalize()
    pipeline.load().raise_on_failed_jobs()
    return int(normalized.row_counts.get("sync_runs", 0)) if normalized else 0


def load_into(warehouse: Warehouse | str | os.PathLike[str]) -> int:
    """The hook after a command's runs: :func:`load`, never raising (a row not loaded now
    stays in the journal and goes with the next load). Returns how many runs were loaded."""
    warehouse = as_warehouse(warehouse)
    try:
        return load(warehouse)
    except Exception as exc:
        logger.warning(
            "run history: not loaded into %s now (%s); it stays in %s and is loaded after the "
            "next run",
            warehouse.describe(),
            redact(_reason(exc)),
            journal_path(),
        )
        logger.debug("run history load failure", exc_info=True)
        return 0


def _reason(exc: BaseException) -> str:
    """The first line of the error under dlt's step wrapper."""
    inner = getattr(exc, "exception", None) or exc
    lines = [line.strip() for line in str(inner).splitlines() if line.strip()]
    return lines[0] if lines else type(inner).__name__
