"""The one load step: ``run``, ``backfill``, each ``poll`` batch and the Dagster assets load a
source through :class:`Sync`, and :func:`run_source` is a whole run of it.

One dlt pipeline per account of a source (``solarsync_<source>`` for the default account,
``solarsync_<source>__<account>`` for the others: docs/accounts.md), all loading the dataset
``<source>``. A :class:`Sync`:

1. takes the local lock of the pipeline (one process per account on a host), the destination's
   lock (:meth:`~pipelines.destinations.Warehouse.lock`: e.g. Postgres' advisory lock across
   hosts) and the destination's blob root (where files a source copies go), and runs in the
   account's scope (``sources.common.accounts``: the rows' account, the request counters);
2. completes what an interrupted run left (extracted or normalized packages, and polls a killed
   ``poll`` journaled) before extracting anew, and gives the rows of a single-account warehouse
   their account (:mod:`pipelines.upgrade`);
3. extracts and normalizes WITHOUT holding the warehouse (minutes of HTTP never block another
   account's load or a publish), then loads and publishes holding it
   (:meth:`~pipelines.destinations.Warehouse.writing`: loads of one dataset take turns), so
   readers get whole packages;
4. reads what the resources recorded about the sync (:mod:`pipelines.sync_state`).

:func:`run_accounts` runs several accounts of a source at once (``[solarsync]
account_concurrency`` threads); one account's failure never stops or rolls back another's.
Errors become a :class:`~pipelines.results.Failure` once, in :mod:`pipelines.results`.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import logging
import os
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import dlt
from dlt.common.pipeline import get_dlt_pipelines_dir

from pipelines import history
from pipelines.accounts import Account, source_kwargs
from pipelines.destinations import Warehouse, as_warehouse
from pipelines.journal import PollJournal, resource_hints
from pipelines.registry import SourceSpec
from pipelines.results import SourceResult
from pipelines.settings import solarsync
from pipelines.sync_state import LastSync, last_sync
from pipelines.upgrade import upgrade
from pipelines.views import views_sql
from sources.common import (
    LockedError,
    SolarsyncError,
    install_log_redaction,
    reset_stats,
    stats_for,
)
from sources.common import accounts as account_scope
from sources.common.accounts import DEFAULT
from sources.common.blobstore import default_root

logger = logging.getLogger("solarsync")

ADD_LOAD_ID_ENV = "NORMALIZE__PARQUET_NORMALIZER__ADD_DLT_LOAD_ID"


def pipeline_name(source: str, account: str = DEFAULT) -> str:
    return Account(source, account).pipeline_name


def make_pipeline(
    source: str,
    warehouse: Warehouse | str | os.PathLike[str],
    progress: Any = None,
    *,
    account: str = DEFAULT,
) -> dlt.Pipeline:
    """The dlt pipeline of ``source``'s ``account`` into ``warehouse`` (a :class:`Warehouse`
    or a DuckDB path), loading the dataset ``source``."""
    warehouse = as_warehouse(warehouse)
    warehouse.prepare()
    # every row carries _dlt_load_id (docs/sources/solarknock.md; the SolarKnock views select
    # around it), also the
    # rows a source yields as Arrow tables, for which dlt adds it only when told: set here, not
    # only in .dlt/config.toml, which a run from another directory (cron without `cd`, a
    # Dagster code location) does not read
    os.environ.setdefault(ADD_LOAD_ID_ENV, "true")
    pipeline = dlt.pipeline(
        pipeline_name=pipeline_name(source, account),
        destination=warehouse.dlt_destination(),
        dataset_name=source,
        progress=progress,
    )
    # dlt logs through its own handler: scrub secrets there too
    install_log_redaction(*logging.getLogger("dlt").handlers)
    return pipeline


@contextlib.contextmanager
def pipeline_lock(source: str, account: str = DEFAULT) -> Iterator[None]:
    """One run per pipeline (account) at a time: a cron run never overlaps a backfill or
    another run of the same account; other accounts of the source run beside it."""
    lock_dir = Path(get_dlt_pipelines_dir())
    lock_dir.mkdir(parents=True, exist_ok=True)
    path = lock_dir / f"{pipeline_name(source, account)}.lock"
    with open(path, "a+") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            what = "this source" if account == DEFAULT else "this account"
            raise LockedError(
                f"another solarsync process is running {what}",
                source=Account(source, account).label,
                hint=f"wait for it to finish (lock file {path})",
            ) from None
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


@dataclass
class Loaded:
    """What :meth:`Sync.load` loaded and published."""

    load_ids: list[str] = field(default_factory=list)
    views: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


class Sync:
    """One account's pipeline, held for loading into one warehouse (see the module docstring).

    ::

        with Sync(spec, warehouse, account=Account("solarknock", "north")) as sync:
            source = sync.source()
            rows = sync.extract(source)
            loaded = sync.load()
    """

    def __init__(
        self,
        spec: SourceSpec,
        warehouse: Warehouse,
        *,
        account: Account | str | None = None,
        progress: Any = None,
    ) -> None:
        self.spec = spec
        self.warehouse = warehouse
        if not isinstance(account, Account):
            account = Account(spec.name, account or DEFAULT)
        self.account = account
        self.progress = progress
        #: packages and journaled polls an interrupted run left, completed by this one
        self.resumed = 0
        #: rows of a single-account warehouse given their account by this run (one time)
        self.upgraded = 0
        self.pipeline: dlt.Pipeline
        self._stack = contextlib.ExitStack()
        self._journal_done = False
        self._kwargs: dict[str, Any] | None = None
        self._held = threading.local()

    def __enter__(self) -> Sync:
        name, warehouse, account = self.spec.name, self.warehouse, self.account
        with self._stack as stack:
            stack.enter_context(account_scope.scope(name, account.name))
            stack.enter_context(pipeline_lock(name, account.name))
            stack.enter_context(warehouse.lock(account.lock_name))
            stack.enter_context(default_root(warehouse.blob_root()))
            self.pipeline = make_pipeline(name, warehouse, self.progress, account=account.name)
            with self.writing():
                self.resumed = self.finish_pending()
                self.upgraded = upgrade(self.pipeline, self.spec, warehouse)
            self._stack = stack.pop_all()
        return self

    def __exit__(self, *exc_info: Any) -> bool | None:
        return self._stack.__exit__(*exc_info)

    @contextlib.contextmanager
    def writing(self) -> Iterator[None]:
        """The warehouse held for writing the dataset (``Warehouse.writing``), once per thread:
        a load step's publish, nested in it, does not take it again."""
        depth = getattr(self._held, "depth", 0)
        if depth:
            self._held.depth = depth + 1
            try:
                yield
            finally:
                self._held.depth = depth
            return
        with self.warehouse.writing(self.spec.name):
            self._held.depth = 1
            try:
                yield
            finally:
                self._held.depth = 0

    # ------------------------------------------------------------------ the steps
    def call_source(self, **kwargs: Any) -> Any:
        """The source function called with the account's settings (named accounts: their
        section over the source's, :func:`pipelines.accounts.source_kwargs`) and ``kwargs``."""
        if self._kwargs is None:
            self._kwargs = source_kwargs(self.spec, self.account)
        with account_scope.scope(self.spec.name, self.account.name):
            return self.spec.factory()(**{**self._kwargs, **kwargs})

    def source(self, **kwargs: Any) -> Any:
        """The source (``kwargs`` to its ``@dlt.source`` function) as the destination loads
        it. The first call also loads the polls a killed ``poll`` journaled."""
        source = self.warehouse.adapt(self.call_source(**kwargs))
        if self.spec.pollable and not self._journal_done:
            self._journal_done = True
            with self.writing():
                self.resumed += self._finish_journal(source)
        return source

    def extract(self, source: Any) -> dict[str, int] | None:
        """Extract and normalize ``source`` (not holding the warehouse); rows per table. None
        when the source extracted no row and changed no schema: nothing to load (see
        :meth:`discard`)."""
        pipeline = self.pipeline
        if pipeline.config.restore_from_destination and not pipeline.dev_mode:
            # as run() does: the warehouse's state if newer. A warehouse only this host loads
            # (DuckDB) can hold a newer state only when this host's pipeline dir is new
            if self.warehouse.shared or pipeline.first_run:
                pipeline.sync_destination()
        schemas = self._schema_hashes()
        info = pipeline.extract(source, loader_file_format=self.warehouse.loader_file_format)
        if not _data_items(info) and self._schema_hashes() == schemas and not self.resumed:
            return None
        return self.normalize()

    def discard(self) -> None:
        """Drop what :meth:`extract` extracted when it holds nothing to load (only dlt's own
        state): the pipeline's local state goes back to where the run started, so the next run
        reads from the same checkpoint (its window only grows; nothing is lost), and a run that
        changed nothing loads and publishes nothing."""
        self.pipeline.abort_packages()

    def _schema_hashes(self) -> dict[str, str]:
        return {name: schema.version_hash for name, schema in self.pipeline.schemas.items()}

    def normalize(self) -> dict[str, int]:
        """Normalize what was extracted; rows per table (dlt's own tables left out)."""
        info = self.pipeline.normalize()
        if info is None:
            return {}
        return {t: n for t, n in info.row_counts.items() if not t.startswith("_dlt")}

    def load(self, *, batch: bool = False) -> Loaded | None:
        """Load the normalized packages and publish, holding the warehouse; None when there
        was nothing to load. ``batch``: a poll batch (see ``Warehouse.publish``)."""
        with self.writing():
            if not self.pipeline.list_normalized_load_packages():
                return None
            info = self.pipeline.load()
            info.raise_on_failed_jobs()
            loaded = self.publish(batch=batch)
            loaded.load_ids = list(info.loads_ids)
        return loaded

    def publish(self, *, batch: bool = False) -> Loaded:
        """The source's views and the copy readers see, holding the warehouse."""
        with self.writing():
            publication = self.warehouse.publish(
                self.pipeline, self.spec.name, views=self.spec.views, batch=batch
            )
        if not publication.warnings:
            self._views_marker(write=True)
        return Loaded(views=publication.views, warnings=publication.warnings)

    def views_current(self) -> bool:
        """Whether this warehouse got this installation's views of the source at its last
        publish (no connection: a marker in the pipeline's working dir). A run that changed
        nothing publishes only when they differ, e.g. after an upgrade of solarsync."""
        return self._views_marker(write=False)

    def _views_marker(self, *, write: bool) -> bool:
        if self.spec.views is None:
            return True
        path = Path(self.pipeline.working_dir) / VIEWS_MARKER
        text = views_sql(self.spec.views, self.warehouse.dialect)
        digest = hashlib.sha256(text.encode()).hexdigest()
        where = self.warehouse.describe()
        try:
            marks = json.loads(path.read_text()) if path.exists() else {}
        except ValueError:
            marks = {}
        if not write:
            return marks.get(where) == digest
        marks[where] = digest
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(json.dumps(marks))
        os.replace(tmp, path)
        return True

    def last_sync(self, resources: Sequence[str] | None = None) -> LastSync:
        return last_sync(self.pipeline.state, resources or self.spec.resources)

    # ------------------------------------------------------------------ what was left
    def finish_pending(self) -> int:
        """Load what an interrupted run left extracted or normalized (the warehouse held)."""
        pipeline = self.pipeline
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

    def _finish_journal(self, source: Any) -> int:
        """Load the polls a killed ``solarsync poll`` journaled but did not extract."""
        polls = PollJournal(self.pipeline, self.spec.name).extract(
            resource_hints(source), loader_file_format=self.warehouse.loader_file_format
        )
        if not polls:
            return 0
        logger.warning("%s: loading %d poll(s) left by an interrupted poll", self.spec.name, polls)
        return self.finish_pending()


