"""Postgres: one database server every host and BI tool shares.

- **Configuration**: dlt's own names, ``DESTINATION__POSTGRES__CREDENTIALS``
  (``postgresql://user:password@host:5432/database``) or ``[destination.postgres.credentials]``
  in ``.dlt/secrets.toml``. One schema per source (``solarknock``, ``heat``, ...) plus
  ``analytics`` for the views, as in DuckDB.
- **Loading**: dlt's Postgres destination (``insert_values`` files); merges, soft deletes and
  HEAT's scd2 history are dlt's own SQL, so the rows equal DuckDB's (timestamps
  ``timestamptz``, JSON columns ``jsonb``).
- **Lock**: ``lock(source)`` takes ``pg_try_advisory_lock`` on a dedicated connection held for
  the whole run, so two cron hosts (two working dirs) never load one source at once; the second
  exits with :class:`~sources.common.LockedError`. Postgres drops the lock when the holder's
  connection ends (a killed run never leaves it behind).
- **Views**: ``warehouse/views/<source>.sql`` (DuckDB's dialect), transpiled by
  :mod:`pipelines.views` and created in one transaction after each load: readers see the old
  views or the new ones, never none.
- **Errors**: wrong password, unreachable host, missing database or privileges become a
  :class:`~sources.common.DestinationError` (exit 1) naming ``destination postgres``, what
  happened and what to do, never the password; the extracted data waits in the pipeline's
  working dir and the next run loads it first.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import socket
import zlib
from collections.abc import Iterator, Sequence
from typing import Any, ClassVar

import dlt

from pipelines.destinations import Reader, Warehouse
from sources.common import (
    ConfigurationError,
    DestinationError,
    LockedError,
    SolarsyncError,
    redact,
    register_secret,
)

logger = logging.getLogger("solarsync")

WHERE = "destination postgres"
#: first key of solarsync's advisory locks (the second is the source's): "sols" as an int32
LOCK_NAMESPACE = int.from_bytes(b"sols", "big") - 2**31
CONFIG_HINT = (
    "set DESTINATION__POSTGRES__CREDENTIALS=postgresql://USER:PASSWORD@HOST:5432/DATABASE "
    "or [destination.postgres.credentials] in .dlt/secrets.toml"
)
NOTHING_LOST = "nothing was lost: the next run loads what this one extracted"


def lock_key(source: str) -> int:
    """The advisory lock's second key: a stable int32 of the source name."""
    return zlib.crc32(source.encode()) - 2**31


