"""Scenario group 5: the SolarKnock backfill into Postgres vs into DuckDB, in the same run,
against the same sandbox: ``solarsync --destination <d> run solarknock`` from a fresh working
dir, wall time, rows/s and peak RSS of the solarsync process tree (the Postgres server's own
memory is not in it; DuckDB's is, since it runs inside solarsync).

The Postgres server: ``SOLARSYNC_BENCH_POSTGRES`` (a superuser connection string; a fresh
database is created in it) or one started from PyPI with ``pgserver`` (a dev dependency), on a
unix socket in the bench's temp dir.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from bench.proc import measure

QUICK = {"knocks": 50_000, "leads": 10_000}
FULL = {"knocks": 200_000, "leads": 50_000}


def _server(workdir: Path) -> tuple[str, Any]:
    """(admin connection string, pgserver handle or None)."""
    configured = os.environ.get("SOLARSYNC_BENCH_POSTGRES")
    if configured:
        return configured, None
    import pgserver

    server = pgserver.get_server(workdir / "pgdata", cleanup_mode="delete")
    parts = urlsplit(server.get_uri())
    return urlunsplit((parts.scheme, "postgres:bench@localhost", "/postgres", parts.query, "")), (
        server
    )


def _database(admin: str) -> str:
    import psycopg2

    name = f"solarsync_bench_{uuid.uuid4().hex[:8]}"
    connection = psycopg2.connect(admin)
    connection.autocommit = True
    with connection.cursor() as cursor:
        cursor.execute(f"CREATE DATABASE {name}")
    connection.close()
    parts = urlsplit(admin)
    return urlunsplit((parts.scheme, parts.netloc, f"/{name}", parts.query, ""))


def _count(dsn: str, table: str) -> int | None:
    try:
        import psycopg2

        connection = psycopg2.connect(dsn)
        with connection.cursor() as cursor:
            cursor.execute(f"select count(*) from {table}")
            return cursor.fetchone()[0]
    except Exception:
        return None


def scenario_destinations(bench: Any, results: dict[str, Any]) -> None:
    from bench.cli import count_rows, log, run_summary, sandbox, served

    counts = FULL if bench.full else QUICK
    out: dict[str, Any] = {"counts": counts, "runs": {}}
    results["destinations"] = out
    admin, server = _server(bench.workdir)
    try:
        with sandbox(counts) as sb:
            out["source_rows"] = sum(sb.stats()["rows"].values())
            for destination in ("duckdb", "postgres"):
                log(f"5. backfill into {destination}")
                run_dir = bench.run_dir(f"destination-{destination}")
                extra = {}
                if destination == "postgres":
                    dsn = _database(admin)
                    extra["DESTINATION__POSTGRES__CREDENTIALS"] = dsn
                sb.clear_requests()
                m = measure(
                    [*bench.solarsync, "--destination", destination, "run", "solarknock"],
                    env=bench.env(run_dir, sb.base_url, **extra),
                    cwd=run_dir,
                    timeout_s=1800,
                    log_name=f"destination-{destination}",
                )
                run = run_summary(m, served(sb))
                run["warehouse_knocks"] = (
                    _count(dsn, "solarknock.knocks")
                    if destination == "postgres"
                    else count_rows(run_dir / "warehouse.duckdb", "solarknock.knocks")
                )
                out["runs"][destination] = run
                log(
                    f"   {run['wall_s']}s, {run['rows_per_s']} rows/s, {run['peak_rss_mb']} MB "
                    f"{run['error'] or ''}"
                )
    finally:
        if server is not None:
            server.cleanup()
    duck, pg = out["runs"].get("duckdb", {}), out["runs"].get("postgres", {})
    if duck.get("wall_s") and pg.get("wall_s"):
        out["postgres_time_ratio"] = round(pg["wall_s"] / duck["wall_s"], 2)


def render_destinations(results: dict[str, Any]) -> list[str]:
    s = results.get("destinations")
    if not s:
        return []
    counts = ", ".join(f"{v:,} {k}" for k, v in s["counts"].items())
    lines = [f"5. Backfill by destination ({counts}; {s.get('source_rows', 0):,} rows served)"]
    head = f"   {'destination':<12}{'wall s':>8}{'rows/s':>10}{'peak RSS MB':>13}{'knocks':>9}"
    lines += [head, "   " + "-" * (len(head) - 3)]
    for destination, run in s["runs"].items():
        lines.append(
            f"   {destination:<12}{run['wall_s']:>8}{run['rows_per_s'] or 0:>10,.0f}"
            f"{run['peak_rss_mb']:>13}{run.get('warehouse_knocks') or '-':>9}"
            + (f"  ! {run['error'][:80]}" if run.get("error") else "")
        )
    if s.get("postgres_time_ratio"):
        lines.append(f"   Postgres takes {s['postgres_time_ratio']}x DuckDB's wall time")
    lines.append("")
    return lines
