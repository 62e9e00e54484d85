"""Publishing the DuckDB warehouse for BI tools.

DuckDB lets ONE process write a database file, or ANY number of processes read it, never both
at once (a reader holds a shared lock, a writer an exclusive one, and neither waits). A nightly
load into the file a dashboard has open therefore fails, and a dashboard opened during a load
fails. So solarsync never loads into the file BI tools open:

- dlt loads into a private **working file**; for the published path ``<dir>/<name>`` (the
  ``--warehouse`` / ``DESTINATION__DUCKDB__CREDENTIALS`` path, ``warehouse/solarsync.duckdb`` by
  default) that is ``<dir>/.solarsync/working.<name>``, so two warehouses in one folder never
  share one. DuckDB names a file's catalog after the file name up to its first dot: the working
  file's is ``working`` whatever the published name, never the name of a schema in it (a file
  named like a schema makes that schema's two-part names ambiguous, and dlt qualifies names
  with the schema only; ``pipelines.duckdb_catalog``). It is created in the configured storage
  version (``pipelines.duckdb_storage``), so its copies open in the DuckDB of BI tools.
- after a load, :func:`publish_file` checkpoints and closes the working file (no WAL), copies it
  to ``<dir>/.<name>.publish-<pid>`` (reflink where the file system has one), fsyncs the copy,
  renames it over ``<dir>/<name>`` and fsyncs the directory. A connection opened before keeps
  reading its snapshot (the old inode); one opened after sees the new data; a crash leaves the
  old file or the new one, never half of one.
- every use of the working file holds the **warehouse lock** (``<dir>/.solarsync/<name>.lock``,
  ``flock``): held from the start of a load to the end of its publish, and around each of dlt's
  connections otherwise, so two sources syncing at once take turns (the second waits up to
  ``lock_timeout``) and a publish never copies another process's half-loaded package.
- a warehouse of an earlier version (a loaded file at the published path, no working file) is
  **adopted** the first time the lock is taken: copied to the working location, dlt state and
  all, so nothing is downloaded again. A working file of an earlier version
  (``.solarsync/<name>``) is renamed; one in a newer storage version than configured (DuckDB
  2.0's own format, from an earlier version) is rewritten once in the configured one.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import stat
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb

from pipelines.destinations.duckdb.files import (
    earlier_working_path,
    fast_copy,
    fsync_dir,
    fsync_file,
    literal,
    wal_path,
    working_path,
)
from pipelines.destinations.duckdb.storage import (
    attach_options,
    create,
    file_version,
    newer,
    readers,
)
from sources.common import DestinationError

logger = logging.getLogger("solarsync")

SOURCE = "destination duckdb"
#: a compacting copy (DuckDB COPY FROM DATABASE) runs 15 to 30 times slower than a byte copy
#: (``make bench``); it pays only when most of the file is free blocks, which merges leave
#: behind at about half of the file in steady state: compact when free blocks are at least
#: this share of the file and at least COMPACT_MIN_FREE bytes
COMPACT_FREE_SHARE = 0.6
COMPACT_MIN_FREE = 256 * 1024 * 1024
#: os.replace over a file another program has open fails on Windows file systems
REPLACE_ATTEMPTS = 5
REPLACE_PAUSE_S = 1.0


def compact_copy(
    src: Path, dst: Path, memory_limit: str | None = None, storage_version: str | None = None
) -> None:
    """A compacted copy: DuckDB writes every schema, table, view and macro of ``src`` into a
    new ``dst`` in ``storage_version`` (default: DuckDB's newest) (free blocks left behind by
    merges are not copied; a WAL next to ``src`` is replayed). 15 to 30 times slower than a
    byte copy (``make bench``, group 7)."""

    con = duckdb.connect(":memory:")
    try:
        if memory_limit:
            con.execute("SET memory_limit = ?", [memory_limit])
        con.execute("SET preserve_insertion_order = false")
        con.execute("SET enable_progress_bar = false")  # no bar in a cron job's output
        con.execute(f"ATTACH {literal(src)} AS solarsync_src (READ_ONLY)")
        options = attach_options(storage_version) if storage_version else ""
        con.execute(f"ATTACH {literal(dst)} AS solarsync_dst {options}")
        con.execute("COPY FROM DATABASE solarsync_src TO solarsync_dst")
        con.execute("DETACH solarsync_dst")
        con.execute("DETACH solarsync_src")
    finally:
        con.close()


def readable_copy(src: Path, dst: Path, storage_version: str) -> str:
    """A copy of the (closed) DuckDB file ``src`` at ``dst`` that readers of
    ``storage_version`` open: a byte copy, or a compacting copy into ``storage_version`` when
    ``src`` is in a newer one. Returns which ("copy" or "converted")."""

    try:
        found = file_version(src)
    except duckdb.IOException:  # a program holds it for writing: copied as it is, this time
        found = storage_version
    if newer(found, storage_version):
        compact_copy(src, dst, storage_version=storage_version)
        return "converted"
    shutil.copyfile(src, dst)
    return "copy"


def free_share(database: Path) -> tuple[float, int]:
    """(share of the file's blocks that are free, free bytes) of a closed database file."""

    con = duckdb.connect(str(database), read_only=True)
    try:
        row = con.execute("PRAGMA database_size").fetchone()
    finally:
        con.close()
    block_size, total, free = int(row[2]), int(row[3]), int(row[5])
    return (free / total if total else 0.0), free * block_size


def should_compact(mode: str, share: float, free_bytes: int) -> bool:
    if mode == "always":
        return True
    if mode == "never":
        return False
    return share >= COMPACT_FREE_SHARE and free_bytes >= COMPACT_MIN_FREE


# --------------------------------------------------------------------------- publish
@dataclass
class Published:
    method: str  # reflink | copy_file_range | copy
    bytes: int
    seconds: float
    compacted: bool = False
    compact_seconds: float = 0.0
    #: the whole publish: checkpoint, compaction if any, copy, rename, fsyncs
    total_seconds: float = 0.0


def leftovers(published: Path) -> list[Path]:
    """Temporary files a killed publish, compaction or adoption left behind."""
    work = working_path(published)
    found = list(published.parent.glob(f".{published.name}.publish-*"))
    if work.parent.exists():
        found += list(work.parent.glob(f"{work.name}.compact-*"))
        found += list(work.parent.glob(f"{work.name}.adopt-*"))
        found += list(work.parent.glob(f"{work.name}.convert-*"))
    return found


def checkpoint(database: Path, stamp: dict[str, Any] | None = None) -> None:
    """Write everything to the database file and close it: no WAL left to copy or lose.
    ``stamp`` (published_at, published_by) goes into ``solarsync.snapshot`` first."""

    con = duckdb.connect(str(database))
    try:
        if stamp:
            con.execute("CREATE SCHEMA IF NOT EXISTS solarsync")
            con.execute(
                "CREATE OR REPLACE TABLE solarsync.snapshot AS "
                "SELECT CAST(? AS TIMESTAMPTZ) AS published_at, CAST(? AS VARCHAR) AS published_by"
                ", CAST(? AS VARCHAR) AS published_path",
                [stamp["published_at"], stamp["published_by"], stamp["published_path"]],
            )
        con.execute("CHECKPOINT")
    finally:
        con.close()
    wal = wal_path(database)
    if wal.exists() and wal.stat().st_size > 0:
        raise DestinationError(
            f"the working file {database} still has a write-ahead log after a checkpoint: "
            "another connection in this process keeps it open",
            source=SOURCE,
            hint="this is a bug in solarsync: please report it; nothing was lost",
        )


def publish_file(
    working: Path,
    published: Path,
    *,
    by: str,
    compact: str = "auto",
    memory_limit: str | None = None,
    storage_version: str | None = None,
) -> Published:
    """Make ``published`` an exact, complete copy of ``working`` (which must be closed and the
    warehouse lock held). Atomic: readers see the old file or the new one."""
    began = time.perf_counter()
    for leftover in leftovers(published):
        logger.info("removing %s left by an interrupted publish", leftover)
        leftover.unlink(missing_ok=True)
    checkpoint(
        working,
        {
            "published_at": datetime.now(UTC),
            "published_by": by,
            "published_path": str(published),
        },
    )
    info = Published(method="", bytes=0, seconds=0.0)
    # a file smaller than the least free space worth compacting: no need to ask DuckDB
    small = compact == "auto" and working.stat().st_size < COMPACT_MIN_FREE
    share, free_bytes = (0.0, 0) if small else free_share(working)
    if should_compact(compact, share, free_bytes):
        started = time.perf_counter()
        tmp = working.with_name(f"{working.name}.compact-{os.getpid()}")
        compact_copy(working, tmp, memory_limit, storage_version)
        fsync_file(tmp)
        os.replace(tmp, working)
        fsync_dir(working.parent)
        info.compacted, info.compact_seconds = True, time.perf_counter() - started
        logger.info(
            "compacted the working file (%.0f%% free, %d MB) in %.1fs",
            100 * share,
            free_bytes // 2**20,
            info.compact_seconds,
        )
    started = time.perf_counter()
    tmp = published.with_name(f".{published.name}.publish-{os.getpid()}")
    try:
        info.method = fast_copy(working, tmp)
        with contextlib.suppress(FileNotFoundError):
            # keep the permissions someone gave the published file (e.g. 0640 for a BI group)
            os.chmod(tmp, stat.S_IMODE(published.stat().st_mode))
        fsync_file(tmp)
        _drop_stale_wal(published)
        _replace(tmp, published, working)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_dir(published.parent)
    info.seconds = time.perf_counter() - started
    info.total_seconds = time.perf_counter() - began
    info.bytes = published.stat().st_size
    return info


def _drop_stale_wal(published: Path) -> None:
    """A ``.wal`` next to the published file is what a program wrote INTO the published copy
    (opened read-write) and has not checkpointed. DuckDB refuses to open a file whose WAL
    belongs to another file ("WAL does not match database file"), so it would lock every new
    reader out of the new copy: remove it. Those writes were to a copy that is being replaced."""
    wal = wal_path(published)
    if wal.exists():
        logger.warning(
            "a program wrote into the published file %s (its write-ahead log %s was next to "
            "it); the published file is replaced at every publish, so those changes are "
            "dropped. Open the published file read-only, and keep your own tables in a file "
            "of your own (ATTACH it)",
            published,
            wal.name,
        )
        wal.unlink(missing_ok=True)


def _replace(tmp: Path, published: Path, working: Path) -> None:
    for attempt in range(1, REPLACE_ATTEMPTS + 1):
        try:
            os.replace(tmp, published)
            return
        except PermissionError:
            # Windows (and SMB shares) refuse to replace a file another program has open
            if attempt == REPLACE_ATTEMPTS:
                raise DestinationError(
                    f"could not replace the published file {published}: another program has "
                    "it open and this file system does not allow replacing an open file "
                    "(Windows, SMB shares)",
                    source=SOURCE,
                    hint=f"the load is complete and safe in {working}; it is published by the "
                    "next run once BI tools close the file (disconnect them, or set them to "
                    "close idle connections)",
                ) from None
            time.sleep(REPLACE_PAUSE_S)


# --------------------------------------------------------------------------- adoption
def adopt(published: Path, working: Path, storage_version: str | None = None) -> str:
    """Make a warehouse of an earlier version (loaded in place at ``published``) the working
    file, dlt state and all; ``published`` stays as BI tools know it until the next publish.
    Returns how ("copy", or "compacting copy" into ``storage_version`` when a WAL was next to
    it)."""

    for leftover in leftovers(published):
        leftover.unlink(missing_ok=True)
    working.parent.mkdir(parents=True, exist_ok=True)
    tmp = working.with_name(f"{working.name}.adopt-{os.getpid()}")
    # a read-only attach: works beside BI readers, keeps writers out while we copy, and
    # replays a WAL an interrupted run of the earlier version left
    con = duckdb.connect(":memory:")
    try:
        try:
            con.execute(f"ATTACH {literal(published)} AS solarsync_old (READ_ONLY)")
        except duckdb.Error as exc:
            raise DestinationError(
                f"could not open the warehouse {published} to move it to the working file "
                f"{working} (first run of this version): {str(exc).splitlines()[0]}",
                source=SOURCE,
                hint="a program holds it open for writing: close it (or open it read-only) "
                "for this one run; nothing was lost",
            ) from None
        if wal_path(published).exists():
            options = attach_options(storage_version) if storage_version else ""
            con.execute(f"ATTACH {literal(tmp)} AS solarsync_new {options}")
            con.execute("COPY FROM DATABASE solarsync_old TO solarsync_new")
            con.execute("DETACH solarsync_new")
            how = "compacting copy"
        else:
            fast_copy(published, tmp)
            how = "copy"
        fsync_file(tmp)
        os.replace(tmp, working)
        fsync_dir(working.parent)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    finally:
        con.close()
    logger.warning(
        "adopted the warehouse of an earlier solarsync version: %s is now loaded through the "
        "working file %s (%s) and published to %s after each run",
        published,
        working,
        how,
        published,
    )
    return how


def prepare_working_file(
    published: Path, storage_version: str, memory_limit: str | None = None
) -> list[str]:
    """Under the warehouse lock, before dlt opens the working file: make it exist, in a
    storage version readers of ``storage_version`` open. Returns what it did, in order:

    - ``"renamed"``: an earlier version's working file (``.solarsync/<name>``) moved to
      :func:`working_path` (its WAL with it);
    - ``"adopted"``: an earlier version's warehouse loaded in place at ``published`` copied
      (:func:`adopt`);
    - ``"created"``: a new, empty file in ``storage_version`` (dlt would create it in DuckDB's
      newest format);
    - ``"converted"``: a file in a newer format than ``storage_version`` (DuckDB 2.0's own,
      written by an earlier version) rewritten in it, once: a compacting copy, every table,
      view and macro and dlt's state included (:func:`convert`);
    - ``"unchecked"``: another program holds the working file (dlt's connection fails next,
      with the load step's message naming that program, :mod:`pipelines.results`); checked
      again next time.
    """

    working = working_path(published)
    done: list[str] = []
    if not working.exists():
        earlier = earlier_working_path(published)
        working.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        if earlier.exists():
            if wal_path(earlier).exists():
                os.replace(wal_path(earlier), wal_path(working))
            os.replace(earlier, working)
            fsync_dir(working.parent)
            logger.warning(
                "moved the working file of an earlier solarsync version %s to %s",
                earlier,
                working,
            )
            done.append("renamed")
        elif published.exists():
            adopt(published, working, storage_version)
            done.append("adopted")
        else:
            create(working, storage_version)
            return [*done, "created"]
    try:
        found = file_version(working)
    except duckdb.IOException as exc:
        if "lock" not in str(exc).lower():
            raise
        # a program opened the working file itself: dlt's connection says so (pipelines.results)
        return [*done, "unchecked"]
    if newer(found, storage_version):
        started = time.perf_counter()
        convert(working, storage_version, memory_limit)
        logger.warning(
            "rewrote the working file %s from DuckDB storage version %s to %s (%.1fs, once): "
            "the files published from it open in %s",
            working,
            found,
            storage_version,
            time.perf_counter() - started,
            readers(storage_version),
        )
        done.append("converted")
    return done


def convert(working: Path, storage_version: str, memory_limit: str | None = None) -> None:
    """Rewrite the (closed) working file in ``storage_version``: checkpointed first (no WAL
    left to replay over the new file), a compacting copy next to it, renamed over it."""
    checkpoint(working)
    tmp = working.with_name(f"{working.name}.convert-{os.getpid()}")
    tmp.unlink(missing_ok=True)
    try:
        compact_copy(working, tmp, memory_limit, storage_version)
        fsync_file(tmp)
        os.replace(tmp, working)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_dir(working.parent)
