"""A BI tool's view of a DuckDB file through SQLAlchemy, run by the python of a reader venv
(``tests/readers.py``) or the project's own: it imports nothing of solarsync, only SQLAlchemy
and whichever DuckDB dialect that venv has (``duckdb_engine`` or ``duckdb-sqlalchemy``, both
registered as ``duckdb://``).

    python sqlalchemy_reader.py FILE HOW SCHEMAS [TZ]

HOW: ``connect_args`` (``create_engine(url, connect_args={"read_only": True})``, Superset's
"engine parameters") or ``url`` (``?access_mode=READ_ONLY`` in the URL), both as
docs/destinations/duckdb.md tells BI users. SCHEMAS: comma-separated; every table and view
of each is reflected twice (``inspector.get_columns`` and ``Table(autoload_with=...)``), then
counted and sampled with ``select``. TZ: the process's time zone (``TZ``), to see what a driver
does with ``TIMESTAMP WITH TIME ZONE`` on a server that is not on UTC.

Prints one JSON object: SQLAlchemy's and the dialect's versions, per relation its kind, its
columns as both reflections saw them (name, type, a family such as ``text`` or ``nested``, the
``timezone`` flag of timestamps), its row count, the Python types of the sampled values, and
the sampled values of its timestamp columns as ISO text.
"""

from __future__ import annotations

import json
import os
import sys
import time

if len(sys.argv) > 4 and sys.argv[4]:
    os.environ["TZ"] = sys.argv[4]
    time.tzset()

import sqlalchemy as sa


def family(kind: object) -> str:
    """What a BI tool makes of a reflected type."""
    if isinstance(kind, sa.JSON | sa.ARRAY):
        return "nested"
    if isinstance(kind, sa.types.NullType):
        return "unknown"
    if isinstance(kind, sa.Boolean):
        return "boolean"
    if isinstance(kind, sa.Integer):
        return "integer"
    if isinstance(kind, sa.Float | sa.Numeric):  # no longer one class tree in SQLAlchemy 2.1
        return "number"
    if isinstance(kind, sa.DateTime):
        return "timestamp"
    if isinstance(kind, sa.Date):
        return "date"
    if isinstance(kind, sa.String):
        return "text"
    return "other " + type(kind).__name__


def column(name: str, kind: object) -> dict:
    return {
        "name": name,
        "type": repr(kind),
        "family": family(kind),
        "timezone": getattr(kind, "timezone", None),
    }


def main() -> None:
    path, how, schemas = sys.argv[1], sys.argv[2], sys.argv[3].split(",")
    if how == "url":
        engine = sa.create_engine(f"duckdb:///{path}?access_mode=READ_ONLY")
    else:
        engine = sa.create_engine(f"duckdb:///{path}", connect_args={"read_only": True})
    dialect = engine.dialect
    out: dict = {
        "sqlalchemy": sa.__version__,
        "dialect": f"{type(dialect).__module__}.{type(dialect).__name__}",
        "relations": {},
    }
    try:
        inspector = sa.inspect(engine)
        for schema in schemas:
            views = inspector.get_view_names(schema=schema)
            for name in [*inspector.get_table_names(schema=schema), *views]:
                reflected = inspector.get_columns(name, schema=schema)
                table = sa.Table(name, sa.MetaData(), schema=schema, autoload_with=engine)
                with engine.connect() as conn:
                    rows = conn.execute(sa.select(table).limit(5)).fetchall()
                    count = conn.execute(sa.select(sa.func.count()).select_from(table)).scalar()
                stamps = [c.name for c in table.columns if family(c.type) == "timestamp"]
                out["relations"][f"{schema}.{name}"] = {
                    "kind": "view" if name in views else "table",
                    "columns": [column(c["name"], c["type"]) for c in reflected],
                    "autoload": [column(c.name, c.type) for c in table.columns],
                    "count": count,
                    "sampled": len(rows),
                    "value_types": sorted(
                        {type(v).__name__ for row in rows for v in row if v is not None}
                    ),
                    "timestamps": {
                        c: [row._mapping[c].isoformat() for row in rows if row._mapping[c]]
                        for c in stamps
                    },
                }
    finally:
        engine.dispose()
    try:
        import importlib.metadata as metadata

        for package in ("duckdb", "duckdb_engine", "duckdb-sqlalchemy"):
            try:
                out[package] = metadata.version(package)
            except metadata.PackageNotFoundError:
                pass
    except ImportError:  # pragma: no cover
        pass
    print(json.dumps(out))


if __name__ == "__main__":
    main()
