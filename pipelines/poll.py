"""``solarsync poll``: take a snapshot every N seconds, load in batches.

The first poll calls the source function and extracts every table (state included), like
``run``. Later polls call it again for the registry's ``poll_resources`` only (e.g.
SolarAssistant's metrics, not its user and site lists), evaluate them without dlt and write
their rows to the poll journal (``pipelines.journal``: one fsynced file per poll). Every
``batch`` seconds, at the end of ``--for``, and on SIGTERM/Ctrl-C, the journal is extracted as
ONE load package, normalized and loaded through the load step (:class:`pipelines.sync.Sync`).
A ``kill -9`` loses at most the poll in flight: the next ``poll`` or ``run`` of the source
extracts the journal and loads what is pending first. Resources polled this way must not use
dlt state (they run outside a pipeline).

A failed poll is logged and the loop goes on, polling less often while failures repeat
(doubling up to 5 minutes); a rejected credential or a configuration error stops it. A poll
whose resources record ``last_sync.errors`` (:mod:`pipelines.sync_state`) is a failed poll
too, its rows kept and loaded.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import threading
import time
from collections.abc import Callable, Iterator

from pipelines.destinations import Warehouse, as_warehouse
from pipelines.history import PollHistory
from pipelines.journal import PollJournal, fetch, resource_hints
from pipelines.registry import SourceSpec
from pipelines.results import Failure, PollResult
from pipelines.sync import Sync
from pipelines.sync_state import last_sync
from sources.common import (
    AuthenticationError,
    ConfigurationError,
    SolarsyncError,
    reset_stats,
    stats_for,
)

logger = logging.getLogger("solarsync")

#: errors after which another poll cannot succeed: stop instead of hammering the API
FATAL_ERRORS = (AuthenticationError, ConfigurationError)
#: consecutive failed polls back off: the k-th waits every * 2**(k-1), at most this long
MAX_FAILURE_BACKOFF_S = 300.0


@contextlib.contextmanager
def stop_on_signals(stop: threading.Event) -> Iterator[None]:
    """SIGTERM and the first Ctrl-C ask the loop to stop after the current poll and load; a
    second Ctrl-C interrupts at once (the extracted polls are loaded by the next run)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def ask(signum: int, _frame: object) -> None:
        if stop.is_set() and signum == signal.SIGINT:
            raise KeyboardInterrupt
        logger.warning("%s: finishing the current poll and loading", signal.Signals(signum).name)
        stop.set()

    previous = {sig: signal.signal(sig, ask) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def poll_source(
    spec: SourceSpec,
    warehouse: Warehouse | str | os.PathLike[str],
    *,
    every: float,
    duration: float | None,
    batch: float,
    stop: threading.Event | None = None,
    on_batch: Callable[[PollResult], None] | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> PollResult:
    """Poll ``spec`` every ``every`` s for ``duration`` s (None: until stopped). Never raises
    for source failures: the result says what happened."""
    stop = stop or threading.Event()
    warehouse = as_warehouse(warehouse)
    result = PollResult(source=spec.name)
    started = clock()
    reset_stats(spec.name)
    history = PollHistory(spec.name, warehouse)  # a run-history row per batch, and failures
    try:
        with Sync(spec, warehouse) as sync:
            result.resumed_packages = sync.resumed
            begin = clock()  # --for counts from the first poll, not from the catch-up load
            deadline = None if duration is None else begin + duration
            next_poll, next_load, failing = begin, begin + batch, 0
            journal = PollJournal(sync.pipeline, spec.name)
            hints: dict[str, dict] = {}

            def add_rows(rows: dict[str, int]) -> None:
                for table, count in rows.items():
                    result.rows[table] = result.rows.get(table, 0) + count

            def load(final: bool = False) -> None:
                if hints and journal.extract(
                    hints, loader_file_format=warehouse.loader_file_format
                ):
                    add_rows(sync.normalize())
                loaded = sync.load(batch=not final)
                if loaded is None:
                    if final and result.batches:  # a batch may not have been published yet
                        published = sync.publish()
                        result.views = published.views
                        result.warn(published.warnings)
                    return
                result.batches += 1
                result.load_ids.extend(loaded.load_ids)
                result.views = loaded.views
                result.warn(loaded.warnings)
                history.batch(result)
                if on_batch:
                    on_batch(result)

            loader: threading.Thread | None = None

            def load_in_background() -> None:
                """Polls go on while a batch loads (polls only write the journal)."""
                nonlocal loader
                if loader is not None and loader.is_alive():
                    return  # the previous batch is still loading: this one joins the next

                def work() -> None:
                    try:
                        load()
                    except Exception as exc:
                        message = Failure.of(spec.name, exc).message
                        result.load_errors.append(message)
                        logger.error(
                            "%s: loading a batch failed; its polls are kept and loaded with "
                            "the next batch: %s",
                            spec.name,
                            message,
                        )

                loader = threading.Thread(target=work, name=f"{spec.name}-load")
                loader.start()

            while not stop.is_set() and (deadline is None or clock() < deadline):
                result.polls += 1
                try:
                    if not hints:  # the first poll: every table, through dlt, with state
                        if loader is not None:
                            loader.join()  # one thread at a time touches the pipeline
                        source = sync.source()
                        result.resumed_packages = sync.resumed
                        sync.pipeline.extract(
                            source, loader_file_format=warehouse.loader_file_format
                        )
                        hints = resource_hints(source)
                        add_rows(sync.normalize())
                        selected = list(source.selected_resources)
                        errors = last_sync(sync.pipeline.state, selected).errors
                    else:
                        # as the destination loads it (Postgres: nested values as JSON text)
                        source = warehouse.adapt(spec.factory()())
                        if spec.poll_resources:
                            source = source.with_resources(*spec.poll_resources)
                        errors = []
                        journal.add(fetch(source, errors))
                    if errors:  # the poll's rows are kept (loaded with the batch), yet it failed
                        raise SolarsyncError("; ".join(errors))
                    failing = 0
                except Exception as exc:
                    failure = Failure.of(spec.name, exc)
                    result.failed_polls += 1
                    result.error_class = failure.error_class
                    failing += 1
                    result.poll_errors.append(failure.message)
                    logger.error("%s: poll %d failed: %s", spec.name, result.polls, failure.message)
                    logger.debug("%s poll failure details", spec.name, exc_info=True)
                    if isinstance(failure.known, FATAL_ERRORS):
                        result.stopped_by = "error"
                        result.error, result.exit_code = failure.message, failure.exit_code
                        break
                now = clock()
                if now >= next_load:
                    load_in_background()
                    next_load = now + batch
                next_poll += every
                if failing > 1:  # the API keeps failing: poll it less often until it answers
                    pause = min(every * 2 ** (failing - 1), max(every, MAX_FAILURE_BACKOFF_S))
                    logger.warning(
                        "%s: %d polls in a row failed; next poll in %.0fs",
                        spec.name,
                        failing,
                        pause,
                    )
                    next_poll = max(next_poll, now + pause)
                if next_poll < now:  # a poll took longer than the interval: skip, don't burst
                    skipped = int((now - next_poll) // every) + 1
                    logger.warning(
                        "%s: poll took longer than --every; %d skipped", spec.name, skipped
                    )
                    next_poll += skipped * every
                wait = next_poll - now if deadline is None else min(next_poll, deadline) - now
                if wait > 0 and stop.wait(wait):
                    break
            if not result.stopped_by:
                result.stopped_by = "signal" if stop.is_set() else "time"
            if loader is not None:
                loader.join()
            load(final=True)  # everything polled, in the foreground: a failure here is the run's
    except Exception as exc:
        result.fail(exc)
        result.stopped_by = result.stopped_by or "error"
    result.ok = result.error is None and result.failed_polls == 0 and result.polls > 0
    if not result.ok and not result.exit_code:
        result.exit_code = 1
    result.duration_s = clock() - started
    result.http = stats_for(spec.name).as_dict()
    history.finish(result)
    return result
