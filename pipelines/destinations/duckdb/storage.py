"""The storage version of the DuckDB files solarsync writes for readers it did not write.

DuckDB 2.0 writes files that DuckDB 1.x refuses ("database file with version number 69, we can
only read 64-68"); BI tools bundle a DuckDB 1.x driver for a long time after a release. DuckDB
writes an older format when told at the file's creation (``ATTACH ... (STORAGE_VERSION ...)``,
or ``storage_compatibility_version`` on the connection that creates it), and keeps a file in the
format it was created in. So the files BI tools open, the published warehouse (a byte copy of
the working file) and the lake's ``_views.duckdb``, are created in the configured version:

    [destination.duckdb]
    storage_version = "v1.4.0"      # env DESTINATION__DUCKDB__STORAGE_VERSION

A file found in a newer format than configured (written by an earlier solarsync with DuckDB
2.0's default) is rewritten once into the configured one
(:mod:`pipelines.destinations.duckdb.publish`).
"""

from __future__ import annotations

import functools
import re
from pathlib import Path
from typing import Any

import duckdb

from pipelines.destinations.duckdb.files import literal
from sources.common import ConfigurationError

#: read by DuckDB 1.4 LTS, the DuckDB CLI 1.5 (PyPI's newest) and DuckDB 2.0
DEFAULT_STORAGE_VERSION = "v1.4.0"
#: the DuckDB releases that open a file of each storage version (checked against DuckDB 1.1.3,
#: 1.2.2, 1.3.2, 1.4.5 and the CLI 1.5.6 from PyPI; docs/destinations/duckdb.md, "Which DuckDB
#: opens the file")
READERS = {
    "v1.0.0": "DuckDB 1.1 and later",
    "v1.1.0": "DuckDB 1.1 and later",
    "v1.2.0": "DuckDB 1.2 and later",
    "v1.3.0": "DuckDB 1.3 and later",
    "v1.4.0": "DuckDB 1.4 LTS and later (the DuckDB CLI 1.5, DuckDB 2.0)",
    "v1.5.0": "DuckDB 1.5 and later",
    "latest": "DuckDB 2.0 and later",
}


def readers(version: str) -> str:
    """Who opens a file of ``version``, for people."""
    return READERS.get(version, f"DuckDB releases that read storage version {version}")


_VERSION = re.compile(r"^v?(\d+)\.(\d+)(?:\.(\d+))?\+?$")


def normalize(value: Any) -> str:
    """``"v1.4.0"`` from ``1.4``, ``"1.4.0"``, ``"v1.4"``; ``"latest"``; anything else DuckDB
    does not know is a configuration error naming the values that work."""
    text = str(value).strip().lower()
    match = _VERSION.match(text)
    if match:
        text = f"v{match.group(1)}.{match.group(2)}.{match.group(3) or 0}"
    if not _known(text):
        raise ConfigurationError(
            f"[destination.duckdb] storage_version {value!r} is not a DuckDB storage version",
            hint="use e.g. v1.4.0 (DuckDB 1.4 and later read the files), v1.0.0, or latest "
            "(DESTINATION__DUCKDB__STORAGE_VERSION); see docs/destinations/duckdb.md",
        )
    return text


@functools.cache
def _known(version: str) -> bool:

    con = duckdb.connect(":memory:")
    try:
        con.execute(f"SET storage_compatibility_version = {literal(version)}")
        return True
    except duckdb.Error:
        return False
    finally:
        con.close()


def key(version: str) -> tuple[int, ...]:
    """Orders versions; ``latest`` after every numbered one."""
    match = _VERSION.match(version.strip().lower())
    if not match:
        return (1_000_000,)
    return tuple(int(part or 0) for part in match.groups())


def newer(file_version: str, target: str) -> bool:
    """Whether a file of ``file_version`` is newer than readers of ``target`` can read."""
    return key(file_version) > key(target)


def file_version(path: Path) -> str:
    """The storage version of an existing DuckDB file (``v1.4.0``; ``v2.0.0`` for DuckDB 2.0's
    own format), as DuckDB reports it."""

    con = duckdb.connect(":memory:")
    try:
        con.execute(f"ATTACH {literal(str(path))} AS solarsync_probe (READ_ONLY)")
        tags = con.execute(
            "SELECT tags FROM duckdb_databases() WHERE database_name = 'solarsync_probe'"
        ).fetchone()[0]
    finally:
        con.close()
    return str((tags or {}).get("storage_version", "latest")).rstrip("+")


def attach_options(version: str) -> str:
    """The ``ATTACH`` options that create a new file in ``version``."""
    return f"(STORAGE_VERSION {literal(version)})"


def create(path: Path, version: str) -> None:
    """A new, empty DuckDB file at ``path`` in storage ``version`` (DuckDB keeps a file in the
    version it was created in, whoever opens it later)."""

    con = duckdb.connect(":memory:")
    try:
        con.execute(f"ATTACH {literal(str(path))} AS solarsync_new {attach_options(version)}")
        con.execute("DETACH solarsync_new")
    finally:
        con.close()


__all__ = [
    "DEFAULT_STORAGE_VERSION",
    "READERS",
    "attach_options",
    "create",
    "file_version",
    "key",
    "newer",
    "normalize",
    "readers",
]
