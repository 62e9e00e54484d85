"""What publishing the analytics views costs Postgres and the BI readers on it.

``python -m bench.pg_views``: against a Postgres of its own (``pgserver``, or
``SOLARSYNC_BENCH_POSTGRES``, a superuser connection string), with the HEAT and SolarKnock
sandboxes, in one process:

1. a first run of each source (every view created), then a second run with nothing changed:
   the DDL statements each publish executed (counted by an event trigger on the server, by
   command tag) and the publish's wall time;
2. the second-run case again while a BI session holds ``analytics.knocks`` in an open
   transaction (released after ``--hold`` seconds): how long the publish waited;
3. a HEAT run after the API added a site field (``heat_sites`` changes) while a BI session holds
   ``analytics.heat_sites``: how long the publish waited, and what a non-owner role with
   SELECT on the views can still read afterwards.

The numbers are what docs/destinations/postgres.md quotes. Nothing here is a pass/fail test.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

READER = "bench_bi_reader"
EVENT_LOG = """
CREATE SCHEMA bench_ddl;
CREATE TABLE bench_ddl.log (at timestamptz default clock_timestamp(), tag text, object text);
CREATE FUNCTION bench_ddl.on_ddl() RETURNS event_trigger LANGUAGE plpgsql AS $$
DECLARE r record;
BEGIN
  FOR r IN SELECT * FROM pg_event_trigger_ddl_commands() LOOP
    INSERT INTO bench_ddl.log (tag, object) VALUES (r.command_tag, r.object_identity);
  END LOOP;
END $$;
CREATE FUNCTION bench_ddl.on_drop() RETURNS event_trigger LANGUAGE plpgsql AS $$
DECLARE r record;
BEGIN
  FOR r IN SELECT * FROM pg_event_trigger_dropped_objects() WHERE original LOOP
    INSERT INTO bench_ddl.log (tag, object) VALUES ('DROP ' || r.object_type, r.object_identity);
  END LOOP;
