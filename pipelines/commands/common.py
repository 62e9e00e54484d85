"""What every command shares: output for people (stdout; logs go to stderr), exit codes, which
sources and which warehouse a command line names, the summary of a run."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from pipelines import registry
from pipelines.accounts import Account
from pipelines.accounts import known as known_accounts
from pipelines.accounts import select as select_accounts
from pipelines.destinations import Warehouse, as_warehouse, resolve
from pipelines.results import SourceResult
from sources.common import SolarsyncError, redact

logger = logging.getLogger("solarsync")

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


def out(text: str = "") -> None:
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


def progress(args: argparse.Namespace) -> str | None:
    return "tqdm" if sys.stderr.isatty() and not args.no_progress else None


def select(names: Sequence[str], *, configured_only: bool) -> list[registry.SourceSpec] | None:
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


def accounts_of(
    specs: Sequence[registry.SourceSpec], wanted: Sequence[str] | None
) -> dict[str, list[Account]] | None:
    """The accounts of each of ``specs`` a command runs (docs/accounts.md): ``--account``
    names (repeatable; ``default`` is ``[sources.<source>]`` itself), else every configured
    account. With ``--account``, sources that have none of the names are left out, and a name
    no source has is a usage error (None, logged) that lists the known accounts."""
    wanted = list(dict.fromkeys(wanted or ()))
    chosen: dict[str, list[Account]] = {}
    try:
        if not wanted:
            return {spec.name: select_accounts(spec, None) for spec in specs}
        known = {spec.name: known_accounts(spec) for spec in specs}
    except SolarsyncError as exc:  # e.g. an account name that cannot be one
        logger.error("%s", redact(exc))
        return None
    for spec in specs:
        names = [n for n in wanted if n in {a.name for a in known[spec.name]}]
        if names:
            chosen[spec.name] = select_accounts(spec, names)
    missing = [n for n in wanted if not any(a.name == n for a in sum(chosen.values(), []))]
    if missing:
        listed = "; ".join(f"{s}: {', '.join(a.name for a in k)}" for s, k in known.items())
        logger.error(
            "no account %s in %s (accounts: %s); name accounts under "
            "[sources.<source>.accounts.<name>] in .dlt/secrets.toml (docs/accounts.md)",
            ", ".join(repr(n) for n in missing),
            ", ".join(known),
            listed,
        )
        return None
    return chosen


def warehouse_of(args: argparse.Namespace) -> Warehouse | None:
    """The destination ``--destination`` / ``--warehouse`` / configuration name (None: usage
    error, already logged)."""
    try:
        return resolve(getattr(args, "destination", None), args.warehouse)
    except SolarsyncError as exc:
        logger.error("%s", redact(exc))
        return None


def exit_code(results: Sequence[SourceResult]) -> int:
    return EXIT_OK if all(r.ok for r in results) else EXIT_FAILED


def print_summary(results: Sequence[SourceResult], warehouse: Warehouse | Path) -> None:
    accounts = len({(r.source, r.account) for r in results})
    sources = len({r.source for r in results})
    what = f"{sources} source(s)" + (f", {accounts} accounts" if accounts > sources else "")
    out(f"solarsync: {what} -> {as_warehouse(warehouse).describe()}")
    for result in results:
        verdict = "ok" if result.ok else "FAILED"
        http = result.http
        out(
            f"  {result.label}: {verdict} in {result.duration_s:.1f}s, "
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


def size(n: int) -> str:
    """Bytes for people, in binary units named as such: 26,214,400 bytes is ``25.0 MiB``."""
    if n < 1024:
        return f"{n} B"
    value = n / 1024
    for unit in ("KiB", "MiB", "GiB"):
        if round(value, 1) < 1024:
            return f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} TiB"
