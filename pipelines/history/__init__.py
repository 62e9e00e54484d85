"""Run history: one row per run of a source's account (``run``, ``backfill``, each loaded
``poll`` batch), failed runs included; ``account`` names the account (docs/accounts.md).

A row is written FIRST, at the end of every run, to a local append-only journal, ``<dlt data
dir>/solarsync/sync_runs.jsonl`` (one JSON object a line, fsynced, next to the pipelines'
working dirs), so it is never lost to a locked warehouse, a BI reader or a destination outage.
THEN, once per command (after all its sources ran; per poll batch at most every minute), the
rows the destination has not seen are loaded through dlt and the destination seam (pipeline
``solarsync_history``, dataset ``solarsync``, tables ``sync_runs`` keyed by ``run_id`` and
``sync_run_tables`` keyed by ``run_id, table_name``; merge/upsert, so a row loaded twice stays
one row on any dlt destination). How far each journal was loaded into each destination
location is kept in that pipeline's dlt state; rows a failed load left go with the next load.

``solarsync status`` reads the journal (local, never blocked); the report and BI tools read
``analytics.sync_runs`` / ``analytics.sync_run_tables`` (``warehouse/views/solarsync.sql``).

Layout: this module builds the rows (``make_row``, ``record_run``, ``PollHistory``);
``jsonl`` is the journal file, ``load`` its load through dlt, ``health`` the staleness.
"""

from __future__ import annotations

import logging
import os
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from pipelines.destinations import Warehouse, as_warehouse
from pipelines.history.health import (
    DEFAULT_EXPECTED_INTERVAL,
    age,
    expected_interval,
    health,
    now_utc,
    when,
)
from pipelines.history.jsonl import (
    JOURNAL_NAME,
    append,
    journal_id,
    journal_path,
    last_runs,
    read,
    read_newest_first,
)
from pipelines.history.load import DATASET_NAME, PIPELINE_NAME, VIEWS, load, load_into
from sources.common import redact, stats_for
from sources.common.accounts import DEFAULT, scope

logger = logging.getLogger("solarsync")

__all__ = [
    "DATASET_NAME",
    "DEFAULT_EXPECTED_INTERVAL",
    "JOURNAL_NAME",
    "PIPELINE_NAME",
    "PollHistory",
    "VIEWS",
    "age",
    "append",
    "expected_interval",
    "health",
    "journal",
    "journal_id",
    "journal_path",
    "last_runs",
    "load",
    "load_into",
    "make_row",
    "read",
    "read_newest_first",
    "record_run",
    "when",
]


def make_row(
    result: Any,
    *,
    command: str,
    started_at: datetime,
    finished_at: datetime,
    destination: str,
    ok: bool | None = None,
    rows: dict[str, int] | None = None,
    changes: dict[str, dict[str, int]] | None = None,
    http: dict[str, int] | None = None,
    warnings: Sequence[str] | None = None,
    error: str | None = None,
    polls: tuple[int, int] | None = None,
) -> dict[str, Any]:
    """The journal row of one run of ``result`` (a ``SourceResult``); keyword arguments
    override what the result says (a poll batch reports its own share)."""
    ok = result.ok if ok is None else ok
    rows = result.rows if rows is None else rows
    changes = result.changes if changes is None else changes
    http = result.http if http is None else http
    warnings = result.warnings if warnings is None else warnings
    error = result.error if error is None else error
    tables = []
    for table in sorted(set(rows) | set(changes)):
        change = changes.get(table) or {}
        tables.append(
            {
                "table_name": table,
                "rows": rows.get(table),
                "new": change.get("new"),
                "updated": change.get("updated"),
                "deleted": change.get("deleted"),
            }
        )
    account = getattr(result, "account", DEFAULT)
    who = result.source if account == DEFAULT else f"{result.source}__{account}"
    return {
        "run_id": f"{who}-{started_at:%Y%m%dT%H%M%S%fZ}-{uuid.uuid4().hex[:8]}",
        "source": result.source,
        "account": account,
        "command": command,
        "started_at": started_at.isoformat(),
        "finished_at": finished_at.isoformat(),
        "duration_s": round((finished_at - started_at).total_seconds(), 3),
        "status": "ok" if ok else "failed",
        "error_class": None if ok else (getattr(result, "error_class", None) or None),
        "error_message": None if ok or not error else redact(error),
        "requests": int(http.get("requests", 0)),
        "rate_limited": int(http.get("rate_limited", 0)),
        "retries": int(http.get("retries", 0)),
        "warnings": [redact(w) for w in warnings],
        "polls": polls[0] if polls else None,
        "failed_polls": polls[1] if polls else None,
        "destination": destination,
        "tables": tables,
    }