class _QuietArrowConversion(logging.Filter):
    """dlt warns on every table that Arrow pages are converted to INSERT statements: that is
    the expected path to Postgres (README "Postgres"), not news for each run."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "ArrowToInsertValuesWriter" not in record.getMessage()


_QUIET = _QuietArrowConversion()


class PostgresReader(Reader):
    """Read-only SQL over psycopg2: DuckDB's dialect with ``?`` transpiled to Postgres."""

    dialect: ClassVar[str] = "postgres"

    def rows(self, sql: str, params: Sequence[Any] = ()) -> list[tuple]:
        return self._execute(sql, params)[1]

    def records(self, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
        names, rows = self._execute(sql, params)
        return [dict(zip(names, row, strict=True)) for row in rows]

    def _execute(self, sql: str, params: Sequence[Any]) -> tuple[list[str], list[tuple]]:
        from pipelines.views import to_dbapi

        with self.connection.cursor() as cursor:
            cursor.execute(to_dbapi(sql, self.dialect, bool(params)), list(params) or None)
            if not cursor.description:
                return [], []
            return [d[0] for d in cursor.description], [tuple(r) for r in cursor.fetchall()]


class PostgresWarehouse(Warehouse):
    """A Postgres database (any server dlt's ``postgres`` destination loads)."""

    kind = "postgres"
    dialect = "postgres"
    #: dlt's Postgres loader: INSERT statements built from the Arrow pages. Parquet would need
    #: an ADBC driver and loads JSON columns as ``json`` (not ``jsonb``); dlt's CSV writer
    #: cannot write the pages' nested (JSON) columns.
    loader_file_format = "insert_values"

    def __init__(self, credentials: Any) -> None:
        host = getattr(credentials, "host", None)
        if isinstance(host, str) and host.startswith("/"):
            # a unix socket directory as ``host = "/run/postgresql"`` (libpq's spelling):
            # dlt puts it in the URL's netloc, where libpq ignores it; ``?host=`` keeps it
            credentials.query = {**(credentials.query or {}), "host": host}
            credentials.host = "localhost"
        self.credentials = credentials
        register_secret(getattr(credentials, "password", None))
        if _QUIET not in logging.getLogger("dlt").filters:
            logging.getLogger("dlt").addFilter(_QUIET)

    @classmethod
    def from_config(cls) -> PostgresWarehouse:
        """dlt's configuration: ``DESTINATION__POSTGRES__CREDENTIALS`` (a connection string, or
        ``...__CREDENTIALS__HOST`` etc.) or ``[destination.postgres.credentials]``."""
        from dlt.common.configuration.exceptions import ConfigurationException

        factory = dlt.destinations.postgres()
        try:
            config = factory.configuration(factory.spec()._bind_dataset_name(dataset_name="_"))
        except ConfigurationException as exc:
            missing = ", ".join(getattr(exc, "fields", ()) or ()) or "credentials"
            raise ConfigurationError(
                f"no Postgres connection configured (missing {missing})",
                source=WHERE,
                hint=CONFIG_HINT,
            ) from None
        return cls(config.credentials)

    def __repr__(self) -> str:
        return f"PostgresWarehouse({self.describe()!r})"

    # ------------------------------------------------------------------ where
    @property
    def host(self) -> str:
        query = getattr(self.credentials, "query", None) or {}
        return str(query.get("host") or self.credentials.host or "localhost")

    def describe(self) -> str:
        c = self.credentials
        host = self.host
        where = host if host.startswith("/") else f"{host}:{c.port or 5432}"
        return f"postgres {c.username or ''}@{where}/{c.database}"

    def dlt_destination(self) -> Any:
        return dlt.destinations.postgres(credentials=self.credentials)

    def connect(self, *, read_only: bool = False, application_name: str = "solarsync") -> Any:
        """A psycopg2 connection of our own (the lock, the reader, ``exists``)."""
        import psycopg2

        try:
            connection = psycopg2.connect(
                dsn=self.credentials.to_native_representation(),
                application_name=application_name,
            )
        except psycopg2.Error as exc:
            raise self.error(exc) from None
        connection.set_session(readonly=read_only, autocommit=True)
        return connection

    def exists(self) -> bool:
        try:
            connection = self.connect(read_only=True)
        except DestinationError:
            return True  # unknown: status shows why the counts are missing
        try:
            with connection.cursor() as cursor:
                cursor.execute(
                    "select exists (select 1 from information_schema.tables "
                    "where table_name = '_dlt_loads')"
                )
                return bool(cursor.fetchone()[0])
        finally:
            connection.close()

    # ------------------------------------------------------------------ lock
    @contextlib.contextmanager
    def lock(self, source: str) -> Iterator[None]:
        """``pg_try_advisory_lock(solarsync, source)`` on a connection held for the whole run.

        A second run of the source, from any host or working dir, raises :class:`LockedError`.
        Database failures inside the run (privileges, a server gone) become
        :class:`DestinationError`."""
        me = f"solarsync {source} on {socket.gethostname()} pid {os.getpid()}"
        connection = self.connect(application_name=me[:63])
        try:
            with connection.cursor() as cursor:
                cursor.execute(
                    "select pg_try_advisory_lock(%s, %s)", (LOCK_NAMESPACE, lock_key(source))
                )
                (locked,) = cursor.fetchone()
            if not locked:
                holder = self._lock_holder(connection, source)
                raise LockedError(
                    f"another solarsync process is loading this source into "
                    f"{self.describe()}{f' ({holder})' if holder else ''}",
                    source=source,
                    hint="wait for it to finish; the lock is released when its run ends",
                )
            try:
                yield
            except SolarsyncError:
                raise
            except Exception as exc:
                translated = self.error_in(exc)
                if translated is None:
                    raise
                raise translated from exc
        finally:
            with contextlib.suppress(Exception):
                connection.close()  # ends the session: Postgres releases its advisory locks

    def _lock_holder(self, connection: Any, source: str) -> str:
        """``application_name`` of the session holding the lock (host and pid of the run)."""
        try:
            with connection.cursor() as cursor:
                cursor.execute(
                    "select a.application_name from pg_locks l "
                    "join pg_stat_activity a on a.pid = l.pid "
                    "where l.locktype = 'advisory' and l.granted "
                    "and l.classid = %s::oid and l.objid = %s::oid",
                    (LOCK_NAMESPACE % 2**32, lock_key(source) % 2**32),
                )
                row = cursor.fetchone()
        except Exception:
            return ""
        return str(row[0]) if row and row[0] else ""

    # ------------------------------------------------------------------ errors
    def error(self, exc: BaseException) -> DestinationError:
        """A psycopg2 error as a :class:`DestinationError`: what happened, what to do."""
        c = self.credentials
        code = getattr(exc, "pgcode", None)
        text = redact(str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__)
        lowered = text.lower()
        if code in ("28P01", "28000") or "password authentication failed" in lowered:
            what = f"login refused for user {c.username!r} ({text})"
            hint = f"check the user and password: {CONFIG_HINT}"
        elif code == "3D000" or ("database" in lowered and "does not exist" in lowered):
            what = f"database {c.database!r} does not exist"
            hint = f"create it (CREATE DATABASE {c.database}) or fix the database name: " + (
                CONFIG_HINT
            )
        elif code == "42501" and (schema := _denied_schema(text)):
            what = f"user {c.username!r} lacks a privilege ({text})"
            hint = (
                f"schema {schema} exists and belongs to another user: ALTER SCHEMA {schema} "
                f"OWNER TO {c.username} (or GRANT USAGE, CREATE ON SCHEMA {schema} TO "
                f"{c.username} and let it own the tables), or drop it; " + NOTHING_LOST
            )
        elif code == "42501":
            what = f"user {c.username!r} lacks a privilege ({text})"
            hint = (
                f"GRANT CREATE ON DATABASE {c.database} TO {c.username} (solarsync creates a "
                "schema per source and 'analytics'), or use an owner of the schemas; "
                + NOTHING_LOST
            )
        elif code is None and any(
            s in lowered
            for s in (
                "could not connect",
                "connection refused",
                "could not translate host name",
                "timeout expired",
                "no such file or directory",
                "server closed the connection",
                "connection to server",
            )
        ):
            what = f"cannot reach the server at {self.describe()} ({text})"
            hint = "check host and port, that Postgres runs and accepts this machine; " + (
                NOTHING_LOST
            )
        else:
            what = text
            hint = NOTHING_LOST
        return DestinationError(what, source=WHERE, hint=hint)

    def error_in(self, exc: BaseException) -> DestinationError | None:
        """The :class:`DestinationError` for a psycopg2 error anywhere in ``exc``'s chain."""
        import psycopg2

        seen: set[int] = set()
        current: BaseException | None = exc
        while current is not None and id(current) not in seen:
            seen.add(id(current))
            if isinstance(current, psycopg2.Error):
                return self.error(current)
            nested = getattr(current, "exception", None)
            inner = getattr(current, "dbapi_exception", None)
            current = next(
                (
                    e
                    for e in (inner, nested, current.__cause__, current.__context__)
                    if isinstance(e, BaseException) and id(e) not in seen
                ),
                None,
            )
        return None

    # ------------------------------------------------------------------ views and readers
    def publish(self, pipeline: dlt.Pipeline, source: str) -> list[str]:
        """(Re)create the source's analytics views, transpiled, in one transaction."""
        with pipeline.sql_client() as client:
            return create_views(client.native_connection, source, self.dialect)

    @contextlib.contextmanager
    def reader(self) -> Iterator[Reader | None]:
        connection = self.connect(read_only=True, application_name="solarsync reader")
        try:
            yield PostgresReader(connection)
        finally:
            connection.close()


def _denied_schema(text: str) -> str | None:
    """The schema of Postgres' "permission denied for schema X" (one solarsync did not create)."""
    match = re.search(r"permission denied for schema (\S+)", text)
    return match.group(1).strip('"') if match else None


# --------------------------------------------------------------------------- views
def create_views(connection: Any, source: str, dialect: str = "postgres") -> list[str]:
    """The source's views file, transpiled, in ONE transaction (readers see the old views or
    the new ones). A view whose tables do not exist yet is skipped, as on DuckDB. A view whose
    columns changed (Postgres cannot ``CREATE OR REPLACE`` those) is dropped and created
    again; views of the file that depended on it are created again after it."""
    from pipelines import views

    path = views.views_file(source, dialect)
    if path is None:
        return []
    created: list[str] = []
    autocommit = connection.autocommit
    connection.autocommit = False
    try:
        with connection.cursor() as cursor:
            schema = views.schema_of(_columns(cursor), dialect)
            for statement in views.statements(path.read_text()):
                name = views.statement_name(statement)
                try:
                    if views.is_macro(statement):
                        _create_function(cursor, views.render_macro(statement, dialect, schema))
                    else:
                        _execute_view(cursor, views.render(statement, dialect, schema), name)
                except views.MissingTables as exc:
                    logger.info("%s: view %s skipped until %s exist", source, name, exc)
                    continue
                except Exception as exc:
                    raise DestinationError(
                        f"creating the analytics view {name} failed: "
                        f"{redact(str(exc).strip().splitlines()[0])}",
                        source=WHERE,
                        hint=f"check warehouse/views/{source}.sql; the data is loaded, only the "
                        "views are out of date until the next run",
                    ) from exc
                if name:
                    created.append(name)
                    schema = views.schema_of(_columns(cursor), dialect)
        connection.commit()
    except BaseException:
        connection.rollback()
        raise
    finally:
        connection.autocommit = autocommit
    return created


def _columns(cursor: Any) -> list[tuple[str, str, str, str]]:
    cursor.execute(
        "select table_schema, table_name, column_name, data_type "
        "from information_schema.columns "
        "where table_schema not in ('pg_catalog', 'information_schema') "
        "order by table_schema, table_name, ordinal_position"
    )
    return cursor.fetchall()


def _execute_view(cursor: Any, sql: str, name: str | None) -> None:
    """``CREATE OR REPLACE VIEW``; when Postgres refuses because the columns changed (42P16),
    drop it (and what depends on it) and create it anew, in the same transaction."""
    import psycopg2

    cursor.execute("SAVEPOINT solarsync_view")
    try:
        cursor.execute(sql)
    except psycopg2.Error as exc:
        if exc.pgcode != "42P16" or not name:
            raise
        cursor.execute("ROLLBACK TO SAVEPOINT solarsync_view")
        logger.info("view %s: columns changed; dropped and created again", name)
        cursor.execute(f"DROP VIEW IF EXISTS {name} CASCADE")
        cursor.execute(sql)
    cursor.execute("RELEASE SAVEPOINT solarsync_view")


def _create_function(cursor: Any, macro: Any) -> None:
    """A table macro as a SQL function returning its body's columns (types from Postgres:
    the body with typed NULL parameters as a temporary view)."""
    cursor.execute(f"CREATE TEMPORARY VIEW solarsync_probe AS {macro.probe()}")
    cursor.execute(
        "select a.attname, format_type(a.atttypid, a.atttypmod) from pg_attribute a "
        "where a.attrelid = 'solarsync_probe'::regclass and a.attnum > 0 "
        "and not a.attisdropped order by a.attnum"
    )
    columns = cursor.fetchall()
    cursor.execute("DROP VIEW solarsync_probe")
    cursor.execute(f"DROP FUNCTION IF EXISTS {macro.signature()}")
    cursor.execute(macro.create(columns, "postgres"))
