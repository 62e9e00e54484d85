"""Shared fixtures: isolated dlt dirs per test and a scriptable loopback HTTP server."""

from __future__ import annotations

import json
import os
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

os.environ.setdefault("RUNTIME__DLTHUB_TELEMETRY", "false")


def _vcr_without_boto3() -> None:
    """vcrpy 9.4 cannot build its boto3 stubs against botocore 1.4x (an MRO error on every
    cassette once botocore is installed, as the S3 lake tests need). solarsync's cassettes
    record requests only: leave boto3 unpatched."""
    try:
        from vcr.patch import CassettePatcherBuilder
    except ImportError:  # pragma: no cover
        return
    CassettePatcherBuilder._boto3 = lambda self: ()


_vcr_without_boto3()


@pytest.fixture(autouse=True)
def isolated_dlt(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every test gets its own dlt data dir and warehouse path; no real credentials leak in."""
    data_dir = tmp_path / "dlt"
    monkeypatch.setenv("DLT_DATA_DIR", str(data_dir))
    monkeypatch.setenv("DESTINATION__DUCKDB__CREDENTIALS", str(tmp_path / "warehouse.duckdb"))
    monkeypatch.setenv("RUNTIME__DLTHUB_TELEMETRY", "false")
    for name in list(os.environ):
        if name.startswith("SOURCES__"):
            monkeypatch.delenv(name)
    from sources.common import reset_stats

    reset_stats()
    return tmp_path


@dataclass
class Seen:
    method: str
    path: str
    headers: dict[str, str]
    at: float


@dataclass
class Reply:
    status: int = 200
    body: Any = None  # dict/list -> JSON; bytes/str sent as is
    headers: dict[str, str] = field(default_factory=dict)
    drop: bool = False  # close the connection without answering


class ScriptedServer:
    """Answers from a queue of :class:`Reply`, then with ``default``; records every request."""

    def __init__(self) -> None:
        self.replies: deque[Reply] = deque()
        self.default = Reply(
            200, {"data": [], "pagination": {"next_cursor": None, "has_more": False}}
        )
        self.seen: list[Seen] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def _answer(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                if length:
                    self.rfile.read(length)
                server.seen.append(
                    Seen(self.command, self.path, dict(self.headers), time.monotonic())
                )
                reply = server.replies.popleft() if server.replies else server.default
                if reply.drop:
                    self.close_connection = True
                    self.connection.shutdown(2)
                    return
                body = reply.body
                if isinstance(body, (dict, list)):
                    payload = json.dumps(body).encode()
                elif isinstance(body, str):
                    payload = body.encode()
                else:
                    payload = body or b""
                self.send_response_only(reply.status)
                if "Date" not in reply.headers:
                    self.send_header("Date", self.date_time_string())
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                for key, value in reply.headers.items():
                    self.send_header(key, value)
                self.end_headers()
                self.wfile.write(payload)

            do_GET = do_POST = do_PATCH = do_PUT = do_DELETE = _answer

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/api"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def queue(self, *replies: Reply) -> None:
        self.replies.extend(replies)

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def scripted() -> ScriptedServer:
    server = ScriptedServer()
    yield server
    server.close()


# --------------------------------------------------------------------------- SolarKnock sandbox
SK_KEY = "sk_SANDBOXKEY42"
SK_COUNTS = {
    "users": 12,
    "knocks": 700,
    "leads": 160,
    "appointments": 60,
    "daily-stats": 120,
    "app-opens": 90,
    "counties": 15,
}
#: endpoint path -> (table, key columns)
SK_TABLES = {
    "users": ("users", ("id",)),
    "knocks": ("knocks", ("id",)),
    "leads": ("leads", ("id",)),
    "appointments": ("appointments", ("id",)),
    "daily-stats": ("daily_stats", ("user_id", "date")),
    "app-opens": ("app_opens", ("user_id", "date")),
    "counties": ("counties", ("county_fips",)),
}


@pytest.fixture
def sk_sandbox(monkeypatch: pytest.MonkeyPatch):
    """A SolarKnock sandbox, with the pipeline pointed at it through the documented env vars."""
    from sandbox.solarknock import SolarKnockSandbox

    with SolarKnockSandbox(seed=7, api_key=SK_KEY, counts=SK_COUNTS) as sb:
        monkeypatch.setenv("SOURCES__SOLARKNOCK__API_KEY", SK_KEY)
        monkeypatch.setenv("SOURCES__SOLARKNOCK__BASE_URL", sb.base_url)
        monkeypatch.setenv("SOURCES__SOLARKNOCK__PAGE_SIZE", "100")
        monkeypatch.setenv("SOURCES__SOLARKNOCK__BACKOFF_FACTOR", "0.05")
        yield sb


#: destinations the parametrised ``any_warehouse`` fixture covers: each kind ``k`` other than
#: duckdb has a fixture ``<k>_warehouse`` that starts what it needs (S3 server, Postgres)
WAREHOUSE_KINDS = ["duckdb", "postgres"]


@pytest.fixture(params=WAREHOUSE_KINDS)
def any_warehouse(request: pytest.FixtureRequest, tmp_path: Path):
    """A fresh, empty :class:`pipelines.destinations.Warehouse` of each kind."""
    if request.param == "duckdb":
        from pipelines.destinations import DuckDBWarehouse

        return DuckDBWarehouse(tmp_path / "warehouse.duckdb")
    return request.getfixturevalue(f"{request.param}_warehouse")


# --------------------------------------------------------------------------- Postgres
@pytest.fixture(scope="session")
def postgres_server():
    """A real Postgres (tests/postgres_server.py): SOLARSYNC_TEST_POSTGRES or pgserver's.

    Its data dir is not under pytest's temp root: another pytest session makes that root
    private again (0o700) and the server, running as another user, would lose its files."""
    import shutil
    import tempfile

    from tests import postgres_server

    base = Path(tempfile.mkdtemp(prefix="solarsync-pg-"))
    server = postgres_server.start(base)
    if server is None:
        message = "no Postgres: install pgserver (dev extra) or set SOLARSYNC_TEST_POSTGRES"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message)
        pytest.skip(message)
    yield server
    if server.server is not None:
        server.server.cleanup()
    shutil.rmtree(base, ignore_errors=True)


@pytest.fixture
def postgres_warehouse(postgres_server, monkeypatch: pytest.MonkeyPatch):
    """A fresh database; ``DESTINATION__POSTGRES__CREDENTIALS`` points at it (for the CLI)."""
    from pipelines.postgres import PostgresWarehouse

    database = postgres_server.create_database()
    monkeypatch.setenv("DESTINATION__POSTGRES__CREDENTIALS", postgres_server.dsn(database))
    warehouse = PostgresWarehouse.from_config()
    warehouse.database_name = database
    yield warehouse
    postgres_server.drop_database(database)
