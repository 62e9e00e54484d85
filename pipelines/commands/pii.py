"""``solarsync pii apply``: rewrite what a destination already stores under the configured
``[solarsync.pii]`` policy (docs/pii.md, "Changing the policy").

For each source: the policy its data was written under (the stamp in its dlt state; data
loaded before solarsync protected personal data counts as ``keep``) against the configured
one. Every column of every table of the source's dataset is classified as a run classifies
it (declarations, patterns, JSON values walked) and moved from the stored action to the
configured one (:class:`sources.common.pii.TransitionRules`): ``keep`` to anything is
computed exactly as a run would (the hashes equal those of later runs); to ``drop`` clears;
what cannot be computed from what is stored (a hash back to the raw value, another key) is
cleared and named. Then the freed storage is rewritten so the old values are gone from the
files too: DuckDB publishes a compacted copy, Postgres runs ``VACUUM FULL`` on each changed
table, the lake rewrites each changed Delta table and vacuums every older version. The new
stamp is committed to the source's state, so the next run loads under the new policy.
"""

from __future__ import annotations

import argparse
import importlib
import json
import logging
import os
import shutil
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from pipelines import registry
from pipelines.commands.common import out, warehouse_of
from pipelines.sync import Sync
from sources.common import SolarsyncError, redact
from sources.common.pii import (
    STATE_KEY,
    Redactor,
    TransitionRules,
    Walker,
    describe,
    differences,
    legacy_stamp,
    path_of,
)
from sources.common.pii.rules import DROP

logger = logging.getLogger("solarsync")


def cmd_pii(args: argparse.Namespace) -> int:
    # DuckDB: the published file (and the working one) rewritten without the freed blocks,
    # which still hold the values an UPDATE replaced
    os.environ["DESTINATION__DUCKDB__COMPACT"] = "always"
    warehouse = warehouse_of(args)
    if warehouse is None:
        return 2
    try:
        names = [registry.get(name).name for name in args.sources] or list(registry.SOURCES)
    except KeyError as exc:
        logger.error("%s", exc.args[0])
        return 2
    failed = 0
    for name in names:
        try:
            out(apply_source(registry.get(name), warehouse))
        except SolarsyncError as exc:
            out(f"  {name}: FAILED: {redact(exc)}")
            failed += 1
    return 1 if failed else 0


def declared_of(source: str) -> Any:
    return importlib.import_module(f"sources.{source}.settings").PII


def apply_source(spec: Any, warehouse: Any) -> str:
    name = spec.name
    with Sync(spec, warehouse) as sync:
        pipeline = sync.pipeline
        if pipeline.config.restore_from_destination and not pipeline.dev_mode:
            pipeline.sync_destination()
        source_state = pipeline.state.get("sources", {}).get(name)
        if not source_state:
            return f"  {name}: nothing stored"
        declared = declared_of(name)
        redactor = Redactor(name, declared)
        record = dict(source_state.get(STATE_KEY) or {})
        redactor._record = record
        current = redactor.stamp()
        stored = record.get("policy") or legacy_stamp(
            redactor.classes(), bool(declared.attachments)
        )
        changed = differences(stored, current)
        if not changed:
            return f"  {name}: already stored under the configured policy ({describe(current)})"
        keep = stored.get("address_keep")
        rules = TransitionRules(
            redactor.policy,
            stored.get("classes") or {},
            stored_keep=frozenset(keep) if keep is not None else None,
            rekeyed=bool(stored.get("key")) and stored.get("key") != current.get("key"),
        )
        walker = Walker(redactor.classifier, rules, address_keep=frozenset())
        with warehouse.writing(name):
            files = 0
            if declared.attachments and any(c.startswith("attachments") for c in changed):
                # before the file names are rewritten: they say what a file is
                files = skip_files(pipeline, warehouse, redactor.policy.attachments)
            counts = rewrite(pipeline, warehouse, name, walker)
            # dlt keeps the files of loaded packages: those of earlier runs hold old values
            loaded = Path(pipeline.working_dir) / "load" / "loaded"
            shutil.rmtree(loaded, ignore_errors=True)
            # the new stamp, committed with a load package of the state alone
            with pipeline.managed_state(extract_state=True) as state:
                state["sources"].setdefault(name, {})[STATE_KEY] = {**record, "policy": current}
            pipeline.normalize()
            pipeline.load().raise_on_failed_jobs()
            sync.publish()  # DuckDB: a compacted copy (set in cmd_pii)
        cleared = ", ".join(f"{c} ({why})" for c, why in sorted(rules.cannot.items()))
        lines = [
            f"  {name}: {describe(stored)} -> {describe(current)}",
            f"    {sum(counts.values())} values rewritten in {len(counts)} tables"
            + "".join(f"; {t}: {n}" for t, n in sorted(counts.items())),
        ]
        if cleared:
            lines.append(f"    cleared, not computable from what is stored: {cleared}")
        if declared.attachments and any(c.startswith("attachments") for c in changed):
            lines.append(f"    files: {files} stored file(s) of skipped categories deleted")
        return "\n".join(lines)


