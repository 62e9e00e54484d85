"""What each ``solarsync`` command does. Output for people goes to stdout; logs to stderr."""

from __future__ import annotations

import argparse
import json
import logging
import sys
import threading
from collections.abc import Sequence
from pathlib import Path

from pipelines import history, registry
from pipelines.destinations import Warehouse, as_warehouse, resolve
from pipelines.runner import SourceResult, describe_failure, run_source
from sources.common import SolarsyncError, redact

logger = logging.getLogger("solarsync")

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


def dispatch(args: argparse.Namespace) -> int:
    handler = {
        "run": cmd_run,
        "backfill": cmd_backfill,
        "poll": cmd_poll,
        "status": cmd_status,
        "check": cmd_check,
        "demo": cmd_demo,
        "lake": cmd_lake,
        "report": cmd_report,
    }[args.command]
    return handler(args)


def out(text: str = "") -> None:
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


def _progress(args: argparse.Namespace) -> str | None:
    return "tqdm" if sys.stderr.isatty() and not args.no_progress else None


def _select(names: Sequence[str], *, configured_only: bool) -> list[registry.SourceSpec] | None:
    try:
        specs = [registry.get(n) for n in names]
    except KeyError as exc:
        logger.error("%s", exc.args[0])
        return None
    if not specs:
        specs = registry.configured() if configured_only else list(registry.SOURCES.values())
        if not specs:
            logger.error(
                "no source is configured: add credentials to .dlt/secrets.toml "
                "(see .dlt/secrets.toml.example) or SOURCES__<SOURCE>__API_KEY"
            )
            return None
    return specs


def _warehouse(args: argparse.Namespace) -> Warehouse | None:
    """The destination ``--destination`` / ``--warehouse`` / configuration name (None: usage
    error, already logged)."""
    try:
        return resolve(getattr(args, "destination", None), args.warehouse)
    except SolarsyncError as exc:
        logger.error("%s", redact(exc))
        return None


# --------------------------------------------------------------------------- run / backfill
def cmd_run(args: argparse.Namespace) -> int:
    specs = _select(args.sources, configured_only=True)
    if specs is None:
        return EXIT_USAGE
    warehouse = _warehouse(args)
    if warehouse is None:
        return EXIT_USAGE
    results = [run_source(spec, warehouse, progress=_progress(args)) for spec in specs]
    history.load_into(warehouse)  # the runs' rows, journaled by run_source, into the warehouse
    print_summary(results, warehouse)
    return exit_code(results)


def cmd_backfill(args: argparse.Namespace) -> int:
    spec = registry.get(args.source)
    followers = _backfill_followers(spec)
    known = list(dict.fromkeys([*spec.resources, *(f for fs in followers.values() for f in fs)]))
    unknown = sorted(set(args.resource or ()) - set(known))
    if unknown:
        logger.error("%s has no table(s) %s; choose from %s", spec.name, unknown, ", ".join(known))
        return EXIT_USAGE
    warehouse = _warehouse(args)
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
        progress=_progress(args),
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
    from pipelines.poll import parse_duration, poll_source, stop_on_signals

    spec = registry.get(args.source)
    try:
        every = parse_duration(args.every)
        duration = parse_duration(args.duration) if args.duration else None
        batch = parse_duration(args.batch)
    except ValueError as exc:
        logger.error("%s", exc)
        return EXIT_USAGE
    warehouse = _warehouse(args)
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


def exit_code(results: Sequence[SourceResult]) -> int:
    return EXIT_OK if all(r.ok for r in results) else EXIT_FAILED


def print_summary(results: Sequence[SourceResult], warehouse: Warehouse | Path) -> None:
    out(f"solarsync: {len(results)} source(s) -> {as_warehouse(warehouse).describe()}")
    for result in results:
        verdict = "ok" if result.ok else "FAILED"
        http = result.http
        out(
            f"  {result.source}: {verdict} in {result.duration_s:.1f}s, "
            f"{http.get('requests', 0)} requests, {http.get('rate_limited', 0)} rate-limited (429), "
            f"{http.get('retries', 0)} retries"
        )
        if result.resumed_packages:
            out(f"    completed {result.resumed_packages} package(s) left by an interrupted run")
        if result.error:
            out(f"    error: {result.error}")
        for warning in result.warnings:
            out(f"    warning: {warning}")
        if result.views:
            out(f"    views: {', '.join(result.views)}")
        tables = sorted(set(result.rows) | set(result.changes))
        if tables:
            out(f"    {'table':<34}{'rows':>9}{'new':>9}{'updated':>9}{'deleted':>9}")
        for table in tables:
            change = result.changes.get(table, {})
            out(
                f"    {table:<34}{result.rows.get(table, 0):>9}"
                f"{_n(change.get('new')):>9}{_n(change.get('updated')):>9}{_n(change.get('deleted')):>9}"
            )


def _n(value: int | None) -> str:
    return "-" if value is None else str(value)


