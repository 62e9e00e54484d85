"""Small files: compaction (``OPTIMIZE``) and ``VACUUM`` of the lake's Delta tables.

Every load adds at least one Parquet file per table it touches (a merge rewrites the files it
changes, in the day partitions it touches): a 5-second Tesla poll loaded every 5 minutes makes
hundreds of files a day per table. ``solarsync lake optimize`` (and, after every
``optimize_every`` loads of a source, the load itself) compacts each table's small files into
files of up to 128 MiB, partition by partition, then vacuums: files that are no longer part of
the current version and are older than ``vacuum_retention_hours`` (default 7 days) are deleted.
The retention keeps earlier versions readable for that long (time travel, a views file or a
reader opened before the compaction).
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import dlt

#: ``lake`` arguments below are :class:`pipelines.destinations.lake.LakeWarehouse` instances
#: (not imported: the warehouse module imports this one)
LakeWarehouse = Any

logger = logging.getLogger("solarsync")

TARGET_FILE_SIZE = 128 * 1024 * 1024
COUNTER_FILE = "lake_loads_since_optimize.json"


@dataclass
class TableMaintenance:
    dataset: str
    table: str
    files_before: int = 0
    files_after: int = 0
    files_removed_by_compaction: int = 0
    files_vacuumed: int = 0
    version: int = 0
    notes: list[str] = field(default_factory=list)


def optimize_table(
    lake: LakeWarehouse, dataset: str, table: str, *, vacuum: bool = True
) -> TableMaintenance:
    """Compact one Delta table, then vacuum it with the lake's retention."""
    result = TableMaintenance(dataset, table)
    delta = lake.delta_table(dataset, table)
    if delta is None:
        result.notes.append("not a Delta table")
        return result
    result.files_before = len(delta.file_uris())
    metrics = delta.optimize.compact(target_size=TARGET_FILE_SIZE)
    result.files_removed_by_compaction = int(metrics.get("numFilesRemoved", 0))
    if vacuum:
        removed = delta.vacuum(
            retention_hours=lake.retention_hours,
            dry_run=False,
            enforce_retention_duration=False,
        )
        result.files_vacuumed = len(removed)
    # a checkpoint of the log: a reader (the next load's merge, a BI query) replays the
    # commits after it, not every small commit since the table began
    delta.create_checkpoint()
    delta.update_incremental()
    result.files_after = len(delta.file_uris())
    result.version = delta.version()
    return result


def optimize(
    lake: LakeWarehouse, datasets: list[str] | None = None, *, vacuum: bool = True
) -> list[TableMaintenance]:
    out = []
    for dataset in datasets or lake.datasets():
        for table in lake.tables(dataset):
            out.append(optimize_table(lake, dataset, table, vacuum=vacuum))
    return out


def maybe_optimize(lake: LakeWarehouse, pipeline: dlt.Pipeline, source: str) -> list[Any]:
    """Count this load; after ``optimize_every`` loads of the source, optimize its tables.
    The count is kept in the pipeline's working dir (per host, as the local lock)."""
    if lake.optimize_every <= 0:
        return []
    path = Path(pipeline.working_dir) / COUNTER_FILE
    try:
        count = int(json.loads(path.read_text()).get("loads", 0))
    except (OSError, ValueError, AttributeError):
        count = 0
    count += 1
    done: list[Any] = []
    if count >= lake.optimize_every:
        logger.info("%s: %d loads since the last compaction: optimizing its tables", source, count)
        done = optimize(lake, [pipeline.dataset_name])
        count = 0
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = path.with_suffix(".tmp")
    temp.write_text(json.dumps({"loads": count}))
    temp.replace(path)
    return done
