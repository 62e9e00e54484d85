"""The destination seam: everything that differs between the places solarsync loads into.

solarsync loads through dlt; what dlt leaves to us differs per destination and lives here only:

- how to build dlt's destination from solarsync's settings (``dlt_destination``),
- how to keep two loaders of one source apart beyond the local file lock (``lock``),
- what to do before a load (``prepare``: e.g. adopt a warehouse of an earlier version),
- how readers get the data after a load (``publish``: analytics views, a published copy),
- how ``status`` and ``report`` read back (``reader``: read-only SQL in DuckDB's dialect),
- where files a source copies (SolarKnock's lead attachments) go by default (``blob_root``).

Everything else (runner, poll, status, report) talks to a :class:`Warehouse` and to dlt's own
APIs (``pipeline.sql_client()``, ``pipeline.dataset()``). Adding a destination dlt loads
(MotherDuck, Snowflake, ...) is a subclass here plus a dialect check of the views.

Choosing one: ``--destination`` on the command line, else ``[solarsync] destination`` in
``.dlt/config.toml`` (env ``SOLARSYNC__DESTINATION``), else ``duckdb``.
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, ClassVar

import dlt

from sources.common.blobstore import BlobRoot

logger = logging.getLogger("solarsync")

DEFAULT_WAREHOUSE = Path("warehouse") / "solarsync.duckdb"
#: the blob folder of the DuckDB warehouse (next to its file) and of Postgres (dlt's data dir)
BLOB_DIR = "blobs"
DEFAULT_DUCKDB_MEMORY_LIMIT = "128MB"
DEFAULT_PUBLISH_EVERY_S = 5 * 60.0
KINDS = ("duckdb", "filesystem", "postgres")


def _config(key: str) -> Any:
    try:
        return dlt.config.get(key)
    except Exception:
        return None


class Reader:
    """Read-only SQL for ``status`` and ``report``, written in DuckDB's dialect.

    ``rows(sql, params)`` with ``?`` placeholders; a destination in another dialect transpiles.
    """

    dialect: ClassVar[str] = "duckdb"

    def __init__(self, connection: Any) -> None:
        self.connection = connection

    def rows(self, sql: str, params: Sequence[Any] = ()) -> list[tuple]:
        return self.connection.execute(sql, list(params)).fetchall()

    def records(self, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
        """``rows`` as dicts by column name."""
        cursor = self.connection.execute(sql, list(params))
        names = [d[0] for d in cursor.description]
        return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]

    def columns(self, schema: str, table: str) -> list[str]:
        return [
            r[0]
            for r in self.rows(
                "select column_name from information_schema.columns "
                "where table_schema = ? and table_name = ? order by ordinal_position",
                [schema, table],
            )
        ]

    def tables(self, schema: str) -> set[str]:
        return {
            r[0]
            for r in self.rows(
                "select table_name from information_schema.tables where table_schema = ?",
                [schema],
            )
        }


class DuckDBReader(Reader):
    """A DuckDB file opened under the catalog name DuckDB gives it: in SQL, a schema named like
    that catalog (``solarsync`` in ``solarsync.duckdb``) is named three-part, or DuckDB refuses
    it as ambiguous (``pipelines.duckdb_catalog``)."""

    def __init__(self, connection: Any, catalog: str) -> None:
        super().__init__(connection)
        self.catalog = catalog

    def _sql(self, sql: str) -> str:
        from pipelines.duckdb_catalog import bind_under

        return bind_under(sql, self.catalog)[0]

    def rows(self, sql: str, params: Sequence[Any] = ()) -> list[tuple]:
        return super().rows(self._sql(sql), params)

    def records(self, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
        return super().records(self._sql(sql), params)


class Warehouse:
    """One destination as solarsync uses it. Subclasses fill in what differs."""

    kind: ClassVar[str]
    #: sqlglot dialect of the destination's SQL (views are written in DuckDB's)
    dialect: ClassVar[str] = "duckdb"
    #: the file format dlt loads with (Postgres: csv, so JSON columns stay jsonb)
    loader_file_format: ClassVar[str] = "parquet"

    def dlt_destination(self) -> Any:
        raise NotImplementedError

    def describe(self) -> str:
        """Where data lands, for people (never a password)."""
        raise NotImplementedError

    def exists(self) -> bool:
        """Whether anything was ever loaded here (``status`` says 'not created yet')."""
        return True

    @contextlib.contextmanager
    def lock(self, source: str) -> Iterator[None]:
        """Held while ``source`` loads, besides the local file lock (e.g. a Postgres advisory
        lock so two hosts never load one source at once)."""
        yield

    def prepare(self) -> None:
        """Before a pipeline is built: create folders, adopt an earlier version's layout."""

    def adapt(self, source: Any) -> Any:
        """The dlt source as this destination loads it (e.g. Delta table format, partition
        hints, a history strategy the destination supports). Default: unchanged."""
        return source

    @contextlib.contextmanager
    def writing(self, source: str) -> Iterator[None]:
        """Held around each load step and the ``publish`` after it (and around completing the
        packages an interrupted run left), so what readers get is whole packages. DuckDB: the
        warehouse-wide lock on its working file (another source loading waits its turn)."""
        yield

    def publish(self, pipeline: dlt.Pipeline, source: str) -> list[str]:
        """After a successful load of ``source``: (re)create its analytics views and make the
        new data visible to readers. Returns the views created."""
        raise NotImplementedError

    def blob_root(self) -> BlobRoot | None:
        """Where sources keep files by default (each in a folder of its own), unless
        configured otherwise (``[sources.solarknock.attachments] blob_url``). None: the
        source's own default."""
        return None

    def publish_warnings(self, source: str) -> list[str]:
        """What the last :meth:`publish` of ``source`` could not do and readers should know
        (e.g. a view kept at its previous definition): the run's warnings. Default: none."""
        return []

    def publish_batch(self, pipeline: dlt.Pipeline, source: str) -> list[str]:
        """After a poll batch loaded (``poll`` calls :meth:`publish` at its end). Default: the
        same as :meth:`publish`; DuckDB copies at most every ``publish_every``."""
        return self.publish(pipeline, source)

    @contextlib.contextmanager
    def reader(self) -> Iterator[Reader | None]:
        """Read-only access for ``status``/``report``; None when nothing is readable yet."""
        yield None


