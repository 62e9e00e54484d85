"""``solarsync status``: checkpoints from dlt state, counts from the warehouse (read-only,
through the destination's :class:`~pipelines.destinations.Reader`), last runs and staleness
from the run history's journal (``pipelines.history``)."""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from typing import Any

from pipelines import history
from pipelines.destinations import Reader, Warehouse
from pipelines.registry import SourceSpec
from pipelines.sync import make_pipeline
from sources.common import redact


def _checkpoints(spec: SourceSpec, warehouse: Warehouse) -> dict[str, dict[str, Any]]:
    pipeline = make_pipeline(spec.name, warehouse)
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


def collect_status(specs: Sequence[SourceSpec], warehouse: Warehouse) -> dict[str, Any]:
    report: dict[str, Any] = {"sources": [], "journal": str(history.journal_path())}
    runs = history.last_runs(spec.name for spec in specs)
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
            report["sources"].append(entry)
    return report