END $$;
CREATE EVENT TRIGGER bench_ddl_end ON ddl_command_end EXECUTE FUNCTION bench_ddl.on_ddl();
CREATE EVENT TRIGGER bench_ddl_drop ON sql_drop EXECUTE FUNCTION bench_ddl.on_drop();
GRANT USAGE ON SCHEMA bench_ddl TO PUBLIC;
GRANT INSERT ON bench_ddl.log TO PUBLIC;
"""


def log(message: str) -> None:
    print(f"[pg_views {time.strftime('%H:%M:%S')}] {message}", flush=True)


@contextlib.contextmanager
def server(workdir: Path) -> Iterator[str]:
    configured = os.environ.get("SOLARSYNC_BENCH_POSTGRES")
    if configured:
        yield configured
        return
    import pgserver

    handle = pgserver.get_server(workdir / "pgdata", cleanup_mode="delete")
    parts = urlsplit(handle.get_uri())
    try:
        yield urlunsplit((parts.scheme, "postgres:bench@localhost", "/postgres", parts.query, ""))
    finally:
        handle.cleanup()


def connect(dsn: str, autocommit: bool = True) -> Any:
    import psycopg2

    connection = psycopg2.connect(dsn)
    connection.autocommit = autocommit
    return connection


def execute(dsn: str, sql: str) -> list[tuple]:
    connection = connect(dsn)
    try:
        with connection.cursor() as cursor:
            cursor.execute(sql)
            return cursor.fetchall() if cursor.description else []
    finally:
        connection.close()


def database(admin: str) -> str:
    name = f"solarsync_bench_{uuid.uuid4().hex[:8]}"
    execute(admin, f"CREATE DATABASE {name}")
    parts = urlsplit(admin)
    dsn = urlunsplit((parts.scheme, parts.netloc, f"/{name}", parts.query, ""))
    execute(dsn, EVENT_LOG)
    found = execute(admin, f"select 1 from pg_roles where rolname = '{READER}'")
    if not found:
        execute(admin, f"CREATE ROLE {READER} LOGIN")
    return dsn


class Timed:
    """Wraps ``warehouse.publish``: the wall time of each call and the DDL it caused."""

    def __init__(self, warehouse: Any, dsn: str) -> None:
        self.warehouse, self.dsn = warehouse, dsn
        self.calls: list[dict[str, Any]] = []
        original = warehouse.publish

        def publish(pipeline: Any, source: str) -> list[str]:
            before = execute(dsn, "select count(*) from bench_ddl.log")[0][0]
            started = time.perf_counter()
            try:
                return original(pipeline, source)
            finally:
                seconds = time.perf_counter() - started
                rows = execute(
                    dsn, f"select tag, object from bench_ddl.log order by at offset {before}"
                )
                self.calls.append(
                    {
                        "source": source,
                        "seconds": round(seconds, 3),
                        "ddl": len(rows),
                        "ddl_on_analytics": sum(1 for _, o in rows if "analytics." in (o or "")),
                        "tags": _tally(tag for tag, _ in rows),
                        "statements": [f"{tag} {o}" for tag, o in rows][:20],
                    }
                )

        warehouse.publish = publish

    def last(self, source: str) -> dict[str, Any]:
        return next(c for c in reversed(self.calls) if c["source"] == source)


def _tally(tags: Any) -> dict[str, int]:
    out: dict[str, int] = {}
    for tag in tags:
        out[tag] = out.get(tag, 0) + 1
    return out


@contextlib.contextmanager
def bi_transaction(dsn: str, view: str, hold_s: float) -> Iterator[dict[str, Any]]:
    """A BI session reading ``view`` in an open transaction, for ``hold_s`` seconds at most;
    a second session starts a fresh read of ``view`` every 0.2 s and records how long each
    waited (readers queued behind DDL)."""
    holder = connect(dsn, autocommit=False)
    with holder.cursor() as cursor:
        cursor.execute(f"select count(*) from {view}")
    stop = threading.Event()
    waits: list[float] = []

    def reader() -> None:
        other = connect(dsn)
        try:
            while not stop.is_set():
                started = time.perf_counter()
                with other.cursor() as cursor:
                    cursor.execute(f"select count(*) from {view}")
                waits.append(time.perf_counter() - started)
                stop.wait(0.2)
        finally:
            other.close()

    release = threading.Timer(hold_s, holder.rollback)
    release.start()
    thread = threading.Thread(target=reader, daemon=True)
    thread.start()
    out: dict[str, Any] = {"reader_waits": waits}
    try:
        yield out
    finally:
        stop.set()
        thread.join(30)
        release.cancel()
        with contextlib.suppress(Exception):
            holder.rollback()
        holder.close()
        out["slowest_reader_s"] = round(max(waits), 3) if waits else None
        out["readers"] = len(waits)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.pg_views")
    parser.add_argument("--hold", type=float, default=20.0, help="BI transaction length (s)")
    parser.add_argument("--out", type=Path, default=None, help="write the numbers as JSON")
    args = parser.parse_args(argv)

    os.environ.setdefault("RUNTIME__DLTHUB_TELEMETRY", "false")
    workdir = Path(tempfile.mkdtemp(prefix="solarsync-pg-views-"))
    os.environ["DLT_DATA_DIR"] = str(workdir / "dlt")
    from pipelines.destinations.postgres import PostgresWarehouse
    from pipelines.registry import get
    from pipelines.sync import run_source
    from sandbox.heat import HeatSandbox
    from sandbox.solarknock import SolarKnockSandbox

    results: dict[str, Any] = {}
    with (
        server(workdir) as admin,
        HeatSandbox(seed=3, api_key="agk_b.ags_BENCH", sites=4) as heat,
        SolarKnockSandbox(seed=7, api_key="sk_BENCH", counts={"knocks": 700}) as sk,
    ):
        dsn = database(admin)
        os.environ.update(
            {
                "DESTINATION__POSTGRES__CREDENTIALS": dsn,
                "DESTINATION__POSTGRES__READERS": json.dumps([READER]),
                "SOURCES__HEAT__BASE_URL": heat.base_url,
                "SOURCES__HEAT__API_KEY": "agk_b.ags_BENCH",
                "SOURCES__SOLARKNOCK__BASE_URL": sk.base_url,
                "SOURCES__SOLARKNOCK__API_KEY": "sk_BENCH",
            }
        )
        warehouse = PostgresWarehouse.from_config()
        timed = Timed(warehouse, dsn)

        def run(source: str) -> dict[str, Any]:
            result = run_source(get(source), warehouse)
            call = dict(timed.last(source))
            call.update(ok=result.ok, error=result.error, warnings=list(result.warnings))
            return call

        for source in ("heat", "solarknock"):
            results[f"{source} first run"] = run(source)
        # what a DBA does for a BI role (besides [destination.postgres] readers)
        execute(dsn, f"GRANT USAGE ON SCHEMA analytics TO {READER}")
        execute(dsn, f"GRANT SELECT ON ALL TABLES IN SCHEMA analytics TO {READER}")
        for source in ("heat", "solarknock"):
            results[f"{source} nothing changed"] = run(source)
            log(f"{source}: {results[f'{source} nothing changed']}")
        with bi_transaction(dsn, "analytics.knocks", args.hold) as bi:
            results["solarknock, BI holds analytics.knocks"] = run("solarknock")
        results["solarknock, BI holds analytics.knocks"]["bi"] = {
            k: v for k, v in bi.items() if k != "reader_waits"
        }
        log(f"BI holds knocks: {results['solarknock, BI holds analytics.knocks']}")
        for site in heat.site_ids:
            heat.set_site_field(site, "installerName", f"installer of {site}")
        with bi_transaction(dsn, "analytics.heat_sites", args.hold) as bi:
            results["heat, field added, BI holds analytics.heat_sites"] = run("heat")
        entry = results["heat, field added, BI holds analytics.heat_sites"]
        entry["bi"] = {k: v for k, v in bi.items() if k != "reader_waits"}
        readable, denied = [], []
        parts = urlsplit(dsn)
        reader_dsn = urlunsplit(
            (parts.scheme, f"{READER}:x@localhost", parts.path, parts.query, "")
        )
        views = execute(
            dsn,
            "select table_name from information_schema.views where table_schema = 'analytics'",
        )
        for (view,) in views:
            try:
                execute(reader_dsn, f'select count(*) from analytics."{view}"')
                readable.append(view)
            except Exception as exc:
                denied.append(f"{view}: {str(exc).strip().splitlines()[0]}")
        entry["reader_can_read"] = len(readable)
        entry["reader_denied"] = denied
        log(f"heat field added: {entry}")
    print(json.dumps(results, indent=2, default=str))
    if args.out:
        args.out.write_text(json.dumps(results, indent=2, default=str))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