ATTACHMENTS_TABLE = "lead_attachments"
_FILE_COLUMNS = ("lead_id", "file_id", "file_name", "mime_type", "file_category", "status",
                 "blob_path")  # fmt: skip


def _skipped(rules: Any, row: dict[str, Any]) -> dict[str, Any] | None:
    """The new values of a stored file's row when its category is no longer downloaded."""
    if row.get("status") != "stored":
        return None
    category = row.get("file_category") or rules.category(
        row.get("file_name"), row.get("mime_type")
    )
    if rules.downloads(category):
        return None
    return {"file_category": category, "status": "skipped", "reason": rules.reason(category),
            "blob_path": None, "sha256": None, "bytes_stored": None, "downloaded_at": None}  # fmt: skip


def _delete_blob(warehouse: Any, path: str | None) -> None:
    if not path:
        return
    from fsspec.core import url_to_fs

    options = {}
    if "://" in path and warehouse.kind == "filesystem" and not warehouse.local:
        from dlt.common.storages.fsspec_filesystem import fsspec_from_config

        fs, _ = fsspec_from_config(warehouse.client_config())
    else:
        fs, _ = url_to_fs(path, **options)
    target = path.split("://", 1)[1] if "://" in path else path
    if fs.exists(target):
        fs.rm(target)


def skip_files(pipeline: Any, warehouse: Any, rules: Any) -> int:
    """Stored files of categories the policy no longer downloads: their blobs deleted, their
    rows marked skipped (as a run records a file it does not download)."""
    done = 0
    if warehouse.kind == "filesystem":
        delta = warehouse.delta_table(pipeline.dataset_name, ATTACHMENTS_TABLE)
        if delta is None:
            return 0
        data = delta.to_pyarrow_table()
        records = data.to_pylist()
        for record in records:
            new = _skipped(rules, record)
            if new is not None:
                _delete_blob(warehouse, record.get("blob_path"))
                record.update({k: v for k, v in new.items() if k in record})
                done += 1
        if done:
            import pyarrow as pa
            from deltalake import write_deltalake

            write_deltalake(
                warehouse.table_url(pipeline.dataset_name, ATTACHMENTS_TABLE),
                pa.Table.from_pylist(records, schema=data.schema),
                mode="overwrite",
                storage_options=None if warehouse.local else warehouse.storage_options(),
            )
            delta = warehouse.delta_table(pipeline.dataset_name, ATTACHMENTS_TABLE)
            delta.vacuum(retention_hours=0, enforce_retention_duration=False, dry_run=False)
            _forget_old_log(delta)
        return done
    with pipeline.sql_client() as client:
        qualified = client.make_qualified_table_name(ATTACHMENTS_TABLE)
        columns = ", ".join(client.escape_column_name(c) for c in _FILE_COLUMNS)
        try:
            rows = client.execute_sql(f"SELECT {columns} FROM {qualified}")
        except Exception as exc:
            if "not exist" in str(exc) or "not found" in str(exc):
                return 0
            raise
        mark = "%s" if warehouse.kind == "postgres" else "?"
        for row in rows or []:
            record = dict(zip(_FILE_COLUMNS, row, strict=True))
            new = _skipped(rules, record)
            if new is None:
                continue
            _delete_blob(warehouse, record["blob_path"])
            sets = ", ".join(f"{client.escape_column_name(k)} = {mark}" for k in new)
            sql = f"UPDATE {qualified} SET {sets} WHERE lead_id = {mark} AND file_id = {mark}"
            params = [*new.values(), record["lead_id"], record["file_id"]]
            native = client.native_connection
            if warehouse.kind == "postgres":
                with native.cursor() as cursor:
                    cursor.execute(sql, params)
                native.commit()
            else:
                native.execute(sql, params)
            done += 1
    return done


