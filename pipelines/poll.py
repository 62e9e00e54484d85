"""``solarsync poll``: take a snapshot every N seconds, load in batches.

The first poll calls the source function and extracts every table (state included), like
``run``. Later polls call it again for the registry's ``poll_resources`` only (e.g.
SolarAssistant's metrics, not its user and site lists), evaluate them without dlt and write
their rows to the poll journal (``pipelines.journal``: one fsynced file per poll). Every
``batch`` seconds, at the end of ``--for``, and on SIGTERM/Ctrl-C, the journal is extracted as
ONE load package, normalized and loaded. A ``kill -9`` loses at most the poll in flight: the
next ``poll`` or ``run`` of the source extracts the journal and loads what is pending first.
Resources polled this way must not use dlt state (they run outside a pipeline).

A failed poll is logged and the loop goes on, polling less often while failures repeat
(doubling up to 5 minutes); a rejected credential or a configuration error stops it. A poll
whose resources record ``last_sync.errors`` (see ``runner._last_sync_errors``) is a failed
poll too, its rows kept and loaded.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import signal
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from pipelines.destinations import Warehouse, as_warehouse
from pipelines.history import PollHistory
from pipelines.journal import PollJournal, fetch, resource_hints
from pipelines.registry import SourceSpec
from pipelines.runner import (
    SourceResult,
    _finish_pending,
    _last_sync_errors,
    describe_failure,
    error_class,
    make_pipeline,
    pipeline_lock,
)
from sources.common import (
    AuthenticationError,
    ConfigurationError,
    SolarsyncError,
    redact,
    reset_stats,
    solarsync_error_in,
    stats_for,
)
from sources.common.blobstore import default_root

logger = logging.getLogger("solarsync")

#: errors after which another poll cannot succeed: stop instead of hammering the API
FATAL_ERRORS = (AuthenticationError, ConfigurationError)
#: consecutive failed polls back off: the k-th waits every * 2**(k-1), at most this long
MAX_FAILURE_BACKOFF_S = 300.0
_DURATION = re.compile(r"(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?", re.I)
_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(text: str) -> float:
    """``"60s"``, ``"5m"``, ``"1h30m"``, ``"0.5s"``, ``"90"`` (seconds) -> seconds."""
    value = text.strip()
    pos, total = 0, 0.0
    for match in _DURATION.finditer(value):
        if match.start() != pos or (match.group(2) is None and match.end() != len(value)):
            break
        total += float(match.group(1)) * _UNITS[(match.group(2) or "s").lower()]
        pos = match.end()
    if pos != len(value) or not value or total <= 0:
        raise ValueError(f"not a duration: {text!r} (examples: 30s, 5m, 1h, 1h30m)")
    return total


@dataclass
class PollResult(SourceResult):
    polls: int = 0
    failed_polls: int = 0
    batches: int = 0
    stopped_by: str = ""  # "time" | "signal" | "error"
    poll_errors: list[str] = field(default_factory=list)
    load_errors: list[str] = field(default_factory=list)  # batches retried with the next


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
        with (
            pipeline_lock(spec.name),
            warehouse.lock(spec.name),
            default_root(warehouse.blob_root()),  # files a source copies go where run's do
        ):
            pipeline = make_pipeline(spec.name, warehouse)
            with warehouse.writing(spec.name):
                result.resumed_packages = _finish_pending(pipeline)
            begin = clock()  # --for counts from the first poll, not from the catch-up load
            deadline = None if duration is None else begin + duration
            next_poll, next_load, failing = begin, begin + batch, 0
            journal = PollJournal(pipeline, spec.name)
            hints: dict[str, dict] = {}

            def load(final: bool = False) -> None:
                if hints and journal.extract(
                    hints, loader_file_format=warehouse.loader_file_format
                ):
                    for table, count in pipeline.normalize().row_counts.items():
                        if not table.startswith("_dlt"):
                            result.rows[table] = result.rows.get(table, 0) + count
                if not pipeline.list_normalized_load_packages():
                    if final and result.batches:  # a batch may not have been published yet
                        result.views = warehouse.publish(pipeline, spec.name)
                    return
                with warehouse.writing(spec.name):
                    info = pipeline.load()
                    info.raise_on_failed_jobs()
                    result.batches += 1
                    result.load_ids.extend(info.loads_ids)
                    publish = warehouse.publish if final else warehouse.publish_batch
                    result.views = publish(pipeline, spec.name)
                    for warning in warehouse.publish_warnings(spec.name):
                        if warning not in result.warnings:
                            result.warnings.append(warning)
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
                        known = solarsync_error_in(exc)
                        message = redact(str(known) if known else describe_failure(spec, exc))
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
                    source = spec.factory()()
                    if not hints:  # the first poll: every table, through dlt, with state
                        if loader is not None:
                            loader.join()  # one thread at a time touches the pipeline
                        source = warehouse.adapt(source)
                        pipeline.extract(source, loader_file_format=warehouse.loader_file_format)
                        hints = resource_hints(source)
                        for table, count in pipeline.normalize().row_counts.items():
                            if not table.startswith("_dlt"):
                                result.rows[table] = result.rows.get(table, 0) + count
                        errors = _last_sync_errors(pipeline, list(source.selected_resources))
                    else:
                        if spec.poll_resources:
                            source = source.with_resources(*spec.poll_resources)
                        errors = []
                        journal.add(fetch(source, errors))
                    if errors:  # the poll's rows are kept (loaded with the batch), yet it failed
                        raise SolarsyncError("; ".join(errors))
                    failing = 0
                except Exception as exc:
                    known = solarsync_error_in(exc)
                    message = redact(str(known) if known else describe_failure(spec, exc))
                    result.failed_polls += 1
                    result.error_class = error_class(exc)
                    failing += 1
                    result.poll_errors.append(message)
                    logger.error("%s: poll %d failed: %s", spec.name, result.polls, message)
                    logger.debug("%s poll failure details", spec.name, exc_info=True)
                    if isinstance(known, FATAL_ERRORS):
                        result.stopped_by = "error"
                        result.error, result.exit_code = message, known.exit_code
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
        known = solarsync_error_in(exc)
        result.error = redact(str(known) if known else describe_failure(spec, exc))
        result.exit_code = known.exit_code if known else 1
        result.stopped_by = result.stopped_by or "error"
        result.error_class = error_class(exc)
        logger.error("%s failed: %s", spec.name, result.error)
        logger.debug("%s failure details", spec.name, exc_info=True)
    result.ok = result.error is None and result.failed_polls == 0 and result.polls > 0
    if not result.ok and not result.exit_code:
        result.exit_code = 1
    result.duration_s = clock() - started
    result.http = stats_for(spec.name).as_dict()
    history.finish(result)
    return result
