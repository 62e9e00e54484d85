"""``solarsync lake optimize``: compaction and vacuum of the lake's Delta tables;
``solarsync lake views``: the views script of a remote lake, from its bucket."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from pipelines import history, registry
from pipelines.commands.common import out, warehouse_of
from pipelines.destinations.lake.bucket import bucket_error, without_userinfo
from pipelines.destinations.lake.maintenance import optimize
from pipelines.destinations.lake.publish import publish_dataset, write_script_copy
from pipelines.destinations.lake.warehouse import LakeWarehouse
from pipelines.sync import make_pipeline
from sources.common import SolarsyncError, redact

logger = logging.getLogger("solarsync")


def cmd_lake(args: argparse.Namespace) -> int:
    warehouse = warehouse_of(args)
    if warehouse is None:
        return 2
    if not isinstance(warehouse, LakeWarehouse):
        logger.error(
            "solarsync lake works on the Delta lake: add --destination filesystem "
            '(or set [solarsync] destination = "filesystem")'
        )
        return 2
    if args.action == "views":
        return views_command(warehouse, getattr(args, "output", None))
    try:
        names = [registry.get(name).name for name in args.sources]
    except KeyError as exc:
        logger.error("%s", exc.args[0])
        return 2
    if args.retention_hours is not None:
        warehouse.retention_hours = args.retention_hours
    try:
        warehouse.preflight()
        done = optimize(warehouse, names or None, vacuum=not args.no_vacuum)
    except SolarsyncError as exc:
        out(f"lake optimize: FAILED: {redact(exc)}")
        return 1
    republished = republish(warehouse, sorted({t.dataset for t in done}))
    out(f"lake optimize: {warehouse.describe()}")
    out(f"  {'table':<40}{'files before':>13}{'after':>8}{'vacuumed':>10}{'version':>9}")
    for table in done:
        out(
            f"  {table.dataset + '.' + table.table:<40}{table.files_before:>13}"
            f"{table.files_after:>8}{table.files_vacuumed:>10}{table.version:>9}"
        )
    if not done:
        out("  no Delta table found")
    if republished:
        out(f"  views republished for {', '.join(republished)}")
    return 0


def views_command(warehouse: LakeWarehouse, output: str | None) -> int:
    """Write the bucket's views script to ``output`` (default the local copy)."""
    if warehouse.local:
        out(
            f"lake views: {warehouse.views_file} (a DuckDB file of views, relocatable with the lake)"
        )
        return 0
    try:
        written = write_script_copy(warehouse, Path(output) if output else None)
    except SolarsyncError as exc:
        out(f"lake views: FAILED: {redact(exc)}")
        return 1
    except Exception as exc:  # the bucket cannot be read (read access is all this needs)
        where = redact(without_userinfo(warehouse.bucket_url))
        out(f"lake views: FAILED: {bucket_error(exc, where, 'read')}")
        return 1
    if written is None:
        out(f"lake views: {warehouse.describe()} has no views yet: run a source first")
        return 1
    out(f"lake views: wrote {written} (from {warehouse.describe()})")
    return 0


def views_of(dataset: str) -> str | None:
    """The views file of a dataset of the lake: a source's, or the run history's."""
    if dataset in registry.SOURCES:
        return registry.SOURCES[dataset].views
    return history.VIEWS if dataset == history.DATASET_NAME else None


def republish(warehouse: LakeWarehouse, datasets: list[str]) -> list[str]:
    """The views file lists each table's files: list the compacted ones (a source whose dlt
    schema is not on this host keeps its views until its next load)."""
    done = []
    for dataset in datasets:
        pipeline = make_pipeline(dataset, warehouse)
        if dataset not in pipeline.schemas:
            logger.warning(
                "%s: no dlt schema on this host; its views are refreshed by its next load", dataset
            )
            continue
        publish_dataset(warehouse, pipeline, dataset, views_of(dataset))
        done.append(dataset)
    return done