def _keys(pipeline: Any, name: str, table: str) -> list[str]:
    """What identifies a row: the table's primary key, else dlt's row id."""
    schema = pipeline.schemas[name] if name in pipeline.schemas else pipeline.default_schema
    columns = schema.tables[table].get("columns") or {}
    keys = [c for c, hints in columns.items() if hints.get("primary_key")]
    return keys or ["_dlt_id"]


def _plan(pipeline: Any, name: str, walker: Walker) -> dict[str, list[str]]:
    """The columns of each table that may hold personal data (classified, JSON, or text that
    the value scan looks at)."""
    schema = pipeline.schemas[name] if name in pipeline.schemas else pipeline.default_schema
    plan: dict[str, list[str]] = {}
    for table, info in schema.tables.items():
        if table.startswith("_dlt"):
            continue
        base, *nested = table.split("__")
        columns = []
        for column, hints in (info.get("columns") or {}).items():
            if column.startswith("_dlt"):
                continue
            path = (*path_of("__".join(nested)), *path_of(column)) if nested else path_of(column)
            found = walker.classifier.classify(base, path)
            if found is not None and type(found).__name__ == "Pii":
                columns.append(column)
            elif hints.get("data_type") in ("json", "text") and not _safe(walker, base, path):
                columns.append(column)
        if columns:
            plan[table] = columns
    return plan


def _safe(walker: Walker, table: str, path: tuple[str, ...]) -> bool:
    from sources.common.pii import IDENTIFIER, SAFE

    found = walker.classifier.classify(table, path)
    return found is SAFE or found is IDENTIFIER


def _new_value(walker: Walker, base: str, path: tuple[str, ...], value: Any) -> Any:
    if value is None:
        return None
    parsed, was_json = value, False
    if isinstance(value, str) and value[:1] in ("[", "{"):
        try:
            parsed, was_json = json.loads(value), True
        except ValueError:
            parsed = value
    elif isinstance(value, dict | list):
        was_json = True
    before = json.dumps(parsed, sort_keys=True, default=str) if was_json else None
    new = walker.value(base, path, parsed)
    if new is DROP:
        return None
    if was_json:
        after = json.dumps(new, sort_keys=True, default=str)
        if after == before:
            return value
        # as it came: JSON text stays text, a nested value (the lake's structs) stays nested
        return json.dumps(new, default=str) if isinstance(value, str) else new
    return new


def _changes(
    walker: Walker, table: str, columns: list[str], rows: Iterable[tuple], keys: int
) -> tuple[list[tuple], int]:
    """``(new values..., key values...)`` of the rows that change, and how many values do."""
    base, *nested = table.split("__")
    prefix = path_of("__".join(nested)) if nested else ()
    out_rows, changed = [], 0
    for row in rows:
        ids, values = tuple(row[:keys]), row[keys:]
        new = []
        differs = False
        for column, value in zip(columns, values, strict=True):
            got = _new_value(walker, base, (*prefix, *path_of(column)), value)
            if got is not value and got != value:
                differs = True
                changed += 1
            new.append(got)
        if differs:
            # Postgres reads jsonb as Python objects: written back as JSON text
            new = [json.dumps(v, default=str) if isinstance(v, dict | list) else v for v in new]
            out_rows.append((*new, *ids))
    return out_rows, changed


