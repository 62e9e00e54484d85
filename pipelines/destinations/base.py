"""The destination seam: everything that differs between the places solarsync loads into.

solarsync loads through dlt; what dlt leaves to us differs per destination and lives here only:

- how to build dlt's destination from solarsync's settings (``dlt_destination``),
- how to keep two loaders of one source apart beyond the local file lock (``lock``),
- what to do before a load (``prepare``: e.g. adopt a warehouse of an earlier version;
  ``fill_columns``: give the rows an earlier release loaded a column that is now in their key),
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
from collections.abc import Iterator, Mapping, Sequence
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
        packages an interrupted run left), so what readers get is whole packages, and two
        loads of one dataset (two accounts of a source, docs/accounts.md) never run at once:
        dlt merges through one staging copy per table. It must exclude other threads of the
        process as well as other processes; the load step holds it once per thread. DuckDB:
        the warehouse-wide lock on its working file; Postgres: an advisory lock per dataset;
        the lake: a lock file per dataset on this host."""
        yield

    def fill_columns(self, pipeline: Any, table: str, values: Mapping[str, str]) -> int | None:
        """Rows loaded before ``values``' columns were part of ``table``'s key (a warehouse of
        the single-account release, docs/accounts.md): add the columns (text, nullable) where
        missing, in dlt's staging copy of the table too, and set them where they are NULL, in
        one transaction. Returns how many rows were filled; None when the table does not
        exist. Called holding :meth:`writing`. This default serves the SQL destinations
        through dlt's client; a destination without one overrides it."""
        from dlt.destinations.job_client_impl import SqlJobClientBase

        with pipeline.destination_client() as job_client:
            if not isinstance(job_client, SqlJobClientBase):
                raise NotImplementedError(f"{self.kind}: fill_columns")
            client = job_client.sql_client
            exists, stored = job_client.get_storage_table(table)
            if not exists:
                return None
            with client.begin_transaction():
                _add_text_columns(client, table, stored, values)
                with client.with_staging_dataset():
                    staged, staged_columns = job_client.get_storage_table(table)
                    if staged:
                        _add_text_columns(client, table, staged_columns, values)
                qualified = client.make_qualified_table_name(table)
                names = [client.escape_column_name(c) for c in values]
                empty = " OR ".join(f"{n} IS NULL" for n in names)
                ((count,),) = client.execute_sql(f"SELECT count(*) FROM {qualified} WHERE {empty}")
                if count:
                    sets = ", ".join(f"{n} = COALESCE({n}, %s)" for n in names)
                    client.execute_sql(
                        f"UPDATE {qualified} SET {sets} WHERE {empty}", *values.values()
                    )
            return int(count)

    def legacy_values(self, pipeline: Any, table: str, column: str, marker: str) -> list[str]:
        """The distinct values of ``column`` in ``table`` (text) of the rows whose ``marker``
        column is NULL or missing (rows an earlier release loaded); [] when the table does not
        exist. Read through dlt's client, as :meth:`fill_columns`."""
        from dlt.destinations.job_client_impl import SqlJobClientBase

        with pipeline.destination_client() as job_client:
            if not isinstance(job_client, SqlJobClientBase):
                raise NotImplementedError(f"{self.kind}: legacy_values")
            client = job_client.sql_client
            exists, stored = job_client.get_storage_table(table)
            if not exists or column not in stored:
                return []
            qualified = client.make_qualified_table_name(table)
            name = client.escape_column_name(column)
            where = ""
            if marker in stored:
                where = f" WHERE {client.escape_column_name(marker)} IS NULL"
            rows = client.execute_sql(
                f"SELECT DISTINCT CAST({name} AS VARCHAR) FROM {qualified}{where}"
            )
            return [str(r[0]) for r in rows or () if r[0] is not None]

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


def _add_text_columns(
    client: Any, table: str, stored: Mapping[str, Any], values: Mapping[str, str]
) -> None:
    for name in values:
        if name not in stored:
            # nullable: a NOT NULL column cannot be added to a table that has rows
            client.execute_sql(
                f"ALTER TABLE {client.make_qualified_table_name(table)} "
                f"ADD COLUMN {client.escape_column_name(name)} VARCHAR"
            )
