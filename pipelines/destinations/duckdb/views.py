"""The analytics views in a DuckDB file (the warehouse's working file, the lake's views file):
the :class:`~pipelines.views.ViewTarget` of :func:`pipelines.views.publish_views`.

- Names are bound for the catalog readers open the file under (``catalog``:
  :func:`pipelines.destinations.duckdb.catalog.bind_under`), whatever the file is called.
- A view whose definition did not change is not touched: each view carries a comment with the
  sha256 of its bound SQL and of the columns of the tables it could read (a column added to a
  table, a type changed: created again).
- DuckDB binds a view when it is created: a missing table is
  :class:`~pipelines.views.MissingTables`, a missing column
  :class:`~pipelines.views.MissingColumns` (``CREATE OR REPLACE`` failed: the old view stays).
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path
from typing import Any

import duckdb

from pipelines.destinations.duckdb.catalog import bind_under, catalog_name, stand_in_catalog
from pipelines.destinations.duckdb.files import literal
from pipelines.views import (
    Macro,
    MissingColumns,
    MissingTables,
    NoSession,
    ViewsOutcome,
    publish_views,
)

#: DuckDB's errors for a column its table lacks (unqualified, then qualified reference)
_MISSING_COLUMN = re.compile(
    r'Referenced column "?([^"\s]+)"? not found|does not have a column named "?([^"\s]+)"?', re.I
)
_DIGEST = re.compile(r"solarsync sha256:([0-9a-f]{32})")


class DuckDBViews(NoSession):
    """Views created on ``con`` (its current catalog), bound for readers that open the file as
    ``catalog``."""

    dialect = "duckdb"

    def __init__(self, con: duckdb.DuckDBPyConnection, catalog: str, where: str) -> None:
        self.con = con
        self.catalog = catalog
        self.where = where
        self._fingerprint: str | None = None
        self._digests: dict[str, str] | None = None
        #: the file's statements so far, and every ``(schema, table)`` they name three-part
        #: once bound: a view over an earlier view of the file binds through its names too
        self._statements: list[str] = []
        self._bound = 0
        self._stand_ins: set[tuple[str, str]] = set()

    def schema(self) -> Any:
        return None

    def fingerprint(self) -> str:
        """The columns of every table: a view over a table whose columns changed is bound
        again (DuckDB fixes a view's column types when it is created)."""
        if self._fingerprint is None:
            rows = self.con.execute(
                "SELECT schema_name, table_name, column_name, data_type FROM duckdb_columns() "
                "WHERE database_name = current_database() AND NOT internal "
                "AND schema_name <> 'analytics' ORDER BY ALL"
            ).fetchall()
            self._fingerprint = hashlib.sha256(repr(rows).encode()).hexdigest()
        return self._fingerprint

    def digests(self) -> dict[str, str]:
        """``schema.name`` -> the digest in the comment of each view and macro solarsync made."""
        if self._digests is None:
            found: dict[str, str] = {}
            for schema, name, comment in self.con.execute(
                "SELECT schema_name, view_name, comment FROM duckdb_views() "
                "WHERE database_name = current_database() AND NOT internal UNION ALL "
                "SELECT schema_name, function_name, comment FROM duckdb_functions() "
                "WHERE database_name = current_database() AND NOT internal "
                "AND function_type = 'table_macro'"
            ).fetchall():
                match = _DIGEST.search(comment or "")
                if match:
                    found[f"{schema}.{name}"] = match.group(1)
            self._digests = found
        return self._digests

    def bind(self, sql: str) -> str:
        """``sql`` bound for :attr:`catalog`; the stand-in tables of every statement so far."""
        for earlier in self._statements[self._bound :]:
            self._stand_ins |= bind_under(earlier, self.catalog)[1]
        self._bound = len(self._statements)
        return bind_under(sql, self.catalog)[0]

    def create(
        self, name: str | None, statement: str, rendered: str | Macro, outcome: ViewsOutcome
    ) -> None:
        sql = str(rendered)
        self._statements.append(sql)
        # the statement as written, the catalog it is bound for and the tables' columns: the
        # same digest, the same view (binding, which may parse the SQL, is skipped)
        digest = hashlib.sha256(
            f"{sql}\n{self.catalog}\n{self.fingerprint()}".encode()
        ).hexdigest()[:32]
        if name is not None and self.digests().get(name) == digest:
            outcome.views.append(name)
            return
        bound = self.bind(sql)
        try:
            if self._stand_ins:
                with stand_in_catalog(self.con, self.catalog, self._stand_ins):
                    self.con.execute(bound)
            else:
                self.con.execute(bound)
        except duckdb.CatalogException as exc:
            raise MissingTables([str(exc).splitlines()[0]]) from None
        except duckdb.BinderException as exc:
            missing = _MISSING_COLUMN.search(str(exc))
            if missing is None:
                raise
            raise MissingColumns([missing.group(1) or missing.group(2)]) from None
        if name is None:
            return
        kind = (
            "MACRO TABLE"
            if re.match(r"\s*CREATE\s.*?\bMACRO\b", statement, re.I | re.S)
            else "VIEW"
        )
        comment = (
            f"solarsync sha256:{digest} (warehouse/views; replaced when its definition changes)"
        )
        self.con.execute(f"COMMENT ON {kind} {name} IS '{comment}'")
        self.digests()[name] = digest
        outcome.views.append(name)
        outcome.changed.append(name)

    def finish(self, outcome: ViewsOutcome) -> None:
        return None

    def column_types(self, names: list[str]) -> list[tuple[str, str, str]]:
        if not names:
            return []
        rows = self.con.execute(
            "SELECT c.schema_name || '.' || c.table_name, c.column_name, c.data_type "
            "FROM duckdb_columns() c JOIN duckdb_views() v "
            "ON v.database_name = c.database_name AND v.schema_name = c.schema_name "
            "AND v.view_name = c.table_name "
            "WHERE c.database_name = current_database() ORDER BY ALL"
        ).fetchall()
        wanted = set(names)
        return [(v, c, t) for v, c, t in rows if v in wanted]


def apply_views(
    database: Path,
    source: str,
    views: str | None = None,
    *,
    catalog: str | None = None,
    where: str = "destination duckdb",
) -> ViewsOutcome:
    """``source``'s views (the file ``views``, default ``<source>.sql``) in the DuckDB file
    ``database``, bound for readers that open it as ``catalog`` (default: its own name)."""
    con = duckdb.connect(":memory:")
    try:
        # under an alias of our own: the file's name may be any schema's
        con.execute(f"ATTACH {literal(database)} AS solarsync_views")
        con.execute("USE solarsync_views")
        target = DuckDBViews(con, catalog or catalog_name(database), where)
        return publish_views(target, source, views or f"{source}.sql")
    finally:
        con.close()


__all__ = ["DuckDBViews", "apply_views"]