#: per warehouse, the digest of the views file its last clean publish of the source applied
VIEWS_MARKER = "solarsync_views.json"


def _data_items(info: Any) -> int:
    """Items extracted into tables other than dlt's own (its state), from dlt's extract info."""
    total = 0
    for metrics in (getattr(info, "metrics", None) or {}).values():
        for step in metrics:
            for table, table_metrics in (step.get("table_metrics") or {}).items():
                if not table.startswith("_dlt"):
                    total += int(getattr(table_metrics, "items_count", 0) or 0)
    return total


def record(result: SourceResult, last: LastSync) -> None:
    """What the resources recorded into ``result``; raises when they recorded errors (the rows
    are loaded, the sync failed all the same: e.g. no SolarAssistant site could be read)."""
    result.changes = last.changes
    for table, change in result.changes.items():
        # a source that counts its own rows (HEAT: without its scd2 scope markers)
        if "rows" in change:
            result.rows[table] = change.pop("rows")
    result.warn(last.warnings)
    if last.errors:
        raise SolarsyncError("; ".join(last.errors))


def run_source(
    spec: SourceSpec,
    warehouse: Warehouse | str | os.PathLike[str],
    *,
    account: Account | str | None = None,
    resources: Sequence[str] | None = None,
    source_kwargs: dict[str, Any] | None = None,
    progress: Any = None,
) -> SourceResult:
    """Sync one account of a source (``run``; ``backfill`` with ``source_kwargs``); the
    default account unless ``account`` is given. Never raises for source failures: the result
    says what happened. The run is journaled in the run history (:mod:`pipelines.history`),
    failed or not."""
    warehouse = as_warehouse(warehouse)
    if not isinstance(account, Account):
        account = Account(spec.name, account or DEFAULT)
    result = SourceResult(source=spec.name, account=account.name)
    started, started_at = time.monotonic(), datetime.now(UTC)
    with account_scope.scope(spec.name, account.name):
        reset_stats(spec.name)
        try:
            with Sync(spec, warehouse, account=account, progress=progress) as sync:
                source = sync.source(**(source_kwargs or {}))
                result.resumed_packages = sync.resumed
                if resources:
                    source = source.with_resources(*resources)
                rows = sync.extract(source)
                last = sync.last_sync(resources)  # read before a discard puts the state back
                if rows is None:  # nothing changed: nothing to load; publish new views only
                    sync.discard()
                    loaded = Loaded() if sync.views_current() else sync.publish()
                else:
                    result.rows = rows
                    loaded = sync.load() or sync.publish()
                result.load_ids, result.views = loaded.load_ids, loaded.views
                record(result, last)
                result.warn(loaded.warnings)
                result.ok = True
        except Exception as exc:  # one failing source (or account) must not stop the others
            result.fail(exc)
        result.duration_s = time.monotonic() - started
        result.http = stats_for(spec.name).as_dict()
    command = "backfill" if (source_kwargs or {}).get("backfill") else "run"
    history.record_run(result, command=command, started_at=started_at, warehouse=warehouse)
    return result


