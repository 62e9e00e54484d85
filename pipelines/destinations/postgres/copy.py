"""dlt's Postgres destination, loading every table with ``COPY`` from the load package's Parquet.

dlt's own fast paths into Postgres do not fit: its CSV load runs
``COPY ... NULL '' FORCE_NULL(<nullable columns>)`` (right for its Python-object CSV writer,
which writes ``None`` as a quoted ``""``, but every empty string of a nullable column becomes
NULL), and its Parquet load needs an ADBC driver (another native dependency) and creates JSON
columns as ``json``, not ``jsonb``. ``INSERT`` statements, dlt's default, are exact but were 2.6x
slower than DuckDB on the SolarKnock backfill.

So normalize writes Parquet (Arrow pages as they are, Python rows through dlt's Parquet writer)
and :class:`ParquetCopyJob` streams each file to ``COPY FROM STDIN`` as CSV, one record batch at
a time: Arrow's CSV writer quotes every string and leaves NULL unquoted, so ``NULL ''`` keeps an
empty string apart from NULL; nested values (lists, structs) go as JSON text into the ``jsonb``
columns dlt created for them.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from typing import Any

import dlt
import orjson
import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq
from dlt.common.destination import DestinationCapabilitiesContext
from dlt.common.destination.client import HasFollowupJobs, LoadJob, RunnableLoadJob
from dlt.common.storages.load_storage import ParsedLoadJobFileName
from dlt.destinations.impl.postgres.factory import PostgresTypeMapper
from dlt.destinations.impl.postgres.postgres import PostgresClient

#: rows per record batch read from a Parquet file and sent as one ``COPY`` chunk
BATCH_ROWS = 50_000
#: bytes per read while psycopg2 streams a chunk to ``COPY``
COPY_CHUNK = 1 << 20


def _as_json_text(column: pa.ChunkedArray | pa.Array) -> pa.Array:
    values = column.to_pylist()
    return pa.array(
        [None if v is None else orjson.dumps(v, default=str).decode() for v in values],
        pa.string(),
    )


def csv_batches(path: str) -> Iterator[tuple[list[str], bytes]]:
    """The Parquet file at ``path`` as (column names, CSV bytes without header) per batch:
    nested columns as JSON text, strings quoted, NULL an empty unquoted field."""
    with pq.ParquetFile(path) as parquet:
        for batch in parquet.iter_batches(batch_size=BATCH_ROWS):
            table = pa.Table.from_batches([batch])
            for i, field in enumerate(table.schema):
                if pa.types.is_nested(field.type) or pa.types.is_map(field.type):
                    text = _as_json_text(table.column(i))
                    table = table.set_column(i, pa.field(field.name, pa.string()), text)
            out = io.BytesIO()
            options = pa_csv.WriteOptions(include_header=False, quoting_style="needed")
            pa_csv.write_csv(table, out, write_options=options)
            yield table.column_names, out.getvalue()


class ParquetCopyJob(RunnableLoadJob, HasFollowupJobs):
    """One Parquet file of a load package into its table with ``COPY FROM STDIN`` (CSV): all
    batches in one transaction, so a failed file leaves nothing behind and is retried whole."""

    def __init__(self, file_path: str) -> None:
        super().__init__(file_path)
        self._job_client: PostgresClient = None  # set by dlt before run()

    def run(self) -> None:
        sql = self._job_client.sql_client
        table = sql.make_qualified_table_name(self.load_table_name)
        with sql.begin_transaction():
            with sql.native_connection.cursor() as cursor:
                for names, data in csv_batches(self._file_path):
                    columns = ", ".join(sql.escape_column_name(n, quote=True) for n in names)
                    cursor.copy_expert(
                        f"COPY {table} ({columns}) FROM STDIN "
                        "WITH (FORMAT CSV, NULL '', ENCODING 'UTF8')",
                        io.BytesIO(data),
                        size=COPY_CHUNK,
                    )


class JsonbTypeMapper(PostgresTypeMapper):
    """dlt's Postgres types, JSON always ``jsonb`` (dlt makes it ``json`` for tables loaded
    from Parquet, for ADBC's sake; :class:`ParquetCopyJob` copies text into ``jsonb``)."""

    def to_destination_type(self, column: Any, table: Any) -> str:
        if column.get("data_type") == "json":
            return "jsonb"
        return super().to_destination_type(column, table)


class SolarsyncPostgresClient(PostgresClient):
    """dlt's Postgres client; Parquet files through :class:`ParquetCopyJob`."""

    def create_load_job(
        self, table: Any, file_path: str, load_id: str, restore: bool = False
    ) -> LoadJob:
        if ParsedLoadJobFileName.parse(file_path).file_format == "parquet":
            return ParquetCopyJob(file_path)
        return super().create_load_job(table, file_path, load_id, restore)


class SolarsyncPostgres(dlt.destinations.postgres):
    """dlt's ``postgres`` destination (same configuration section, same name) that normalizes
    to Parquet and loads it with :class:`SolarsyncPostgresClient`."""

    def _raw_capabilities(self) -> DestinationCapabilitiesContext:
        caps = super()._raw_capabilities()
        caps.preferred_loader_file_format = "parquet"
        caps.loader_file_format_selector = None  # Parquet without ADBC: ParquetCopyJob loads it
        caps.type_mapper = JsonbTypeMapper
        return caps

    @property
    def client_class(self) -> type[SolarsyncPostgresClient]:
        return SolarsyncPostgresClient


def postgres_destination(credentials: Any) -> SolarsyncPostgres:
    return SolarsyncPostgres(credentials=credentials, destination_name="postgres")
