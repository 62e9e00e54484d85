"""``run``, ``backfill``, ``poll`` and ``check``: the commands that talk to the APIs."""

from __future__ import annotations

import argparse
import logging
import threading

from pipelines import history, registry
from pipelines.accounts import Account, source_kwargs
from pipelines.commands.common import (
    EXIT_FAILED,
    EXIT_OK,
    EXIT_USAGE,
    accounts_of,
    exit_code,
    out,
    print_summary,
    progress,
    select,
    warehouse_of,
)
from pipelines.poll import poll_source, stop_on_signals
from pipelines.results import SourceResult, describe_failure
from pipelines.settings import parse_duration
from pipelines.sync import run_accounts, run_source
from sources.common import SolarsyncError, redact
from sources.common.accounts import scope

logger = logging.getLogger("solarsync")


def cmd_run(args: argparse.Namespace) -> int:
    specs = select(args.sources, configured_only=True)
    if specs is None:
        return EXIT_USAGE
    warehouse = warehouse_of(args)
    if warehouse is None:
        return EXIT_USAGE
    accounts = accounts_of(specs, args.account)
    if accounts is None:
        return EXIT_USAGE
    results = []
    for spec in specs:  # one source after the other; its accounts at once (docs/accounts.md)
        if spec.name in accounts:
            results += run_accounts(spec, accounts[spec.name], warehouse, progress=progress(args))
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
    accounts = accounts_of([spec], args.account)
    if accounts is None:
        return EXIT_USAGE
    resources = list(dict.fromkeys(args.resource or ()))
    for name in list(resources):  # e.g. SolarKnock's files follow the leads they belong to
        added = [f for f in followers.get(name, ()) if f not in resources]
        if added:
            resources += added
            out(f"solarsync: backfilling {name} also backfills {', '.join(added)}")
    chosen = accounts[spec.name]

    def backfill(account: Account) -> SourceResult:
        return run_source(
            spec,
            warehouse,
            account=account,
            resources=resources or None,
            source_kwargs={
                "backfill": True,
                "backfill_since": args.since,
                "backfill_until": args.until,
            },
            progress=progress(args) if len(chosen) == 1 else None,
        )

    results = run_accounts(spec, chosen, warehouse, run=backfill)
    history.load_into(warehouse)
    print_summary(results, warehouse)
    return exit_code(results)


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
    accounts = accounts_of([spec], args.account)
    if accounts is None:
        return EXIT_USAGE
    chosen = accounts[spec.name]
    names = "" if chosen == [Account(spec.name)] else f" ({', '.join(a.name for a in chosen)})"
    out(
        f"solarsync: polling {spec.name}{names} every {args.every}"
        f"{f' for {args.duration}' if args.duration else ' until stopped'}, "
        f"loading every {args.batch} -> {warehouse.describe()}"
    )

    def batch_done(result) -> None:
        rows = ", ".join(f"{t} {n}" for t, n in sorted(result.rows.items())) or "no rows"
        who = "" if len(chosen) == 1 else f"{result.account} "
        out(
            f"  {who}batch {result.batches}: {result.polls} poll(s), {result.failed_polls} "
            f"failed; rows so far: {rows}"
        )

    def poll(account: Account) -> SourceResult:
        return poll_source(
            spec,
            warehouse,
            account=account,
            every=every,
            duration=duration,
            batch=batch,
            stop=stop,
            on_batch=batch_done,
        )

    stop = threading.Event()
    with stop_on_signals(stop):  # every account's loop polls until the same stop
        results = run_accounts(spec, chosen, warehouse, run=poll, workers=len(chosen))
    for result in results:
        who = "" if len(chosen) == 1 else f"{result.label}: "
        out(
            f"  {who}{result.polls} poll(s), {result.failed_polls} failed, "
            f"{result.batches} load(s), stopped by {result.stopped_by}"
        )
        for message in dict.fromkeys(result.poll_errors):
            out(f"    poll error: {message}")
    print_summary(results, warehouse)
    return exit_code(results)


def cmd_check(args: argparse.Namespace) -> int:
    specs = select(args.sources, configured_only=True)
    if specs is None:
        return EXIT_USAGE
    accounts = accounts_of(specs, args.account)
    if accounts is None:
        return EXIT_USAGE
    failed = False
    for spec in specs:
        for account in accounts.get(spec.name, ()):
            try:
                with scope(spec.name, account.name):
                    found = spec.check(**source_kwargs(spec, account))
            except SolarsyncError as exc:
                failed = True
                out(f"{account.label}: FAILED: {redact(exc)}")
                continue
            except Exception as exc:  # configuration errors from dlt and the like
                failed = True
                message = describe_failure(spec.name, exc, account=account.name)
                out(f"{account.label}: FAILED: {redact(message)}")
                continue
            out(f"{account.label}: ok")
            for endpoint, what in found:
                out(f"  {endpoint:<20} {what}")
    return EXIT_FAILED if failed else EXIT_OK
