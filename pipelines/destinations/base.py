"""The destination seam: everything that differs between the places solarsync loads into.

solarsync loads through dlt; what dlt leaves to us differs per destination and lives here only:

- how to build dlt's destination from solarsync's settings (``dlt_destination``),
- how to keep two loaders of one source apart beyond the local file lock (``lock``),
- what to do before a load (``prepare``: e.g. adopt a warehouse of an earlier version),
- how readers get the data after a load (``publish``: analytics views, a published copy),
- how ``status`` and ``report`` read back (``reader``: read-only SQL in DuckDB's dialect),
- where files a source copies (SolarKnock's lead attachments) go by default (``blob_root``).

Everything else (the load step, poll, status, report) talks to a :class:`Warehouse` and to
dlt's own APIs (``pipeline.sql_client()``, ``pipeline.dataset()``). This module is the base
only; each destination is a package beside it (``duckdb``, ``postgres``, ``lake``) and
:func:`pipelines.destinations.resolve` picks one. Adding a destination dlt loads (MotherDuck,
Snowflake, ...) is a package with a subclass of :class:`Warehouse` (its views go through
:func:`pipelines.views.publish_views` with a :class:`~pipelines.views.ViewTarget` of its own)
and a line in ``pipelines/destinations/__init__.py``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

from sources.common.blobstore import BlobRoot

#: the blob folder of the DuckDB warehouse (next to its file) and of Postgres (dlt's data dir)
BLOB_DIR = "blobs"


@dataclass
class Publication:
    """What one :meth:`Warehouse.publish` did."""

    #: the source's analytics views in place
    views: list[str] = field(default_factory=list)
    #: what readers should know (a view kept at its previous definition): the run's warnings
    warnings: list[str] = field(default_factory=list)


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


@dataclass(frozen=True)
class UpsertRows:
    """Rows for :meth:`Warehouse.upsert_rows`: ``table``'s rows replacing those with the same
    ``key`` (every row has the same columns)."""

    table: str
    key: tuple[str, ...]
    rows: list[dict[str, Any]]


class Warehouse:
    """One destination as solarsync uses it. Subclasses fill in what differs."""

    kind: ClassVar[str]
    #: sqlglot dialect of the destination's SQL (views are written in DuckDB's)
    dialect: ClassVar[str] = "duckdb"
    #: the file format dlt loads with (Postgres: insert_values, so JSON columns stay jsonb)
    loader_file_format: ClassVar[str | None] = "parquet"
    #: whether other hosts load into it too (its state may be newer than this host's)
    shared: ClassVar[bool] = True

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

    def upsert_rows(self, dataset: str, tables: Sequence[UpsertRows]) -> bool:
        """Merge a few rows by key into tables an earlier dlt load created, in one transaction
        and without a dlt load (cheaper than a pipeline run for a handful of rows, e.g. a run's
        history row after a run that changed nothing). False when this destination does not or
        a table or column is not there yet: the caller loads through dlt then. Readers see the
        rows after :meth:`publish`. Default: False."""
        return False

    @contextlib.contextmanager
    def writing(self, source: str) -> Iterator[None]:
        """Held around each load step and the ``publish`` after it (and around completing the
        packages an interrupted run left), so what readers get is whole packages. DuckDB: the
        warehouse-wide lock on its working file (another source loading waits its turn)."""
        yield

    def publish(
        self, pipeline: Any, source: str, *, views: str | None, batch: bool = False
    ) -> Publication:
        """After a successful load of ``source`` (a dataset): its analytics views (the file
        ``views`` under ``warehouse/views``, None: none; :func:`pipelines.views.publish_views`)
        and the new data made visible to readers. ``batch``: a ``poll`` batch (DuckDB copies
        for BI at most every ``publish_every``; the poll's end publishes with
        ``batch=False``)."""
        raise NotImplementedError

    def blob_root(self) -> BlobRoot | None:
        """Where sources keep files by default (each in a folder of its own), unless
        configured otherwise (``[sources.solarknock.attachments] blob_url``). None: the
        source's own default."""
        return None

    @contextlib.contextmanager
    def reader(self) -> Iterator[Reader | None]:
        """Read-only access for ``status``/``report``; None when nothing is readable yet."""
        yield None