class DuckDBWarehouse(Warehouse):
    """The default: a DuckDB file for BI tools, ``warehouse/solarsync.duckdb``.

    dlt loads into a private working file next to it (``warehouse/.solarsync/solarsync.duckdb``)
    and every successful run publishes a copy at the path BI tools open (``pipelines.publish``):
    loads never need the file a dashboard holds, and a dashboard never sees half a load.
    """

    kind = "duckdb"

    def __init__(self, path: str | os.PathLike[str]) -> None:
        from pipelines import publish

        self.path = Path(path)
        self._lock = publish.WarehouseLock.get(
            publish.lock_path(self.path), on_acquire=self._prepare_working_file
        )
        self._lock.timeout = _duration(
            "destination.duckdb.lock_timeout", publish.DEFAULT_LOCK_TIMEOUT_S
        )
        self._last_publish: float | None = None
        #: what the last publish did (method, bytes, seconds), for the bench and the log
        self.last_published: Any = None
        #: what preparing the working file did in this process (``publish.prepare_working_file``)
        self.prepared: list[str] | None = None
        self._storage_version: str | None = None

    def __repr__(self) -> str:
        return f"DuckDBWarehouse({str(self.path)!r})"

    @property
    def load_path(self) -> Path:
        """The private working file dlt loads into."""
        from pipelines.publish import working_path

        return working_path(self.path)

    @property
    def catalog(self) -> str:
        """The catalog name DuckDB gives the published file (its name up to the first dot)."""
        from pipelines.duckdb_catalog import catalog_name

        return catalog_name(self.path)

    @property
    def storage_version(self) -> str:
        """``[destination.duckdb] storage_version``: the DuckDB storage version the working
        file (so every published copy) is written in."""
        if self._storage_version is None:
            from pipelines.duckdb_storage import configured_version

            self._storage_version = configured_version()
        return self._storage_version

    def describe(self) -> str:
        return str(self.path)

    def exists(self) -> bool:
        return self.path.exists()

    def blob_root(self) -> BlobRoot:
        """``<warehouse dir>/blobs``; a file not named ``solarsync.duckdb`` (the demo's, a
        test's) gets ``<dir>/blobs/<its name>`` so two warehouses' files never mix."""
        base = self.path.parent / BLOB_DIR
        if self.path.stem != DEFAULT_WAREHOUSE.stem:
            base = base / self.path.stem
        return BlobRoot(str(base.resolve()))

    def credentials(self) -> Any:
        """The working file, with DuckDB's memory capped (it spills to disk beyond the cap),
        whose connections hold the warehouse lock while open.

        Without a cap DuckDB takes what it likes during a large merge: the load step set the
        peak RSS of a sync (``make bench``). ``destination.duckdb.memory_limit`` changes it.
        """
        from pipelines.publish import locked_credentials

        return locked_credentials(
            self.load_path,
            global_config={
                "memory_limit": self._memory_limit(),
                "preserve_insertion_order": False,  # lets big merges stream and spill
            },
        )

    def _memory_limit(self) -> str:
        return str(_config("destination.duckdb.memory_limit") or DEFAULT_DUCKDB_MEMORY_LIMIT)

    def dlt_destination(self) -> Any:
        return dlt.destinations.duckdb(credentials=self.credentials())

    def prepare(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.load_path.parent.mkdir(mode=0o700, exist_ok=True)

    def _prepare_working_file(self) -> None:
        """On taking the lock, before dlt opens the working file: an earlier version's working
        file or in-place warehouse becomes it (nothing is downloaded again), a new one is
        created in the configured storage version, one in a newer version rewritten in it.
        The storage version is checked once per process."""
        from pipelines.publish import prepare_working_file

        if self.prepared is not None and self.load_path.exists():
            return
        prepared = prepare_working_file(self.path, self.storage_version, self._memory_limit())
        self.prepared = None if "unchecked" in prepared else prepared

    @contextlib.contextmanager
    def writing(self, source: str) -> Iterator[None]:
        self.prepare()
        with self._lock.hold(source, self._lock.timeout):
            yield

    def publish(self, pipeline: dlt.Pipeline, source: str) -> list[str]:
        with self.writing(source):
            views = self._views(source)
            self._publish(source)
        return views

    def publish_batch(self, pipeline: dlt.Pipeline, source: str) -> list[str]:
        """Views at once; the copy for BI at most every ``publish_every`` (default 5 min)."""
        with self.writing(source):
            views = self._views(source)
            every = _duration("destination.duckdb.publish_every", DEFAULT_PUBLISH_EVERY_S)
            if self._last_publish is None or time.monotonic() - self._last_publish >= every:
                self._publish(source)
        return views

    def _views(self, source: str) -> list[str]:
        from pipelines.views import apply_views

        if not self.load_path.exists():
            return []
        return apply_views(self.load_path, source, catalog=self.catalog)

    def _publish(self, source: str) -> None:
        from pipelines.publish import publish_file

        if not self.load_path.exists():
            return
        if self._lock.open_connections:
            from sources.common import DestinationError

            raise DestinationError(
                f"{source}: cannot publish while {self._lock.open_connections} connection(s) "
                f"to the working file {self.load_path} are open in this process",
                source="destination duckdb",
                hint="this is a bug in solarsync: please report it; the load itself is complete",
            )
        self.last_published = publish_file(
            self.load_path,
            self.path,
            by=source,
            compact=str(_config("destination.duckdb.compact") or "auto"),
            memory_limit=self._memory_limit(),
            storage_version=self.storage_version,
        )
        self._last_publish = time.monotonic()
        info = self.last_published
        logger.info(
            "%s: published %s (%.1f MB, %s, %.2fs)",
            source,
            self.path,
            info.bytes / 2**20,
            info.method,
            info.seconds,
        )

    @contextlib.contextmanager
    def reader(self) -> Iterator[Reader | None]:
        """The published file, read-only: never waits for a load."""
        import duckdb

        if not self.path.exists():
            yield None
            return
        connection = duckdb.connect(str(self.path), read_only=True)
        try:
            yield DuckDBReader(connection, self.catalog)
        finally:
            connection.close()


def _duration(key: str, default: float) -> float:
    """A duration setting (``"5m"``, ``"90s"``, ``30``) in seconds."""
    value = _config(key)
    if value is None or value == "":
        return default
    if isinstance(value, int | float):
        return float(value)
    from pipelines.poll import parse_duration

    try:
        return parse_duration(str(value))
    except ValueError as exc:
        from sources.common import ConfigurationError

        raise ConfigurationError(f"{key}: {exc}", hint="e.g. 30s, 5m, 1h") from None


def duckdb_path(explicit: str | os.PathLike[str] | None = None) -> Path:
    """``--warehouse`` > ``DESTINATION__DUCKDB__CREDENTIALS`` / .dlt config > the default."""
    if explicit:
        return Path(explicit)
    configured = _config("destination.duckdb.credentials")
    if isinstance(configured, str) and configured.strip():
        value = configured.strip()
        for prefix in ("duckdb:///", "duckdb://"):
            if value.startswith(prefix):
                value = value[len(prefix) :]
        return Path(value)
    return DEFAULT_WAREHOUSE


def configured_kind(explicit: str | None = None) -> str:
    """``--destination`` > ``[solarsync] destination`` (``SOLARSYNC__DESTINATION``) > duckdb."""
    kind = explicit or _config("solarsync.destination") or "duckdb"
    if kind not in KINDS:
        from sources.common import ConfigurationError

        raise ConfigurationError(
            f"unknown destination {kind!r}",
            hint=f"choose one of {', '.join(KINDS)} (--destination or [solarsync] destination)",
        )
    return kind


def resolve(kind: str | None = None, warehouse: str | os.PathLike[str] | None = None) -> Warehouse:
    """The warehouse the command line and configuration name."""
    kind = configured_kind(kind)
    if kind == "duckdb":
        return DuckDBWarehouse(duckdb_path(warehouse))
    if warehouse:
        from sources.common import ConfigurationError

        raise ConfigurationError(
            f"--warehouse names a DuckDB file; the {kind} destination is configured with "
            f"DESTINATION__{kind.upper()}__... settings",
            hint="drop --warehouse or use --destination duckdb",
        )
    if kind == "filesystem":
        from pipelines.lake import LakeWarehouse

        return LakeWarehouse.from_config()
    from pipelines.postgres import PostgresWarehouse

    return PostgresWarehouse.from_config()


def as_warehouse(value: Warehouse | str | os.PathLike[str]) -> Warehouse:
    """A :class:`Warehouse`, or a DuckDB file path (tests and the demo pass paths)."""
    if isinstance(value, Warehouse):
        return value
    return DuckDBWarehouse(value)
