"""``solarsync status``: checkpoints from dlt state, counts from the warehouse (read-only,
through the destination's :class:`~pipelines.destinations.Reader`), last runs and staleness
from the run history's journal (``pipelines.history``)."""

from __future__ import annotations

import contextlib
from collections.abc import Mapping, Sequence
from typing import Any

from pipelines import history
from pipelines.accounts import Account, select
from pipelines.destinations import Reader, Warehouse
from pipelines.registry import SourceSpec
from pipelines.sync import make_pipeline
from sources.common import redact
from sources.common.accounts import COLUMN, DEFAULT


def _checkpoints(
    spec: SourceSpec, warehouse: Warehouse, account: str = DEFAULT
) -> dict[str, dict[str, Any]]:
    pipeline = make_pipeline(spec.name, warehouse, account=account)
    sources = pipeline.state.get("sources", {})
    resources = (sources.get(spec.name) or {}).get("resources") or {}
    return {name: value for name, value in resources.items() if isinstance(value, dict)}


BLOB_STATUSES = ("stored", "failed", "removed", "skipped", "skipped_deleted")


def _blob_tables(con: Reader, schema: str, existing: set[str]) -> list[dict[str, Any]]:
    """Per table of files copied to a blob store (a ``status`` column, and ``blob_path`` or a
    name ending in ``attachments``): rows per status and the bytes stored."""
    out = []
    for table in sorted(existing):
        columns = set(con.columns(schema, table))
        if "status" not in columns or not ("blob_path" in columns or table.endswith("attachments")):
            continue
        size = "bytes_stored" if "bytes_stored" in columns else "null"
        counts = dict.fromkeys(BLOB_STATUSES, 0)
        stored_bytes = 0
        for status, n, size_sum in con.rows(
            f'select status, count(*), sum({size}) from "{schema}"."{table}" group by status'
        ):
            counts[str(status)] = n
            if status == "stored":
                stored_bytes = int(size_sum or 0)
        out.append({"name": table, "counts": counts, "bytes": stored_bytes})
    return out


def _published_at(con: Reader) -> str | None:
    """When the snapshot readers see was published (``solarsync.snapshot``, written by the
    DuckDB destination's publish); None where a destination has no such table."""
    if "snapshot" not in con.tables("solarsync"):
        return None
    row = con.rows("select max(published_at) from solarsync.snapshot")
    return str(row[0][0]) if row and row[0][0] is not None else None


def _account_rows(
    con: Reader | None, spec: SourceSpec, existing: set[str]
) -> dict[tuple[str, str], tuple[int, int | None]]:
    """``{(table, account): (rows, deleted)}`` of the tables that have the account column."""
    out: dict[tuple[str, str], tuple[int, int | None]] = {}
    if con is None:
        return out
    for table in spec.resources:
        if table not in existing:
            continue
        columns = set(con.columns(spec.name, table))
        if COLUMN not in columns:
            continue
        deleted_expr = "count(deleted_at)" if "deleted_at" in columns else "null"
        for account, rows, deleted in con.rows(
            f'select "{COLUMN}", count(*), {deleted_expr} from "{spec.name}"."{table}" '
            f'group by "{COLUMN}"'
        ):
            out[(table, str(account))] = (rows, deleted)
    return out


def collect_status(
    specs: Sequence[SourceSpec],
    warehouse: Warehouse,
    accounts: Mapping[str, Sequence[Account]] | None = None,
) -> dict[str, Any]:
    """Per source: its last load, health, tables (rows over every account) and, when it has
    named accounts (or ``accounts`` names some), ``accounts``: each one's health, rows and
    checkpoints (docs/accounts.md)."""
    report: dict[str, Any] = {"sources": [], "journal": str(history.journal_path())}
    accounts = dict(accounts or {})
    for spec in specs:
        if spec.name not in accounts:
            accounts[spec.name] = select(spec, None)
    wanted: list[Any] = [spec.name for spec in specs]
    wanted += [(a.source, a.name) for chosen in accounts.values() for a in chosen]
    runs = history.last_runs(wanted)
    with contextlib.ExitStack() as stack:
        con: Reader | None = None
        try:
            con = stack.enter_context(warehouse.reader())
        except Exception as exc:  # a BI tool holding the file, a server down: checkpoints only
            report["warning"] = f"warehouse not readable now ({redact(exc)}); counts omitted"
        report["published_at"] = _published_at(con) if con is not None else None
        for spec in specs:
            checkpoints = _checkpoints(spec, warehouse)
            entry: dict[str, Any] = {
                "name": spec.name,
                "last_load": None,
                "published_at": report["published_at"],
                "tables": [],
            }
            entry["health"] = history.health(spec.name, *runs[spec.name])
            existing: set[str] = set()
            if con is not None:
                existing = con.tables(spec.name)
                if "_dlt_loads" in existing:
                    ((last,),) = con.rows(
                        f'select max(inserted_at) from "{spec.name}"._dlt_loads where status = 0'
                    )
                    entry["last_load"] = str(last) if last else None
            for table in spec.resources:
                rows = deleted = None
                if con is not None and table in existing:
                    columns = set(con.columns(spec.name, table))
                    deleted_expr = "count(deleted_at)" if "deleted_at" in columns else "null"
                    ((rows, deleted),) = con.rows(
                        f'select count(*), {deleted_expr} from "{spec.name}"."{table}"'
                    )
                state = checkpoints.get(table, {})
                entry["tables"].append(
                    {
                        "name": table,
                        "rows": rows,
                        "deleted": deleted,
                        "checkpoint": state.get("checkpoint"),
                        "last_sync": (state.get("last_sync") or {}).get("until"),
                    }
                )
            entry["blobs"] = _blob_tables(con, spec.name, existing) if con is not None else []
            chosen = accounts.get(spec.name) or []
            if any(not a.is_default for a in chosen):
                per_table = _account_rows(con, spec, existing)
                entry["accounts"] = []
                for account in chosen:
                    marks = _checkpoints(spec, warehouse, account.name)
                    tables = []
                    for table in spec.resources:
                        rows, deleted = per_table.get((table, account.name), (None, None))
                        if con is not None and table in existing and rows is None:
                            rows, deleted = 0, None
                        state = marks.get(table, {})
                        tables.append(
                            {
                                "name": table,
                                "rows": rows,
                                "deleted": deleted,
                                "checkpoint": state.get("checkpoint"),
                                "last_sync": (state.get("last_sync") or {}).get("until"),
                            }
                        )
                    entry["accounts"].append(
                        {
                            "name": account.name,
                            "health": history.health(spec.name, *runs[(spec.name, account.name)]),
                            "tables": tables,
                        }
                    )
            report["sources"].append(entry)
    return report
