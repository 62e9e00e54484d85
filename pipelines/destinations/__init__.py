"""Where solarsync loads: one package per destination behind the :class:`Warehouse` seam.

- ``base``: :class:`Warehouse` and :class:`Reader` (imports none of the implementations);
- ``duckdb``: a DuckDB file for BI tools (the default), published after every load;
- ``postgres``: a Postgres database every host and BI tool shares;
- ``lake``: a Delta lake on local disk or S3/GCS/Azure, with a DuckDB file of views.

:func:`resolve` picks one from ``--destination`` / ``--warehouse`` and the configuration
(``[solarsync] destination``, ``SOLARSYNC__DESTINATION``; default ``duckdb``). An
implementation is imported when it is chosen (``IMPLEMENTATIONS``): a DuckDB run never loads
Postgres' or the lake's libraries.
"""

from __future__ import annotations

import importlib
import os
from pathlib import Path

from pipelines.destinations.base import BLOB_DIR, Publication, Reader, UpsertRows, Warehouse
from pipelines.settings import KINDS, destination_kind
from sources.common import ConfigurationError

#: kind -> (module, class) of its :class:`Warehouse`
IMPLEMENTATIONS: dict[str, tuple[str, str]] = {
    "duckdb": ("pipelines.destinations.duckdb", "DuckDBWarehouse"),
    "filesystem": ("pipelines.destinations.lake", "LakeWarehouse"),
    "postgres": ("pipelines.destinations.postgres", "PostgresWarehouse"),
}


def implementation(kind: str) -> type[Warehouse]:
    """The :class:`Warehouse` class of ``kind`` (imported now)."""
    module, name = IMPLEMENTATIONS[kind]
    return getattr(importlib.import_module(module), name)


def resolve(kind: str | None = None, warehouse: str | os.PathLike[str] | None = None) -> Warehouse:
    """The warehouse the command line (``--destination``, ``--warehouse``) and the
    configuration name."""
    kind = destination_kind(kind)
    if kind == "duckdb":
        duckdb = importlib.import_module("pipelines.destinations.duckdb")
        return duckdb.DuckDBWarehouse(duckdb.duckdb_path(warehouse))
    if warehouse:
        raise ConfigurationError(
            f"--warehouse names a DuckDB file; the {kind} destination is configured with "
            f"DESTINATION__{kind.upper()}__... settings",
            hint="drop --warehouse or use --destination duckdb",
        )
    return implementation(kind).from_config()  # type: ignore[attr-defined]


def as_warehouse(value: Warehouse | str | os.PathLike[str]) -> Warehouse:
    """A :class:`Warehouse`, or a DuckDB file path (tests and the demo pass paths)."""
    if isinstance(value, Warehouse):
        return value
    return implementation("duckdb")(Path(value))  # type: ignore[call-arg]


__all__ = [
    "BLOB_DIR",
    "IMPLEMENTATIONS",
    "KINDS",
    "Publication",
    "Reader",
    "UpsertRows",
    "Warehouse",
    "as_warehouse",
    "implementation",
    "resolve",
]
