"""DuckDB catalog names, and SQL that binds whatever name a reader's DuckDB gives a file.

DuckDB names the catalog of a file it opens after the file: ``warehouse/solarsync.duckdb`` is
catalog ``solarsync`` (the part of the file name before its first dot). A two-part name
``solarsync.sync_runs`` is then ambiguous (catalog ``solarsync``, table ``sync_runs``? schema
``solarsync``?): DuckDB refuses it ("Ambiguous reference to catalog or schema"), in a query and
in a view alike, in every version. Any file named like one of solarsync's schemas (a source's
dataset, the run history's ``solarsync``, ``analytics``) hits it. So:

- the loader's **working file** is named so that its catalog is never a schema name
  (``pipelines.destinations.duckdb.files.working_path``): dlt's DuckDB client qualifies names
  with the schema only (``"heat"."_dlt_loads"``, never the catalog), and solarsync's own SQL
  there too;
- views in a file BI tools open reach another schema by a two-part name, which binds under any
  catalog name and any ``ATTACH ... AS`` alias, except a catalog named like that schema. Only
  the names of that one schema are rewritten (:func:`bind_under`): to three parts
  (``"heat".heat.sites``) where the view reads another schema, or to one part where it reads
  its own schema (``analytics``: a view is bound with its own schema first). DuckDB 2.0 drops
  a view's catalog when it is the view's own, so the three-part names are written while the
  catalog of that name is a stand-in (:func:`stand_in_catalog`);
- ``status`` and ``report`` read the published file under its own name, their SQL rewritten
  the same way.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import sqlglot
from sqlglot import exp

from pipelines.destinations.duckdb.files import literal

#: the body of a table macro starts after ``AS TABLE`` (sqlglot does not parse DuckDB's macros)
_MACRO_BODY = re.compile(r"^\s*CREATE\s.*?\bMACRO\b.*?\)\s+AS\s+TABLE\s+", re.I | re.S)
_CREATED = re.compile(
    r"^\s*CREATE\s+(?:OR\s+REPLACE\s+)?(?:TEMP(?:ORARY)?\s+)?(?:VIEW|TABLE|MACRO)\s+"
    r"(?:IF\s+NOT\s+EXISTS\s+)?([\w.\"]+)",
    re.I,
)


def catalog_name(path: str | Path) -> str:
    """The catalog DuckDB gives ``path`` when it opens it (or ``ATTACH``es it without ``AS``):
    the file name up to its first dot, leading dots skipped (``.x.duckdb`` is ``x``)."""
    parts = [part for part in Path(path).name.split(".") if part]
    return parts[0] if parts else "memory"


def quote(name: str) -> str:
    """An identifier."""
    return '"' + name.replace('"', '""') + '"'


def bind_under(sql: str, catalog: str) -> tuple[str, set[tuple[str, str]]]:
    """``sql`` (DuckDB's dialect) made to bind in a session where ``catalog`` is the catalog of
    the file it reads: every two-part name whose schema is named ``catalog`` gets the catalog
    (``heat.sites`` -> ``"heat".heat.sites``); in a ``CREATE VIEW``/``MACRO`` of that very
    schema, names of its schema lose it instead (bound in the view's own schema under any
    catalog name). Returns the SQL (only those names edited, the rest byte for byte) and the
    ``(schema, table)`` names it made three-part."""
    folded = catalog.casefold()
    if folded not in sql.casefold():
        return sql, set()
    offset, body, own_schema = 0, sql, None
    created = _CREATED.match(sql)
    if created:
        parts = created.group(1).replace('"', "").split(".")
        own_schema = parts[-2] if len(parts) >= 2 else None
    macro = _MACRO_BODY.match(sql)
    if macro:  # a table macro's body is a SELECT
        offset, body = macro.end(), sql[macro.end() :]
    try:
        expression = sqlglot.parse_one(body, read="duckdb")
    except sqlglot.errors.ParseError:
        if not _names_schema(body, folded):  # the name is a word in it, not a schema
            return sql, set()
        raise
    target = None
    if isinstance(expression, exp.Create):
        target = expression.this.this if isinstance(expression.this, exp.Schema) else None
        target = target or expression.this
    ctes = {cte.alias_or_name.casefold() for cte in expression.find_all(exp.CTE)}
    edits: list[tuple[int, int, str]] = []  # (start, end, replacement) in ``sql``
    three_part: set[tuple[str, str]] = set()
    for table in expression.find_all(exp.Table):
        db = table.args.get("db")
        if table is target or table.args.get("catalog") or not isinstance(db, exp.Identifier):
            continue
        if db.name.casefold() != folded:
            continue
        start = db.meta.get("start")
        end = db.meta.get("end")
        if start is None or end is None:
            raise ValueError(f"cannot place the schema of {table.sql('duckdb')} in the SQL")
        start, end = start + offset, end + offset
        if own_schema is not None and db.name.casefold() == own_schema.casefold():
            if table.name.casefold() in ctes:
                raise ValueError(
                    f"{table.sql('duckdb')}: a CTE has the same name, so the schema cannot be "
                    "dropped; rename the CTE"
                )
            dot = sql.index(".", end + 1)
            edits.append((start, dot + 1, ""))
        else:
            edits.append((start, start, quote(catalog) + "."))
            three_part.add((db.name, table.name))
    for start, end, text in sorted(edits, reverse=True):
        sql = sql[:start] + text + sql[end:]
    return sql, three_part


def _names_schema(sql: str, folded: str) -> bool:
    """Whether ``sql`` has ``<folded>.`` as a name, by its tokens (for SQL sqlglot cannot
    parse)."""
    tokens = sqlglot.tokenize(sql, read="duckdb")
    return any(
        a.text.casefold() == folded and b.token_type == sqlglot.TokenType.DOT
        for a, b in zip(tokens, tokens[1:], strict=False)
    )


@contextlib.contextmanager
def stand_in_catalog(con: Any, catalog: str, tables: set[tuple[str, str]]) -> Iterator[None]:
    """A catalog named ``catalog`` in ``con``'s session, holding an empty copy of each
    ``(schema, table)`` of ``con``'s own catalog, while views that name them three-part are
    created (DuckDB binds a view when it is created; the stand-in is gone afterwards, the views
    then read the catalog a reader gives the file)."""
    import duckdb

    home = con.execute("SELECT current_database()").fetchone()[0]
    con.execute(f"ATTACH ':memory:' AS {quote(catalog)}")
    try:
        for schema, table in sorted(tables):
            con.execute(f"CREATE SCHEMA IF NOT EXISTS {quote(catalog)}.{quote(schema)}")
            with contextlib.suppress(duckdb.CatalogException):  # not loaded yet: no view
                con.execute(
                    f"CREATE TABLE {quote(catalog)}.{quote(schema)}.{quote(table)} AS "
                    f"SELECT * FROM {quote(home)}.{quote(schema)}.{quote(table)} LIMIT 0"
                )
        yield
    finally:
        con.execute(f"DETACH {quote(catalog)}")


__all__ = ["catalog_name", "literal", "bind_under", "quote", "stand_in_catalog"]