# --------------------------------------------------------------------------- status
def cmd_status(args: argparse.Namespace) -> int:
    from pipelines.status import collect_status

    specs = _select(args.sources, configured_only=False)
    if specs is None:
        return EXIT_USAGE
    warehouse = _warehouse(args)
    if warehouse is None:
        return EXIT_USAGE
    report = collect_status(specs, warehouse)
    unhealthy = _mark_monitored(report, specs, named=bool(args.sources))
    if args.json:
        where = {"warehouse": warehouse.describe(), "warehouse_exists": warehouse.exists()}
        out(json.dumps(where | report, indent=2, default=str))
        return EXIT_FAILED if args.fail_if_stale and unhealthy else EXIT_OK
    out(f"warehouse: {warehouse.describe()}{'' if warehouse.exists() else ' (not created yet)'}")
    if report.get("warning"):
        out(f"  note: {report['warning']}")
    for source in report["sources"]:
        out(
            f"{source['name']}: last successful load {source['last_load'] or 'never'}"
            + (f", published {source['published_at']}" if source.get("published_at") else "")
        )
        _print_health(source["health"])
        out(f"  {'table':<30}{'rows':>9}{'deleted':>9}  {'checkpoint':<26}last synced window end")
        for table in source["tables"]:
            rows = "-" if table["rows"] is None else table["rows"]
            deleted = "-" if table["deleted"] is None else table["deleted"]
            out(
                f"  {table['name']:<30}{rows:>9}{deleted:>9}  {table['checkpoint'] or '-':<26}"
                f"{table.get('last_sync') or '-'}"
            )
        for blobs in source.get("blobs") or ():
            counts = blobs["counts"]
            out(
                f"  files {blobs['name']}: "
                + ", ".join(f"{n} {status}" for status, n in counts.items())
                + f"; {_size(blobs['bytes'])} stored"
            )
    if args.fail_if_stale and unhealthy:
        out(f"stale or failing: {', '.join(unhealthy)}")
        return EXIT_FAILED
    return EXIT_OK


def _mark_monitored(report: dict, specs: Sequence[registry.SourceSpec], named: bool) -> list[str]:
    """Sets ``health.monitored`` (named on the command line, else configured or run before)
    and returns the monitored sources that are stale or whose last run failed."""
    configured = {spec.name: spec for spec in specs}
    unhealthy = []
    for source in report["sources"]:
        health = source["health"]
        health["monitored"] = (
            named or health["last_run"] is not None or configured[source["name"]].is_configured()
        )
        if health["monitored"] and (health["stale"] or health["last_run_failed"]):
            unhealthy.append(source["name"])
    return unhealthy


def _print_health(health: dict) -> None:
    from pipelines.history import age, when

    run = health["last_run"]
    if run is None:
        out(f"  runs: none recorded{'' if health['monitored'] else ' (not configured)'}")
        return
    since = "" if health["age_s"] is None else f" ({age(health['age_s'])} ago)"
    out(
        f"  runs: {health['state'].upper()}; last run {when(run['finished_at'])} "
        f"({run['command']}, {run['status']}); last success "
        f"{when(health['last_success_at'])}{since}; expected every {health['expected_interval']}"
    )
    if run.get("error_message"):
        out(f"  last error: {run.get('error_class') or 'error'}: {run['error_message']}")
    for warning in run.get("warnings") or ():
        out(f"  last run warning: {warning}")
    if health.get("note"):
        out(f"  note: {health['note']}")


def _size(n: int) -> str:
    """Bytes for people, in binary units named as such: 26,214,400 bytes is ``25.0 MiB``."""
    if n < 1024:
        return f"{n} B"
    value = n / 1024
    for unit in ("KiB", "MiB", "GiB"):
        if round(value, 1) < 1024:
            return f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} TiB"


# --------------------------------------------------------------------------- check
def cmd_check(args: argparse.Namespace) -> int:
    specs = _select(args.sources, configured_only=True)
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


# --------------------------------------------------------------------------- lake
def cmd_lake(args: argparse.Namespace) -> int:
    from pipelines.lake.commands import lake_command

    return lake_command(args, _warehouse(args), out)


# --------------------------------------------------------------------------- report
def cmd_report(args: argparse.Namespace) -> int:
    from pipelines.report import WarehouseUnreadable, write_report

    warehouse = _warehouse(args)
    if warehouse is None:
        return EXIT_USAGE
    try:
        path = write_report(
            warehouse, Path(args.output) if args.output else None, timezone=args.timezone
        )
    except WarehouseUnreadable as exc:
        logger.error("report: %s", redact(exc))
        return EXIT_FAILED
    except SolarsyncError as exc:  # a report_* setting that is not valid
        logger.error("report: %s", redact(exc))
        return exc.exit_code
    out(f"report: {path.resolve()}")
    return EXIT_OK


# --------------------------------------------------------------------------- demo
def cmd_demo(args: argparse.Namespace) -> int:
    from pipelines.demo import run_demo

    if not args.verbose:  # the demo narrates on stdout; keep the per-table log lines out
        logging.getLogger().setLevel(logging.WARNING)
    return run_demo(Path(args.warehouse_dir), warehouse=args.warehouse)