# --------------------------------------------------------------------------- the journal


def journal(row: dict[str, Any]) -> None:
    """Append ``row`` to the journal; never raises (history must not fail a sync)."""
    try:
        append(row)
    except Exception as exc:
        logger.error("run history: could not write the journal %s: %s", journal_path(), exc)


def record_run(
    result: Any, *, command: str, started_at: datetime, warehouse: Warehouse | str | os.PathLike
) -> dict[str, Any]:
    """Journal the row of a finished ``run``/``backfill`` (a ``SourceResult``); the command
    loads it into the warehouse after its runs (:func:`load_into`)."""
    row = make_row(
        result,
        command=command,
        started_at=started_at,
        finished_at=now_utc(),
        destination=as_warehouse(warehouse).kind,
    )
    journal(row)
    return row


@dataclass
class PollHistory:
    """``solarsync poll``: a row per loaded batch (its share of rows, requests and polls) and
    a failed row at the end when the poll stopped on an error or its last polls failed. The
    rows are loaded into the warehouse with a batch at most every ``load_every`` seconds, and
    at the end."""

    source: str
    warehouse: Warehouse
    account: str = DEFAULT
    mark: datetime = field(default_factory=now_utc)
    rows: dict[str, int] = field(default_factory=dict)
    http: dict[str, int] = field(default_factory=dict)
    polls: int = 0
    failed: int = 0
    errors: int = 0
    written: int = 0
    load_every: float = 60.0
    loaded_at: float = field(default_factory=time.monotonic)

    def _row(self, result: Any, *, ok: bool, error: str | None = None) -> dict[str, Any]:
        finished = now_utc()
        rows = {t: n - self.rows.get(t, 0) for t, n in result.rows.items()}
        with scope(self.source, self.account):
            now_http = stats_for(self.source).as_dict()
        http = {k: v - self.http.get(k, 0) for k, v in now_http.items()}
        polls, failed = result.polls - self.polls, result.failed_polls - self.failed
        new_errors = result.poll_errors[self.errors :]
        warnings = list(result.warnings)
        if failed and ok:
            warnings.append(f"{failed} of {polls} poll(s) failed: {new_errors[-1]}")
        row = make_row(
            result,
            command="poll",
            started_at=self.mark,
            finished_at=finished,
            destination=self.warehouse.kind,
            ok=ok,
            rows={t: n for t, n in rows.items() if n},
            changes={},
            http=http,
            warnings=warnings,
            error=error,
            polls=(polls, failed),
        )
        self.mark, self.rows, self.http = finished, dict(result.rows), now_http
        self.polls, self.failed = result.polls, result.failed_polls
        self.errors = len(result.poll_errors)
        self.written += 1
        return row

    def batch(self, result: Any) -> None:
        """After a batch loaded."""
        journal(self._row(result, ok=True))
        if time.monotonic() - self.loaded_at >= self.load_every:
            load_into(self.warehouse)
            self.loaded_at = time.monotonic()

    def finish(self, result: Any) -> None:
        """After the poll ended: a failed row if it ended badly, then load."""
        failed = result.failed_polls - self.failed
        if result.error is not None or failed or not self.written:
            ok = result.error is None and not failed and result.polls > self.polls
            error = result.error or (result.poll_errors[-1] if failed else None)
            journal(self._row(result, ok=ok, error=error))
        load_into(self.warehouse)


# --------------------------------------------------------------------------- health
