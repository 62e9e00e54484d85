"""``solarsync status``: checkpoints from dlt state, counts from the warehouse (read-only)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import duckdb

from pipelines.registry import SourceSpec
from pipelines.runner import make_pipeline


def _checkpoints(spec: SourceSpec, warehouse: Path) -> dict[str, dict[str, Any]]:
    pipeline = make_pipeline(spec.name, warehouse)
    sources = pipeline.state.get("sources", {})
    resources = (sources.get(spec.name) or {}).get("resources") or {}
    return {name: value for name, value in resources.items() if isinstance(value, dict)}


BLOB_STATUSES = ("stored", "failed", "removed", "skipped")


def _blob_tables(con: Any, schema: str, existing: set[str]) -> list[dict[str, Any]]:
    """Per table of files copied to a blob store (a ``status`` column, and ``blob_path`` or a
    name ending in ``attachments``): rows per status and the bytes stored."""
    out = []
    for table in sorted(existing):
        columns = {
            r[0]
            for r in con.execute(
                "select column_name from information_schema.columns "
                "where table_schema = ? and table_name = ?",
                [schema, table],
            ).fetchall()
        }
        if "status" not in columns or not ("blob_path" in columns or table.endswith("attachments")):
            continue
        size = "bytes_stored" if "bytes_stored" in columns else "null"
        counts = dict.fromkeys(BLOB_STATUSES, 0)
        stored_bytes = 0
        for status, n, size_sum in con.execute(
            f'select status, count(*), sum({size}) from "{schema}"."{table}" group by status'
        ).fetchall():
            counts[str(status)] = n
            if status == "stored":
                stored_bytes = int(size_sum or 0)
        out.append({"name": table, "counts": counts, "bytes": stored_bytes})
    return out


def collect_status(specs: Sequence[SourceSpec], warehouse: Path) -> dict[str, Any]:
    report: dict[str, Any] = {"sources": []}
    con = None
    if warehouse.exists():
        try:
            con = duckdb.connect(str(warehouse), read_only=True)
        except duckdb.Error as exc:
            report["warning"] = f"warehouse not readable now ({exc}); counts omitted"
    try:
        for spec in specs:
            checkpoints = _checkpoints(spec, warehouse)
            entry: dict[str, Any] = {"name": spec.name, "last_load": None, "tables": []}
            existing: set[str] = set()
            if con is not None:
                existing = {
                    row[0]
                    for row in con.execute(
                        "select table_name from information_schema.tables where table_schema = ?",
                        [spec.name],
                    ).fetchall()
                }
                if "_dlt_loads" in existing:
                    (last,) = con.execute(
                        f'select max(inserted_at) from "{spec.name}"._dlt_loads where status = 0'
                    ).fetchone()
                    entry["last_load"] = str(last) if last else None
            for table in spec.resources:
                rows = deleted = None
                if table in existing:
                    columns = {
                        r[0]
                        for r in con.execute(
                            "select column_name from information_schema.columns "
                            "where table_schema = ? and table_name = ?",
                            [spec.name, table],
                        ).fetchall()
                    }
                    deleted_expr = "count(deleted_at)" if "deleted_at" in columns else "null"
                    rows, deleted = con.execute(
                        f'select count(*), {deleted_expr} from "{spec.name}"."{table}"'
                    ).fetchone()
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
    finally:
        if con is not None:
            con.close()
    return report
