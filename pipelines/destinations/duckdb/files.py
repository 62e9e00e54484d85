"""The DuckDB warehouse's files: where the working file, its lock and its WAL live
(:mod:`pipelines.destinations.duckdb` explains why there are two files), and copying them."""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import shutil
from pathlib import Path

WORK_DIR = ".solarsync"
#: the working file is ``WORK_DIR/<WORKING_PREFIX><published name>``: its DuckDB catalog is
#: ``working`` (the name up to the first dot), which no dataset or ``analytics`` is called
WORKING_PREFIX = "working."
#: Linux FICLONE ioctl: share the blocks of a file (btrfs, XFS, bcachefs, ZFS 2.2+; not ext4)
FICLONE = 0x40049409


def working_path(published: Path) -> Path:
    """The private file dlt loads into, next to the published one."""
    return published.parent / WORK_DIR / f"{WORKING_PREFIX}{published.name}"


def earlier_working_path(published: Path) -> Path:
    """Where an earlier solarsync version kept the working file (its catalog was named like the
    published file, so a warehouse named like a schema could not load)."""
    return published.parent / WORK_DIR / published.name


def lock_path(published: Path) -> Path:
    """The warehouse lock (the same file as earlier versions used: they keep out of each
    other's way during an upgrade)."""
    return published.parent / WORK_DIR / f"{published.name}.lock"


def lock_path_of_working(working: Path) -> Path:
    """:func:`lock_path` of the warehouse whose working file is ``working``."""
    return working.with_name(f"{working.name.removeprefix(WORKING_PREFIX)}.lock")


def wal_path(database: Path) -> Path:
    return database.with_name(database.name + ".wal")


def fsync_file(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_dir(path: Path) -> None:
    with contextlib.suppress(OSError):  # not every platform opens directories
        fsync_file(path)


def fast_copy(src: Path, dst: Path) -> str:
    """Copy ``src`` to a new ``dst``: a reflink (no bytes copied) where the file system shares
    blocks, else ``copy_file_range`` (in-kernel; server-side on NFS 4.2), else a plain copy.
    Returns the method used."""
    with open(src, "rb") as fin, open(dst, "wb") as fout:
        try:
            fcntl.ioctl(fout.fileno(), FICLONE, fin.fileno())
            return "reflink"
        except OSError:
            pass
        size = os.fstat(fin.fileno()).st_size
        copied = 0
        try:
            while copied < size:
                n = os.copy_file_range(fin.fileno(), fout.fileno(), size - copied)
                if n == 0:
                    break
                copied += n
            if copied == size:
                return "copy_file_range"
        except (AttributeError, OSError) as exc:
            if isinstance(exc, OSError) and exc.errno not in (
                errno.EXDEV,
                errno.ENOSYS,
                errno.EOPNOTSUPP,
                errno.EINVAL,
                errno.EBADF,
            ):
                raise
        fin.seek(0)
        fout.seek(0)
        fout.truncate()
        shutil.copyfileobj(fin, fout, 8 * 1024 * 1024)
        return "copy"


def literal(text: str | Path) -> str:
    """A string (a file path) as a DuckDB string literal."""
    return "'" + str(text).replace("'", "''") + "'"
