"""Postgres as the warehouse: configuration, two hosts running one source (advisory lock),
bad credentials and privileges (clear error, exit 1, no secret, nothing lost), ``status``."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from pipelines import cli
from pipelines.destinations.postgres import PostgresWarehouse
from sources.common import ConfigurationError
from tests.conftest import SK_KEY
from tests.postgres_server import (
    NO_PRIVILEGE_PASSWORD,
    NO_PRIVILEGE_USER,
    PASSWORD,
    PASSWORD_USER,
)
from tests.sources.solarknock.warehouse_check import assert_equal_to_truth

REPO = Path(__file__).resolve().parents[2]


def run(*args: str) -> int:
    return cli.main(["--no-progress", "--destination", "postgres", *args])


def use(monkeypatch: pytest.MonkeyPatch, dsn: str) -> None:
    monkeypatch.setenv("DESTINATION__POSTGRES__CREDENTIALS", dsn)


# --------------------------------------------------------------------------- configuration
def test_credentials_follow_dlt_and_are_never_shown(monkeypatch):
    monkeypatch.setenv(
        "DESTINATION__POSTGRES__CREDENTIALS", "postgresql://loader:S3cret-pw-991@db.example:6543/bi"
    )
    warehouse = PostgresWarehouse.from_config()
    assert warehouse.describe() == "postgres loader@db.example:6543/bi"
    assert "S3cret-pw-991" not in repr(warehouse)
    monkeypatch.delenv("DESTINATION__POSTGRES__CREDENTIALS")
    for key, value in {
        "HOST": "db2.example",
        "DATABASE": "warehouse",
        "USERNAME": "etl",
        "PASSWORD": "S3cret-pw-992",
    }.items():
        monkeypatch.setenv(f"DESTINATION__POSTGRES__CREDENTIALS__{key}", value)
    assert PostgresWarehouse.from_config().describe() == "postgres etl@db2.example:5432/warehouse"


def test_missing_credentials_is_a_usage_error(monkeypatch, capsys, isolated_dlt):
    monkeypatch.chdir(isolated_dlt)  # no .dlt/secrets.toml here
    with pytest.raises(ConfigurationError, match="destination postgres: no Postgres connection"):
        PostgresWarehouse.from_config()
    assert run("run", "solarknock") == 2
    assert "DESTINATION__POSTGRES__CREDENTIALS" in capsys.readouterr().err


# --------------------------------------------------------------------------- two hosts, one lock
def _solarsync(workdir: Path, env: dict[str, str], *args: str) -> subprocess.Popen:
    workdir.mkdir(parents=True, exist_ok=True)
    return subprocess.Popen(
        [sys.executable, "-m", "pipelines", "--no-progress", "--destination", "postgres", *args],
        cwd=workdir,
        env={**env, "DLT_DATA_DIR": str(workdir / "dlt"), "PYTHONPATH": str(REPO)},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def test_a_second_host_does_not_load_while_the_first_holds_the_source(
    sk_sandbox, postgres_warehouse, tmp_path
):
    """Two working dirs (two cron hosts) against one database: while host A's run is held
    by a slow API, host B's run of the same source exits 1 naming the lock holder, having
    made no request. A is killed -9: Postgres drops its lock with its connection, and B's
    next run loads everything, exactly once."""
    entered, release = threading.Event(), threading.Event()

    def slow(sb, info):
        entered.set()
        release.wait(60)

    sk_sandbox.on_request(slow)
    env = dict(os.environ)
    host_a = _solarsync(tmp_path / "host-a", env, "run", "solarknock")
    try:
        assert entered.wait(60), "host A never reached the API"
        requests = sk_sandbox.count_requests()
        host_b = _solarsync(tmp_path / "host-b", env, "run", "solarknock")
        out, _ = host_b.communicate(timeout=60)
        assert host_b.returncode == 1, out
        assert "another solarsync process is loading this source into postgres" in out, out
        assert f"solarsync solarknock on {socket.gethostname()} pid {host_a.pid}" in out, out
        assert sk_sandbox.count_requests() == requests  # B read nothing from the API
    finally:
        host_a.send_signal(signal.SIGKILL)
        host_a.wait()
        release.set()
    sk_sandbox.on_request(None)

    host_b = _solarsync(tmp_path / "host-b", env, "run", "solarknock")
    out, _ = host_b.communicate(timeout=180)
    assert host_b.returncode == 0, out
    assert_equal_to_truth(sk_sandbox, postgres_warehouse)
    with postgres_warehouse.reader() as reader:
        assert reader.rows("select count(*) from solarknock.knocks") == [(700,)]


# --------------------------------------------------------------------------- bad input
def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize(
    "case, expected",
    [
        ("wrong password", "login refused for user 'solarsync_pw'"),
        ("unreachable host", "cannot reach the server at postgres solarsync_pw@127.0.0.1"),
        ("missing database", "database 'solarsync_no_such_db' does not exist"),
    ],
)
def test_bad_connection_settings_fail_clearly_and_lose_nothing(
    case, expected, sk_sandbox, postgres_warehouse, postgres_server, monkeypatch, capsys
):
    database = postgres_warehouse.database_name
    postgres_server.execute(f"GRANT CREATE ON DATABASE {database} TO {PASSWORD_USER}")
    wrong = "Wrong-Pg-Password-5150"
    bad = {
        "wrong password": postgres_server.dsn(database, PASSWORD_USER, wrong),
        "unreachable host": f"postgresql://{PASSWORD_USER}:{wrong}@127.0.0.1:{_closed_port()}"
        f"/{database}?connect_timeout=3",
        "missing database": postgres_server.dsn("solarsync_no_such_db", PASSWORD_USER, PASSWORD),
    }[case]
    use(monkeypatch, bad)
    assert run("-v", "run", "solarknock") == 1
    out, err = capsys.readouterr()
    assert "destination postgres: " + expected in out, out
    for secret in (wrong, PASSWORD, SK_KEY):
        assert secret not in out + err
    use(monkeypatch, postgres_server.dsn(database, PASSWORD_USER, PASSWORD))
    assert run("run", "solarknock") == 0
    assert_equal_to_truth(sk_sandbox, postgres_warehouse)


def test_missing_schema_privileges_fail_clearly_and_the_next_run_loads_it_all(
    sk_sandbox, postgres_warehouse, postgres_server, monkeypatch, capsys
):
    database = postgres_warehouse.database_name
    use(monkeypatch, postgres_server.dsn(database, NO_PRIVILEGE_USER, NO_PRIVILEGE_PASSWORD))
    assert run("run", "solarknock") == 1
    out, err = capsys.readouterr()
    assert f"destination postgres: user '{NO_PRIVILEGE_USER}' lacks a privilege" in out, out
    assert f"GRANT CREATE ON DATABASE {database} TO {NO_PRIVILEGE_USER}" in out
    assert NO_PRIVILEGE_PASSWORD not in out + err

    postgres_server.execute(f"GRANT CREATE ON DATABASE {database} TO {NO_PRIVILEGE_USER}")
    assert run("run", "solarknock") == 0
    assert "completed 1 package(s) left by an interrupted run" in capsys.readouterr().out
    assert_equal_to_truth(sk_sandbox, postgres_warehouse)


# --------------------------------------------------------------------------- status
def test_backfill_and_status_on_postgres(sk_sandbox, postgres_warehouse, capsys):
    assert run("status", "solarknock") == 0
    assert "(not created yet)" in capsys.readouterr().out
    assert run("run", "solarknock") == 0
    sk_sandbox.update("knocks", 4)
    assert run("backfill", "solarknock", "--resource", "knocks") == 0  # merged, no duplicates
    assert_equal_to_truth(sk_sandbox, postgres_warehouse)
    capsys.readouterr()
    assert run("status", "solarknock") == 0
    out = capsys.readouterr().out
    assert "warehouse: postgres postgres@" in out and "(not created yet)" not in out
    assert "solarknock: last successful load 20" in out
    deleted = sum(1 for r in sk_sandbox.truth("knocks") if r["deleted_at"] is not None)
    knocks = next(line for line in out.splitlines() if line.strip().startswith("knocks "))
    assert knocks.split()[1:3] == ["700", str(deleted)], knocks


def test_a_source_schema_owned_by_someone_else_says_so(
    sk_sandbox, postgres_warehouse, postgres_server, monkeypatch, capsys
):
    """The user may create schemas, but ``solarknock`` exists and belongs to another role: the
    hint names that schema (GRANT CREATE ON DATABASE would not help), nothing is lost."""
    database = postgres_warehouse.database_name
    postgres_server.execute(f"GRANT CREATE ON DATABASE {database} TO {PASSWORD_USER}")
    postgres_server.execute(f"CREATE SCHEMA solarknock AUTHORIZATION {NO_PRIVILEGE_USER}", database)
    use(monkeypatch, postgres_server.dsn(database, PASSWORD_USER, PASSWORD))
    assert run("run", "solarknock") == 1
    out, err = capsys.readouterr()
    assert f"destination postgres: user '{PASSWORD_USER}' lacks a privilege" in out, out
    assert f"ALTER SCHEMA solarknock OWNER TO {PASSWORD_USER}" in out, out
    assert "GRANT CREATE ON DATABASE" not in out
    assert PASSWORD not in out + err

    postgres_server.execute(f"ALTER SCHEMA solarknock OWNER TO {PASSWORD_USER}", database)
    assert run("run", "solarknock") == 0
    assert_equal_to_truth(sk_sandbox, postgres_warehouse)


def test_credentials_as_parts_with_a_unix_socket_directory_as_host(
    sk_sandbox, postgres_warehouse, postgres_server, monkeypatch
):
    """``[destination.postgres.credentials] host = "/run/postgresql"`` (libpq's spelling of a
    socket directory): dlt writes it into the URL's netloc, where libpq ignores it and tries
    its default socket; solarsync passes it as ``?host=`` so the run reaches that server."""
    from urllib.parse import parse_qs, urlsplit

    parts = urlsplit(postgres_server.admin_dsn)
    socket_dir = parse_qs(parts.query).get("host", [""])[0]
    if not socket_dir.startswith("/"):
        pytest.skip("the test server is not on a unix socket")
    monkeypatch.delenv("DESTINATION__POSTGRES__CREDENTIALS")
    database = postgres_warehouse.database_name
    postgres_server.execute(f"GRANT CREATE ON DATABASE {database} TO {PASSWORD_USER}")
    for key, value in {
        "HOST": socket_dir,
        "DATABASE": database,
        "USERNAME": PASSWORD_USER,
        "PASSWORD": PASSWORD,
    }.items():
        monkeypatch.setenv(f"DESTINATION__POSTGRES__CREDENTIALS__{key}", value)
    warehouse = PostgresWarehouse.from_config()
    assert warehouse.describe() == f"postgres {PASSWORD_USER}@{socket_dir}/{database}"
    assert run("run", "solarknock") == 0
    assert_equal_to_truth(sk_sandbox, postgres_warehouse)
