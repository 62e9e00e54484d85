"""``run``, ``backfill``, ``poll`` and ``check``: the commands that talk to the APIs."""

from __future__ import annotations

import argparse
import logging
import threading

from pipelines import history, registry
from pipelines.commands.common import (
    EXIT_FAILED,
    EXIT_OK,
    EXIT_USAGE,
    exit_code,
    out,
    print_summary,
    progress,
    select,
    warehouse_of,
)
from pipelines.poll import poll_source, stop_on_signals
from pipelines.results import describe_failure
from pipelines.settings import parse_duration
from pipelines.sync import run_source
from sources.common import SolarsyncError, redact

logger = logging.getLogger("solarsync")


def cmd_run(args: argparse.Namespace) -> int:
    specs = select(args.sources, configured_only=True)
    if specs is None:
        return EXIT_USAGE
    warehouse = warehouse_of(args)
    if warehouse is None:
        return EXIT_USAGE
    results = [run_source(spec, warehouse, progress=progress(args)) for spec in specs]
    history.load_into(warehouse)  # the runs' rows, journaled by run_source, into the warehouse
    print_summary(results, warehouse)
    return exit_code(results)


def cmd_backfill(args: argparse.Namespace) -> int:
    spec = registry.get(args.source)
    if not spec.backfills:
        with_history = [s.name for s in registry.SOURCES.values() if s.backfills]
        logger.error(
            "%s has nothing to backfill: its API shows only what is true now, and each "
            "`solarsync run %s` keeps a snapshot of it (the history is what its tables keep). "
            "Sources with a backfill: %s",
            spec.name,
            spec.name,
            ", ".join(with_history),
        )
        return EXIT_USAGE
    followers = _backfill_followers(spec)
    known = list(dict.fromkeys([*spec.resources, *(f for fs in followers.values() for f in fs)]))
    unknown = sorted(set(args.resource or ()) - set(known))
    if unknown:
        logger.error("%s has no table(s) %s; choose from %s", spec.name, unknown, ", ".join(known))
        return EXIT_USAGE
    warehouse = warehouse_of(args)
    if warehouse is None:
        return EXIT_USAGE
    resources = list(dict.fromkeys(args.resource or ()))
    for name in list(resources):  # e.g. SolarKnock's files follow the leads they belong to
        added = [f for f in followers.get(name, ()) if f not in resources]
        if added:
            resources += added
            out(f"solarsync: backfilling {name} also backfills {', '.join(added)}")
    result = run_source(
        spec,
        warehouse,
        resources=resources or None,
        source_kwargs={
            "backfill": True,
            "backfill_since": args.since,
            "backfill_until": args.until,
        },
        progress=progress(args),
    )
    history.load_into(warehouse)
    print_summary([result], warehouse)
    return exit_code([result])


def _backfill_followers(spec: registry.SourceSpec) -> dict[str, tuple[str, ...]]:
    """The source's ``backfill_followers()``: tables a backfill of a table runs too."""
    try:
        return spec.followers()
    except Exception:  # a bad setting: the run itself reports it, naming the setting
        logger.debug("%s: backfill_followers() failed", spec.name, exc_info=True)
        return {}


def cmd_poll(args: argparse.Namespace) -> int:
    spec = registry.get(args.source)
    try:
        every = parse_duration(args.every)
        duration = parse_duration(args.duration) if args.duration else None
        batch = parse_duration(args.batch)
    except ValueError as exc:
        logger.error("%s", exc)
        return EXIT_USAGE
    warehouse = warehouse_of(args)
    if warehouse is None:
        return EXIT_USAGE
    out(
        f"solarsync: polling {spec.name} every {args.every}"
        f"{f' for {args.duration}' if args.duration else ' until stopped'}, "
        f"loading every {args.batch} -> {warehouse.describe()}"
    )

    def batch_done(result) -> None:
        rows = ", ".join(f"{t} {n}" for t, n in sorted(result.rows.items())) or "no rows"
        out(
            f"  batch {result.batches}: {result.polls} poll(s), {result.failed_polls} failed; "
            f"rows so far: {rows}"
        )

    stop = threading.Event()
    with stop_on_signals(stop):
        result = poll_source(
            spec,
            warehouse,
            every=every,
            duration=duration,
            batch=batch,
            stop=stop,
            on_batch=batch_done,
        )
    out(
        f"  {result.polls} poll(s), {result.failed_polls} failed, {result.batches} load(s), "
        f"stopped by {result.stopped_by}"
    )
    for message in dict.fromkeys(result.poll_errors):
        out(f"    poll error: {message}")
    print_summary([result], warehouse)
    return exit_code([result])


def cmd_check(args: argparse.Namespace) -> int:
    specs = select(args.sources, configured_only=True)
    if specs is None:
        return EXIT_USAGE
    failed = False
    for spec in specs:
        try:
            found = spec.check()
        except SolarsyncError as exc:
            failed = True
            out(f"{spec.name}: FAILED: {redact(exc)}")
            continue
        except Exception as exc:  # configuration errors from dlt and the like
            failed = True
            out(f"{spec.name}: FAILED: {redact(describe_failure(spec, exc))}")
            continue
        out(f"{spec.name}: ok")
        for endpoint, what in found:
            out(f"  {endpoint:<20} {what}")
    return EXIT_FAILED if failed else EXIT_OK
