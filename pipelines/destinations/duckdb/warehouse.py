"""The DuckDB warehouse: :class:`DuckDBWarehouse` (the seam's hooks) and :class:`DuckDBReader`."""

from __future__ import annotations

import contextlib
import logging
import os
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import dlt
import duckdb
import pyarrow as pa

from pipelines.destinations.base import BLOB_DIR, Publication, Reader, UpsertRows, Warehouse
from pipelines.destinations.duckdb.catalog import bind_under, catalog_name
from pipelines.destinations.duckdb.files import lock_path, working_path
from pipelines.destinations.duckdb.lock import WarehouseLock, locked_credentials
from pipelines.destinations.duckdb.publish import Published, prepare_working_file, publish_file
from pipelines.destinations.duckdb.settings import DEFAULT_WAREHOUSE, DuckDBSettings, settings
from pipelines.destinations.duckdb.views import apply_views
from pipelines.views import ViewsOutcome
from sources.common import DestinationError
from sources.common.blobstore import BlobRoot

logger = logging.getLogger("solarsync")

WHERE = "destination duckdb"


class DuckDBReader(Reader):
    """A DuckDB file opened under the catalog name DuckDB gives it: in SQL, a schema named like
    that catalog (``solarsync`` in ``solarsync.duckdb``) is named three-part, or DuckDB refuses
    it as ambiguous (:mod:`pipelines.destinations.duckdb.catalog`)."""

    def __init__(self, connection: Any, catalog: str) -> None:
        super().__init__(connection)
        self.catalog = catalog

    def _sql(self, sql: str) -> str:
        return bind_under(sql, self.catalog)[0]

    def rows(self, sql: str, params: Sequence[Any] = ()) -> list[tuple]:
        return super().rows(self._sql(sql), params)

    def records(self, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
        return super().records(self._sql(sql), params)


class DuckDBWarehouse(Warehouse):
    """The default: a DuckDB file for BI tools, ``warehouse/solarsync.duckdb``.

    dlt loads into a private working file next to it
    (``warehouse/.solarsync/working.solarsync.duckdb``) and every successful run publishes a
    copy at the path BI tools open (:mod:`pipelines.destinations.duckdb.publish`): loads never
    need the file a dashboard holds, and a dashboard never sees half a load.
    """

    kind = "duckdb"
    #: a local file only this host's runs load
    shared = False

    def __init__(self, path: str | os.PathLike[str], config: DuckDBSettings | None = None) -> None:
        self.path = Path(path)
        self._config = config
        self._lock = WarehouseLock.get(lock_path(self.path), on_acquire=self._prepare_working_file)
        self._last_publish: float | None = None
        #: what the last publish did (method, bytes, seconds), for the bench and the log
        self.last_published: Published | None = None
        #: what preparing the working file did in this process (``prepare_working_file``)
        self.prepared: list[str] | None = None

    def __repr__(self) -> str:
        return f"DuckDBWarehouse({str(self.path)!r})"

    @property
    def config(self) -> DuckDBSettings:
        """``[destination.duckdb]``, read when first needed (inside a run, where a setting that
        is not valid fails that run with its message)."""
        if self._config is None:
            self._config = settings()
        return self._config

    @property
    def load_path(self) -> Path:
        """The private working file dlt loads into."""
        return working_path(self.path)

    @property
    def catalog(self) -> str:
        """The catalog name DuckDB gives the published file (its name up to the first dot)."""
        return catalog_name(self.path)

    @property
    def storage_version(self) -> str:
        """``[destination.duckdb] storage_version``: the DuckDB storage version the working
        file (so every published copy) is written in."""
        return self.config.version

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
        return locked_credentials(
            self.load_path,
            global_config={
                "memory_limit": self.config.memory_limit,
                "preserve_insertion_order": False,  # lets big merges stream and spill
            },
        )

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
        if self.prepared is not None and self.load_path.exists():
            return
        prepared = prepare_working_file(self.path, self.storage_version, self.config.memory_limit)
        self.prepared = None if "unchecked" in prepared else prepared

    @contextlib.contextmanager
    def writing(self, source: str) -> Iterator[None]:
        self.prepare()
        self._lock.timeout = self.config.lock_timeout_s
        with self._lock.hold(source, self._lock.timeout):
            yield

    def upsert_rows(self, dataset: str, tables: Sequence[UpsertRows]) -> bool:
        """The rows merged into the working file's tables (DELETE by key, INSERT) in one
        transaction, under the warehouse lock; ``_dlt_load_id`` is the dataset's newest dlt
        load, ``_dlt_id`` a new random id. False when a table or column is missing."""
        with self.writing(dataset):
            if not self.load_path.exists():
                return False
            connection = duckdb.connect(
                str(self.load_path), config={"memory_limit": self.config.memory_limit}
            )
            try:
                return _upsert(connection, dataset, tables)
            finally:
                connection.close()

    def publish(
        self, pipeline: Any, source: str, *, views: str | None, batch: bool = False
    ) -> Publication:
        """Views at once; the copy for BI now, or for a poll batch at most every
        ``publish_every`` (default 5 min)."""
        with self.writing(source):
            outcome = self.publish_views(source, views)
            due = self._last_publish is None or (
                time.monotonic() - self._last_publish >= self.config.publish_every_s
            )
            if not batch or due:
                self._publish(source)
        return Publication(outcome.views, outcome.warnings)

    def publish_views(self, source: str, views: str | None) -> ViewsOutcome:
        """``source``'s analytics views in the working file (the warehouse lock held)."""
        if not self.load_path.exists() or views is None:
            return ViewsOutcome()
        return apply_views(self.load_path, source, views, catalog=self.catalog, where=WHERE)

    def _publish(self, source: str) -> None:
        if not self.load_path.exists():
            return
        if self._lock.open_connections:
            raise DestinationError(
                f"{source}: cannot publish while {self._lock.open_connections} connection(s) "
                f"to the working file {self.load_path} are open in this process",
                source=WHERE,
                hint="this is a bug in solarsync: please report it; the load itself is complete",
            )
        info = publish_file(
            self.load_path,
            self.path,
            by=source,
            compact=self.config.compact_mode,
            memory_limit=self.config.memory_limit,
            storage_version=self.storage_version,
        )
        self.last_published = info
        self._last_publish = time.monotonic()
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
        if not self.path.exists():
            yield None
            return
        connection = duckdb.connect(str(self.path), read_only=True)
        try:
            yield DuckDBReader(connection, self.catalog)
        finally:
            connection.close()


__all__ = ["DuckDBReader", "DuckDBWarehouse"]


def _upsert(connection: Any, dataset: str, tables: Sequence[UpsertRows]) -> bool:
    present: dict[str, set[str]] = {}
    for table, column in connection.execute(
        "SELECT table_name, column_name FROM information_schema.columns "
        "WHERE table_catalog = current_database() AND table_schema = ?",
        [dataset],
    ).fetchall():
        present.setdefault(table, set()).add(column)
    if "_dlt_loads" not in present:
        return False
    for item in tables:
        needed = {"_dlt_load_id", "_dlt_id", *item.key, *(c for row in item.rows for c in row)}
        if not needed <= present.get(item.table, set()):
            return False
    catalog = connection.execute("SELECT current_database()").fetchone()[0]

    def name(*parts: str) -> str:
        return ".".join('"' + part.replace('"', '""') + '"' for part in parts)

    (load_id,) = connection.execute(
        f"SELECT max(load_id) FROM {name(catalog, dataset, '_dlt_loads')}"
    ).fetchone()
    connection.begin()
    try:
        for item in tables:
            if not item.rows:
                continue
            names = list(dict.fromkeys(c for row in item.rows for c in row))
            incoming = pa.Table.from_pylist([{c: row.get(c) for c in names} for row in item.rows])
            connection.register("incoming", incoming)
            target = name(catalog, dataset, item.table)
            same = " AND ".join(f"t.{name(k)} = i.{name(k)}" for k in item.key)
            columns = ", ".join(name(c) for c in incoming.column_names)
            connection.execute(
                f"DELETE FROM {target} AS t WHERE EXISTS (SELECT 1 FROM incoming AS i WHERE {same})"
            )
            connection.execute(
                f"INSERT INTO {target} ({columns}, _dlt_load_id, _dlt_id) "
                f"SELECT {columns}, ?, left(replace(CAST(uuid() AS VARCHAR), '-', ''), 14) "
                "FROM incoming",
                [load_id],
            )
            connection.unregister("incoming")
        connection.commit()
    except BaseException:
        connection.rollback()
        raise
    return True
