"""Column hints for ``dlt.resource(columns=...)`` and the columns dlt already knows.

    column("timestamp", False)            # {"data_type": "timestamp", "nullable": False}
    column("timestamp", dedup_sort="desc")  # other hints beside the type
    typed(name="text", score="bigint")    # {"name": {"data_type": "text"}, ...}: type only
    known_columns("sites")                # the table's columns in the current source schema

Every call returns new dicts: dlt writes into the hints it is given.
"""

from __future__ import annotations

from typing import Any

import dlt


def column(data_type: str, nullable: bool = True, **hints: Any) -> dict[str, Any]:
    """One column's hints: its type, whether it may be NULL, and any other dlt hint."""
    return {"data_type": data_type, "nullable": nullable, **hints}


def typed(**types: str) -> dict[str, dict[str, Any]]:
    """Columns declared by type alone (nullability left to dlt), by name."""
    return {name: {"data_type": data_type} for name, data_type in types.items()}


def known_columns(table: str) -> dict[str, Any]:
    """The table's columns as dlt knows them (from earlier pages and runs, and the hints);
    empty for a table dlt has not seen. Call it while a source is extracted."""
    return dlt.current.source_schema().tables.get(table, {}).get("columns", {})
