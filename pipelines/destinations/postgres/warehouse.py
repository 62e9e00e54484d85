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
  :mod:`pipelines.views` and published by :mod:`pipelines.destinations.postgres.views` after each load:
  unchanged views untouched, changed ones replaced in place under a short ``lock_timeout``
  (grants and dependent views kept), ``readers`` roles granted
  (:mod:`pipelines.destinations.postgres.config`).
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
from pathlib import Path
from typing import Any, ClassVar

import dlt
import psycopg2

from pipelines.destinations.base import BLOB_DIR, Publication, Reader, Warehouse
from pipelines.destinations.postgres.config import WHERE, PostgresSettings, settings
from pipelines.destinations.postgres.copy import postgres_destination
from pipelines.destinations.postgres.views import PostgresViews
from pipelines.views import publish_views
from pipelines.views.transpile import to_dbapi
from sources.common import (
    ConfigurationError,
    DestinationError,
    LockedError,
    SolarsyncError,
    redact,
    register_secret,
)
from sources.common.blobstore import BlobRoot

logger = logging.getLogger("solarsync")

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
    """dlt's notes on converting Arrow pages to its schema's types (e.g. a JSON column sent
    as text, or INSERT statements written from Arrow): expected, not news for each run."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        return not (
            "ArrowToInsertValuesWriter" in message
            or "when merging arrow schema with dlt schema" in message
        )


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
        with self.connection.cursor() as cursor:
            cursor.execute(to_dbapi(sql, self.dialect, bool(params)), list(params) or None)
            if not cursor.description:
                return [], []
            return [d[0] for d in cursor.description], [tuple(r) for r in cursor.fetchall()]


class PostgresWarehouse(Warehouse):
    """A Postgres database (any server dlt's ``postgres`` destination loads)."""

    kind = "postgres"
    dialect = "postgres"
    #: Parquet, loaded with Postgres' COPY (:mod:`pipelines.destinations.postgres.copy`)
    loader_file_format = "parquet"

    def __init__(self, credentials: Any, settings: PostgresSettings | None = None) -> None:
        host = getattr(credentials, "host", None)
        if isinstance(host, str) and host.startswith("/"):
            # a unix socket directory as ``host = "/run/postgresql"`` (libpq's spelling):
            # dlt puts it in the URL's netloc, where libpq ignores it; ``?host=`` keeps it
            credentials.query = {**(credentials.query or {}), "host": host}
            credentials.host = "localhost"
        self.credentials = credentials
        #: ``[destination.postgres]`` readers and view lock settings; None: read at each use
        self._settings = settings
        #: what the last publish of each source did (views changed, kept, warnings, DDL)
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
        settings()  # a malformed [destination.postgres] setting is a usage error, before any run
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
        return postgres_destination(self.credentials)

    def blob_root(self) -> BlobRoot:
        """``$DLT_DATA_DIR/solarsync/blobs``: per host like the run journal next to it, the same
        whatever directory a cron job starts in (a folder under the working directory would move
        with it, and every file be downloaded again); the DuckDB settings play no part. Several
        hosts share files through ``blob_url`` (a bucket)."""
        return BlobRoot(str(Path(dlt.current.run_context().data_dir) / "solarsync" / BLOB_DIR))

    def connect(self, *, read_only: bool = False, application_name: str = "solarsync") -> Any:
        """A psycopg2 connection of our own (the lock, the reader, ``exists``)."""

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

    def settings(self) -> PostgresSettings:
        """``[destination.postgres]`` as configured now (readers, view lock settings)."""
        return self._settings if self._settings is not None else settings()

    # ------------------------------------------------------------------ lock
    @contextlib.contextmanager
    def lock(self, source: str) -> Iterator[None]:
        """``pg_try_advisory_lock(solarsync, source)`` on a connection held for the whole run.

        A second run of the source, from any host or working dir, raises :class:`LockedError`.
        Database failures inside the run (privileges, a server gone) become
        :class:`DestinationError`. The configured ``readers`` must exist (checked first:
        nothing is read from the API when one does not)."""
        configured = self.settings()
        me = f"solarsync {source} on {socket.gethostname()} pid {os.getpid()}"
        connection = self.connect(application_name=me[:63])
        try:
            self._check_readers(connection, configured.reader_roles())
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

    def _check_readers(self, connection: Any, readers: list[str]) -> None:
        if not readers:
            return
        with connection.cursor() as cursor:
            cursor.execute(
                "select r from unnest(%s::text[]) r "
                "where not exists (select 1 from pg_roles where rolname = r)",
                (readers,),
            )
            missing = [row[0] for row in cursor.fetchall()]
        if missing:
            raise ConfigurationError(
                f"readers: role(s) {', '.join(missing)} do not exist in {self.describe()}",
                source=WHERE,
                hint=f"create them (CREATE ROLE {missing[0]} LOGIN PASSWORD '...') or fix "
                "[destination.postgres] readers (DESTINATION__POSTGRES__READERS); nothing was "
                "read or loaded",
            )

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
    def publish(
        self, pipeline: Any, source: str, *, views: str | None, batch: bool = False
    ) -> Publication:
        """The source's analytics views as :class:`PostgresViews` publishes them: only what
        changed, under a short lock timeout, grants kept, readers granted."""
        with pipeline.sql_client() as client:
            target = PostgresViews(client.native_connection, source, self.settings(), self.dialect)
            outcome = publish_views(target, source, views)
        return Publication(outcome.views, outcome.warnings)

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