def rewrite(pipeline: Any, warehouse: Any, name: str, walker: Walker) -> dict[str, int]:
    if warehouse.kind == "filesystem":
        return _rewrite_lake(pipeline, warehouse, name, walker)
    counts: dict[str, int] = {}
    plan = _plan(pipeline, name, walker)
    with pipeline.sql_client() as client:
        for table, columns in plan.items():
            qualified = client.make_qualified_table_name(table)
            quoted = [client.escape_column_name(c) for c in columns]
            keys = [client.escape_column_name(c) for c in _keys(pipeline, name, table)]
            try:
                rows = client.execute_sql(
                    f"SELECT {', '.join(keys)}, {', '.join(quoted)} FROM {qualified}"
                )
            except Exception as exc:
                if "not exist" in str(exc) or "does not exist" in str(exc):
                    continue
                raise
            updates, changed = _changes(walker, table, columns, rows or [], len(keys))
            if not updates:
                continue
            sets = ", ".join(f"{q} = %s" for q in quoted)
            where = " AND ".join(f"{k} = %s" for k in keys)
            sql = f"UPDATE {qualified} SET {sets} WHERE {where}"
            if warehouse.kind == "duckdb":
                sql = sql.replace("%s", "?")
            native = client.native_connection
            params = updates
            if warehouse.kind == "duckdb":
                native.executemany(sql, params)
            else:
                with native.cursor() as cursor:
                    cursor.executemany(sql, params)
                native.commit()
            counts[table] = changed
        # the merge staging tables still hold the last load's rows as they were written
        staging = f"{pipeline.dataset_name}_staging"
        leftovers = client.execute_sql(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = %s"
            if warehouse.kind == "postgres"
            else "SELECT table_name FROM information_schema.tables WHERE table_schema = ?",
            staging,
        )
        emptied = []
        for (table,) in leftovers or []:
            quoted = f"{client.escape_column_name(staging)}.{client.escape_column_name(table)}"
            client.execute_sql(f"DELETE FROM {quoted}")
            emptied.append(quoted)
        if warehouse.kind == "postgres" and (counts or emptied):
            native = client.native_connection
            native.commit()
            autocommit = native.autocommit
            native.autocommit = True
            try:
                with native.cursor() as cursor:
                    for table in counts:
                        cursor.execute(f"VACUUM FULL {client.make_qualified_table_name(table)}")
                    for quoted in emptied:
                        cursor.execute(f"VACUUM FULL {quoted}")
            finally:
                native.autocommit = autocommit
    return counts


def _rewrite_lake(pipeline: Any, lake: Any, name: str, walker: Walker) -> dict[str, int]:
    import pyarrow as pa
    from deltalake import write_deltalake

    counts: dict[str, int] = {}
    plan = _plan(pipeline, name, walker)
    options = None if lake.local else lake.storage_options()
    for table, columns in plan.items():
        delta = lake.delta_table(name, table)
        if delta is None:
            continue
        data = delta.to_pyarrow_table()
        base, *nested = table.split("__")
        prefix = path_of("__".join(nested)) if nested else ()
        changed = 0
        for column in columns:
            if column not in data.column_names:
                continue
            values = data.column(column).to_pylist()
            new = []
            for value in values:
                got = _new_value(walker, base, (*prefix, *path_of(column)), value)
                if got is not value and got != value:
                    changed += 1
                new.append(got)
            kind = data.schema.field(column).type
            try:
                array = pa.array(new, type=kind)
            except (pa.ArrowInvalid, pa.ArrowTypeError):
                array = pa.array([None if v is None else str(v) for v in new], type=pa.string())
            data = data.set_column(data.column_names.index(column), column, array)
        if not changed:
            continue
        partitions = list(delta.metadata().partition_columns or []) or None
        write_deltalake(
            lake.table_url(name, table),
            data,
            mode="overwrite",
            schema_mode="overwrite",
            partition_by=partitions,
            storage_options=options,
        )
        delta = lake.delta_table(name, table)
        delta.vacuum(retention_hours=0, enforce_retention_duration=False, dry_run=False)
        _forget_old_log(delta)
        counts[table] = changed
    return counts


def _forget_old_log(delta: Any) -> None:
    """The Delta log keeps statistics (min and max values) of every older file: a checkpoint
    of the new version, then the older log entries removed."""
    try:
        delta.create_checkpoint()
        delta.alter.set_table_properties(
            {"delta.logRetentionDuration": "interval 0 seconds"}, raise_if_not_exists=False
        )
        delta.cleanup_metadata()
    except Exception as exc:  # an older deltalake: the statistics stay in the log
        logger.warning("lake: the Delta log of %s keeps its older entries: %s", delta, exc)


__all__ = ["apply_source", "cmd_pii"]
