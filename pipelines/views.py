"""Analytics views: ``warehouse/views/<source>.sql``, applied after a source loads."""

from __future__ import annotations

import logging
import re
from pathlib import Path

import duckdb

logger = logging.getLogger("solarsync")

_VIEW_NAME = re.compile(r"\bVIEW\s+([\w.]+)", re.I)
VIEWS_DIR = Path(__file__).resolve().parents[1] / "warehouse" / "views"


def statements(sql: str) -> list[str]:
    """The statements of a views file: split on semicolons that end a line, comments dropped."""
    code = "\n".join(line for line in sql.splitlines() if not line.strip().startswith("--"))
    return [chunk.strip() for chunk in re.split(r";[ \t]*$", code, flags=re.M) if chunk.strip()]


def apply_views(warehouse: Path, source: str) -> list[str]:
    """(Re)create the source's views; a view whose tables do not exist yet is skipped."""
    path = VIEWS_DIR / f"{source}.sql"
    if not path.exists():
        return []
    created, con = [], duckdb.connect(str(warehouse))
    try:
        for statement in statements(path.read_text()):
            try:
                con.execute(statement)
            except duckdb.CatalogException as exc:
                logger.info(
                    "%s: view skipped until its tables exist (%s)", source, str(exc).splitlines()[0]
                )
                continue
            match = _VIEW_NAME.search(statement)
            if match:
                created.append(match.group(1))
    finally:
        con.close()
    return created