def concurrency(accounts: int) -> int:
    """Threads for ``accounts`` accounts of one source: ``[solarsync] account_concurrency``
    (at least 1), never more than the accounts."""
    try:
        configured = int(solarsync().account_concurrency)
    except (SolarsyncError, TypeError, ValueError):
        configured = 4
    return max(1, min(configured, accounts))


def run_accounts(
    spec: SourceSpec,
    accounts: Sequence[Account],
    warehouse: Warehouse,
    *,
    run: Callable[[Account], SourceResult] | None = None,
    progress: Any = None,
    workers: int | None = None,
) -> list[SourceResult]:
    """Run ``accounts`` of ``spec`` (``run``: one account, default :func:`run_source`), at
    most :func:`concurrency` at a time, each in a thread of its own; results in the order of
    ``accounts``. One account alone runs in the calling thread (with the progress display).
    ``workers``: threads instead of :func:`concurrency` (``poll``: one per account)."""

    def one(account: Account) -> SourceResult:
        if run is not None:
            return run(account)
        alone = len(accounts) == 1
        return run_source(spec, warehouse, account=account, progress=progress if alone else None)

    if len(accounts) == 1:
        return [one(accounts[0])]
    workers = workers or concurrency(len(accounts))
    with ThreadPoolExecutor(workers, thread_name_prefix=f"solarsync-{spec.name}") as pool:
        return list(pool.map(one, accounts))


__all__ = [
    "Loaded",
    "Sync",
    "concurrency",
    "make_pipeline",
    "pipeline_lock",
    "pipeline_name",
    "run_accounts",
    "run_source",
]
