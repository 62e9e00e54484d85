"""Warehouses written before ``schedule_entries.entry_hash``: give their rows one.

Before, dlt's scd2 used its own row hash (``_dlt_id``, over every column), so a field the API
added to unchanged entries made a new version of every entry. Now the row version is
``entry_hash``, a hash of the six entry fields only (:func:`sources.heat.model.entry_hash`).
Rows written before carry no ``entry_hash``; dlt's merge would take every active one as gone
and insert every entry again, so the first snapshot after the upgrade would look like a change
of every entry. Before that snapshot is extracted, this adds the column and fills it for every
stored row from its own values, in one transaction: unchanged entries then match and keep their
version (and ``known_since``). Idempotent (only rows without a hash are touched); the resource
state records when it is done, so later runs skip the check.
"""

from __future__ import annotations

import logging
from typing import Any

from dlt.destinations.job_client_impl import SqlJobClientBase

from sources.common import SolarsyncError
from sources.heat.model import entry_hash
from sources.heat.settings import ENTRY_HASH_COLUMN, ENTRY_HASH_FIELDS, SOURCE_NAME

logger = logging.getLogger("solarsync.heat")

TABLE = "schedule_entries"
_BATCH = 500  # rows per INSERT of the hash list


def fill_entry_hashes(pipeline: Any) -> int:
    """Adds and fills ``entry_hash`` of the stored ``schedule_entries`` rows that lack one;
    returns how many rows got a hash (0: a new warehouse, or nothing left to do)."""
    try:
        with pipeline.destination_client() as job_client:
            if not isinstance(job_client, SqlJobClientBase):
                return 0  # e.g. a lake: only the DuckDB warehouse had rows without the hash
            client = job_client.sql_client
            exists, columns = job_client.get_storage_table(TABLE)
            if not exists:  # a new warehouse: dlt creates the table with the column
                return 0
            with client.begin_transaction():
                _add_column(client, columns)
                # dlt's staging copy of the table (scratch, emptied at each load) has old rows
                # too: dlt could not add the NOT NULL column there either
                with client.with_staging_dataset():
                    staged, staged_columns = job_client.get_storage_table(TABLE)
                    if staged:
                        _add_column(client, staged_columns)
                return _fill(client)
    except SolarsyncError:
        raise
    except Exception as exc:
        raise SolarsyncError(
            f"could not add entry_hash to the stored rows ({type(exc).__name__}: {exc})",
            source=SOURCE_NAME,
            endpoint=TABLE,
            hint="nothing was loaded; rerun. If it persists, report it: the schedule history "
            "needs this one-time upgrade before the next snapshot",
        ) from exc


def _add_column(client: Any, columns: dict[str, Any]) -> None:
    if ENTRY_HASH_COLUMN not in columns:
        # nullable: a NOT NULL column cannot be added to a table that has rows
        table = client.make_qualified_table_name(TABLE)
        column = client.escape_column_name(ENTRY_HASH_COLUMN)
        client.execute_sql(f"ALTER TABLE {table} ADD COLUMN {column} VARCHAR")


def _fill(client: Any) -> int:
    table = client.make_qualified_table_name(TABLE)
    column = client.escape_column_name(ENTRY_HASH_COLUMN)
    fields = ", ".join(client.escape_column_name(f) for f in ("_dlt_id", *ENTRY_HASH_FIELDS))
    rows = client.execute_sql(f"SELECT DISTINCT {fields} FROM {table} WHERE {column} IS NULL")
    if not rows:
        return 0
    # `_dlt_id` was dlt's hash of all columns: equal ids are equal rows, so one hash each
    hashes = {
        row[0]: entry_hash(dict(zip(ENTRY_HASH_FIELDS, row[1:], strict=True))) for row in rows
    }
    pairs = list(hashes.items())
    staged = "solarsync_heat_entry_hashes"
    client.execute_sql(f"CREATE TEMPORARY TABLE {staged} (dlt_id VARCHAR, entry_hash VARCHAR)")
    try:
        for i in range(0, len(pairs), _BATCH):
            batch = pairs[i : i + _BATCH]
            values = ", ".join(["(%s, %s)"] * len(batch))
            client.execute_sql(
                f"INSERT INTO {staged} VALUES {values}", *[v for pair in batch for v in pair]
            )
        dlt_id = client.escape_column_name("_dlt_id")
        client.execute_sql(
            f"UPDATE {table} AS t SET {column} = h.entry_hash FROM {staged} AS h "
            f"WHERE t.{dlt_id} = h.dlt_id AND t.{column} IS NULL"
        )
    finally:
        client.execute_sql(f"DROP TABLE {staged}")
    logger.info(
        "heat %s: upgraded %d stored row version(s) to entry_hash (one time)", TABLE, len(rows)
    )
    return len(rows)
