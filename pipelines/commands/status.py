"""``solarsync status``: last runs, staleness, checkpoints and row counts."""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence

from pipelines import registry
from pipelines.commands.common import (
    EXIT_FAILED,
    EXIT_OK,
    EXIT_USAGE,
    accounts_of,
    out,
    select,
    size,
    warehouse_of,
)
from pipelines.history import age, when
from pipelines.status import collect_status


def cmd_status(args: argparse.Namespace) -> int:
    specs = select(args.sources, configured_only=False)
    if specs is None:
        return EXIT_USAGE
    warehouse = warehouse_of(args)
    if warehouse is None:
        return EXIT_USAGE
    accounts = accounts_of(specs, args.account) if args.account else {}
    if accounts is None:
        return EXIT_USAGE
    if args.account:
        specs = [spec for spec in specs if spec.name in accounts]
    report = collect_status(specs, warehouse, accounts)
    unhealthy = _mark_monitored(report, specs, named=bool(args.sources or args.account))
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
        for account in source.get("accounts") or ():
            out(f"  account {account['name']}:")
            _print_health(account["health"], indent="    ")
            for table in account["tables"]:
                rows = "-" if table["rows"] is None else table["rows"]
                deleted = "-" if table["deleted"] is None else table["deleted"]
                out(
                    f"    {table['name']:<28}{rows:>9}{deleted:>9}  "
                    f"{table['checkpoint'] or '-':<26}{table.get('last_sync') or '-'}"
                )
        for blobs in source.get("blobs") or ():
            counts = blobs["counts"]
            out(
                f"  files {blobs['name']}: "
                + ", ".join(f"{n} {status}" for status, n in counts.items())
                + f"; {size(blobs['bytes'])} stored"
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
        for account in source.get("accounts") or ():  # each account is watched on its own
            own = account["health"]
            own["monitored"] = health["monitored"]
            if own["monitored"] and (own["stale"] or own["last_run_failed"]):
                unhealthy.append(f"{source['name']} (account {account['name']})")
    return list(dict.fromkeys(unhealthy))


def _print_health(health: dict, indent: str = "  ") -> None:
    run = health["last_run"]
    if run is None:
        out(f"{indent}runs: none recorded{'' if health['monitored'] else ' (not configured)'}")
        return
    since = "" if health["age_s"] is None else f" ({age(health['age_s'])} ago)"
    out(
        f"{indent}runs: {health['state'].upper()}; last run {when(run['finished_at'])} "
        f"({run['command']}, {run['status']}); last success "
        f"{when(health['last_success_at'])}{since}; expected every {health['expected_interval']}"
    )
    if run.get("error_message"):
        out(f"{indent}last error: {run.get('error_class') or 'error'}: {run['error_message']}")
    for warning in run.get("warnings") or ():
        out(f"{indent}last run warning: {warning}")
    if health.get("note"):
        out(f"{indent}note: {health['note']}")
