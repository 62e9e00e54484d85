"""Shared fixtures: isolated dlt dirs per test and a scriptable loopback HTTP server."""

from __future__ import annotations

import contextlib
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


def isolate(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A dlt data dir and warehouse path of its own under ``tmp_path``; no real credentials."""
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


@pytest.fixture(autouse=True)
def isolated_dlt(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every test gets its own dlt data dir and warehouse path; no real credentials leak in."""
    return isolate(tmp_path, monkeypatch)


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


@contextlib.contextmanager
def solarknock_sandbox(monkeypatch: pytest.MonkeyPatch):
    """A SolarKnock sandbox, with the pipeline pointed at it through the documented env vars."""
    from sandbox.solarknock import SolarKnockSandbox

    with SolarKnockSandbox(seed=7, api_key=SK_KEY, counts=SK_COUNTS) as sb:
        monkeypatch.setenv("SOURCES__SOLARKNOCK__API_KEY", SK_KEY)
        monkeypatch.setenv("SOURCES__SOLARKNOCK__BASE_URL", sb.base_url)
        monkeypatch.setenv("SOURCES__SOLARKNOCK__PAGE_SIZE", "100")
        monkeypatch.setenv("SOURCES__SOLARKNOCK__BACKOFF_FACTOR", "0.05")
        yield sb


@pytest.fixture
def sk_sandbox(monkeypatch: pytest.MonkeyPatch):
    """A SolarKnock sandbox, with the pipeline pointed at it through the documented env vars."""
    with solarknock_sandbox(monkeypatch) as sb:
        yield sb


#: destinations the parametrised ``any_warehouse`` fixture covers: each kind ``k`` other than
#: duckdb has a fixture ``<k>_warehouse`` that starts what it needs (S3 server, Postgres)
WAREHOUSE_KINDS = ["duckdb", "postgres", "filesystem", "filesystem_s3"]


@pytest.fixture(params=WAREHOUSE_KINDS)
def any_warehouse(request: pytest.FixtureRequest, tmp_path: Path):
    """A fresh, empty :class:`pipelines.destinations.Warehouse` of each kind."""
    if request.param == "duckdb":
        from pipelines.destinations.duckdb import DuckDBWarehouse

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
    from pipelines.destinations.postgres import PostgresWarehouse

    database = postgres_server.create_database()
    monkeypatch.setenv("DESTINATION__POSTGRES__CREDENTIALS", postgres_server.dsn(database))
    warehouse = PostgresWarehouse.from_config()
    warehouse.database_name = database
    yield warehouse
    postgres_server.drop_database(database)


# --------------------------------------------------------------------------- the Delta lake
S3_ACCESS_KEY = "AKIASOLARSYNCTEST01"
S3_SECRET_KEY = "s3SecretSolarsync/Lake+Key0123456789abcd"


@pytest.fixture
def filesystem_warehouse(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """A fresh Delta lake on local disk, also named by the env (``--destination filesystem``)."""
    from pipelines.destinations.lake import LakeWarehouse

    bucket = tmp_path / "lake"
    monkeypatch.setenv("SOLARSYNC__DESTINATION", "filesystem")
    monkeypatch.setenv("DESTINATION__FILESYSTEM__BUCKET_URL", str(bucket))
    return LakeWarehouse(bucket)


@pytest.fixture(scope="session")
def s3_server():
    """moto's S3 server on 127.0.0.1 (:func:`sandbox.common.s3.moto_server`), started once per
    session. Yields its endpoint URL."""
    from sandbox.common.s3 import moto_server

    with moto_server() as endpoint:
        yield endpoint


def s3_client(endpoint: str):
    import boto3

    return boto3.client(
        "s3",
        endpoint_url=endpoint,
        aws_access_key_id=S3_ACCESS_KEY,
        aws_secret_access_key=S3_SECRET_KEY,
        region_name="us-east-1",
    )


@pytest.fixture
def s3_bucket(s3_server: str, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest):
    """A new, empty bucket on the S3 server, with dlt's credentials for it in the env."""
    import re
    import uuid

    name = re.sub(r"[^a-z0-9-]", "-", request.node.name.lower())[:40].strip("-")
    bucket = f"{name}-{uuid.uuid4().hex[:8]}"
    s3_client(s3_server).create_bucket(Bucket=bucket)
    prefix = "DESTINATION__FILESYSTEM__CREDENTIALS__"
    monkeypatch.setenv(prefix + "AWS_ACCESS_KEY_ID", S3_ACCESS_KEY)
    monkeypatch.setenv(prefix + "AWS_SECRET_ACCESS_KEY", S3_SECRET_KEY)
    monkeypatch.setenv(prefix + "ENDPOINT_URL", s3_server)
    monkeypatch.setenv(prefix + "REGION_NAME", "us-east-1")
    return bucket


@pytest.fixture
def filesystem_s3_warehouse(s3_bucket: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """A fresh Delta lake in an S3 bucket (moto), also named by the env."""
    from pipelines.destinations.lake import LakeWarehouse

    monkeypatch.setenv("SOLARSYNC__DESTINATION", "filesystem")
    monkeypatch.setenv("DESTINATION__FILESYSTEM__BUCKET_URL", f"s3://{s3_bucket}/lake")
    monkeypatch.setenv("SOLARSYNC__LAKE__VIEWS_FILE", str(tmp_path / "lake_views.sql"))
    return LakeWarehouse.from_config()
