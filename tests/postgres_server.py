"""A real Postgres for the tests, started once per session.

``SOLARSYNC_TEST_POSTGRES`` (a superuser connection string, e.g. the system's server) is used
when set; otherwise the suite starts its own server from PyPI (``pgserver``: Postgres binaries
in a wheel, listening on a unix socket only, in a temporary directory). Without either, tests
that need Postgres are skipped, except in CI (``CI=true``), where that is a failure.

Each test gets a fresh database (``create_database``); two roles exist for the bad-input tests:
``PASSWORD_USER`` (must log in with ``PASSWORD``: the server asks for it, scram-sha-256) and
``NO_PRIVILEGE_USER`` (may connect, may not create schemas).
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Sequence
from pathlib import Path
from urllib.parse import quote, urlsplit, urlunsplit

PASSWORD_USER = "solarsync_pw"
PASSWORD = "Pg-Secret-4417-xyz"
NO_PRIVILEGE_USER = "solarsync_reader"
NO_PRIVILEGE_PASSWORD = "Pg-Reader-8810-qrs"

DDL_LOG = """
CREATE SCHEMA ddl_log;
CREATE TABLE ddl_log.commands (n bigserial, tag text, object text);
CREATE FUNCTION ddl_log.on_end() RETURNS event_trigger LANGUAGE plpgsql SECURITY DEFINER AS $$
DECLARE r record;
BEGIN
  FOR r IN SELECT * FROM pg_event_trigger_ddl_commands() LOOP
    INSERT INTO ddl_log.commands (tag, object) VALUES (r.command_tag, r.object_identity);
  END LOOP;
END $$;
CREATE FUNCTION ddl_log.on_drop() RETURNS event_trigger LANGUAGE plpgsql SECURITY DEFINER AS $$
DECLARE r record;
BEGIN
  FOR r IN SELECT * FROM pg_event_trigger_dropped_objects() WHERE original LOOP
    INSERT INTO ddl_log.commands (tag, object) VALUES ('DROP ' || r.object_type, r.object_identity);
  END LOOP;
END $$;
CREATE EVENT TRIGGER ddl_log_end ON ddl_command_end EXECUTE FUNCTION ddl_log.on_end();
CREATE EVENT TRIGGER ddl_log_drop ON sql_drop EXECUTE FUNCTION ddl_log.on_drop();
"""


class TestPostgres:
    """One server; ``dsn(database, user, password)`` for connection strings to it."""

    def __init__(self, admin_dsn: str, server: object | None = None) -> None:
        self.admin_dsn = admin_dsn
        self.server = server  # pgserver's handle, when we started it
        parts = urlsplit(admin_dsn)
        self._parts = parts
        self._create_roles()

    def dsn(self, database: str, user: str | None = None, password: str | None = None) -> str:
        parts = self._parts
        user = user or parts.username or "postgres"
        password = password if password is not None else (parts.password or "unused")
        netloc = f"{quote(user)}:{quote(password)}@{parts.hostname or 'localhost'}"
        if parts.port:
            netloc += f":{parts.port}"
        return urlunsplit((parts.scheme, netloc, f"/{database}", parts.query, ""))

    def admin(self, database: str | None = None):
        import psycopg2

        dsn = self.admin_dsn if database is None else self.dsn(database)
        connection = psycopg2.connect(dsn)
        connection.autocommit = True
        return connection

    def execute(self, sql: str, database: str | None = None) -> list[tuple]:
        connection = self.admin(database)
        try:
            with connection.cursor() as cursor:
                cursor.execute(sql)
                return cursor.fetchall() if cursor.description else []
        finally:
            connection.close()

    def create_database(self) -> str:
        name = f"solarsync_t_{uuid.uuid4().hex[:10]}"
        self.execute(f"CREATE DATABASE {name}")
        self.execute(f"GRANT CONNECT ON DATABASE {name} TO {NO_PRIVILEGE_USER}")
        self.execute("REVOKE CREATE ON SCHEMA public FROM PUBLIC", name)
        return name

    def drop_database(self, name: str) -> None:
        self.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")

    def create_role(self, name: str, *, member_of: Sequence[str] = ()) -> str:
        """A login role (trusted on the local socket: no password) for one test."""
        self.execute(f"CREATE ROLE {name} LOGIN")
        for role in member_of:
            self.execute(f"GRANT {role} TO {name}")
        return name

    def drop_role(self, name: str, database: str) -> None:
        """Drop a role :meth:`create_role` made, with what it owns in ``database``."""
        with contextlib.suppress(Exception):
            self.execute(f"DROP OWNED BY {name} CASCADE", database)
        with contextlib.suppress(Exception):
            self.execute(f"DROP ROLE IF EXISTS {name}")

    def log_ddl(self, database: str) -> None:
        """An event trigger recording every DDL command run in ``database`` (any user) into
        ``ddl_log.commands`` (tag, object): what solarsync did to the catalog, seen by the
        server rather than by solarsync."""
        self.execute(DDL_LOG, database)

    def ddl(self, database: str, since: int = 0) -> list[tuple[str, str]]:
        """(command tag, object identity) of the DDL run in ``database``, from ``since`` on."""
        return self.execute(
            f"select tag, coalesce(object, '') from ddl_log.commands where n > {since} order by n",
            database,
        )

    def ddl_count(self, database: str) -> int:
        return self.execute("select coalesce(max(n), 0) from ddl_log.commands", database)[0][0]

    def _create_roles(self) -> None:
        for user, password in (
            (PASSWORD_USER, PASSWORD),
            (NO_PRIVILEGE_USER, NO_PRIVILEGE_PASSWORD),
        ):
            found = self.execute(f"select 1 from pg_roles where rolname = '{user}'")
            verb = "ALTER" if found else "CREATE"
            self.execute(f"{verb} ROLE {user} LOGIN PASSWORD '{password}'")
        # the password user owns nothing but may create schemas in the test databases
        self.execute(f"ALTER ROLE {PASSWORD_USER} CREATEDB")


def _require_password(pgdata: Path) -> None:
    """pgserver trusts every local login: make ours ask for passwords (first matching line)."""
    hba = pgdata / "pg_hba.conf"
    lines = hba.read_text().splitlines()
    ours = [
        f"local all {PASSWORD_USER} scram-sha-256",
        f"local all {NO_PRIVILEGE_USER} scram-sha-256",
    ]
    if ours[0] not in lines:
        hba.write_text("\n".join([*ours, *lines]) + "\n")


def start(base: Path) -> TestPostgres | None:
    """The configured server, or one of our own; None when neither can be had."""
    configured = os.environ.get("SOLARSYNC_TEST_POSTGRES")
    if configured:
        return TestPostgres(configured)
    try:
        import pgserver
    except ImportError:
        return None
    pgdata = base / "pgdata"
    server = pgserver.get_server(pgdata, cleanup_mode="delete")
    _require_password(pgdata)
    uri = server.get_uri()  # postgresql://postgres:@/postgres?host=<socket dir>
    parts = urlsplit(uri)
    admin = urlunsplit((parts.scheme, "postgres:unused@localhost", "/postgres", parts.query, ""))
    pg = TestPostgres(admin, server)
    pg.execute("select pg_reload_conf()")
    return pg
