"""Readers solarsync did not write answering every analytics view of a DuckDB file: this
DuckDB, DuckDB 1.4 LTS and the DuckDB CLI from PyPI in their own environments
(``tests/readers.py``), the file opened by its path as BI tools open it."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import duckdb

from pipelines.destinations.duckdb.catalog import catalog_name
from pipelines.views import VIEWS_DIR, statement_name, statements
from tests.readers import reader_python, run_reader


def declared_views(*sources: str) -> list[str]:
    """``analytics.<view>`` of every view the sources' views files declare (macros aside)."""
    out = []
    for source in sources:
        for statement in statements((VIEWS_DIR / f"{source}.sql").read_text()):
            name = statement_name(statement)
            if name and " VIEW " in f" {statement.upper()} ":
                out.append(name)
    return out


#: a reader's own python: the count of every view named on the command line
COUNT_VIEWS = """
import duckdb, json, sys
con = duckdb.connect(sys.argv[1], read_only=True)
catalog = con.execute("select current_database()").fetchone()[0]
counts = {}
for view in sys.argv[3:]:
    name = view if sys.argv[2] == "2" else '"' + catalog + '".' + view
    counts[view] = con.execute("select count(*) from " + name).fetchone()[0]
print(json.dumps({"version": duckdb.__version__, "counts": counts}))
"""


def counts_here(path: Path, views: list[str], parts: int = 2) -> dict[str, int]:
    """Counts of ``views`` read by this DuckDB, the file opened read-only by its name;
    ``parts=3``: names with the catalog (a file named like a schema needs them in a user's own
    SQL; the views themselves bind either way)."""
    con = duckdb.connect(str(path), read_only=True)
    try:
        catalog = con.execute("select current_database()").fetchone()[0]
        names = {v: v if parts == 2 else f'"{catalog}".{v}' for v in views}
        return {v: con.execute(f"select count(*) from {n}").fetchone()[0] for v, n in names.items()}
    finally:
        con.close()


def counts_duckdb14(path: Path, views: list[str], parts: int = 2) -> dict[str, int]:
    python = reader_python("duckdb14", "duckdb==1.4.*")
    out = json.loads(
        run_reader(python, COUNT_VIEWS, str(path.resolve()), str(parts), *views).stdout
    )
    assert out["version"].startswith("1.4.")
    return out["counts"]


def duckdb_cli() -> Path:
    return reader_python("duckdb-cli", "duckdb-cli==1.5.*").with_name("duckdb")


def cli_query(*args: str) -> list[list[str]]:
    """The DuckDB CLI from PyPI (``duckdb -readonly FILE``, the example of
    docs/destinations/duckdb.md), CSV rows."""
    done = subprocess.run([str(duckdb_cli()), *args], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and "Error" not in done.stdout, done.stdout + done.stderr
    return [line.split(",") for line in done.stdout.splitlines() if line]


def counts_cli(path: Path, views: list[str], parts: int = 2) -> dict[str, int]:
    prefix = "" if parts == 2 else f'"{catalog_name(path)}".'
    sql = " UNION ALL ".join(f"SELECT '{v}', count(*) FROM {prefix}{v}" for v in views)
    rows = cli_query("-readonly", str(path.resolve()), "-csv", "-noheader", "-c", sql)
    return {view: int(n) for view, n in rows}


def counts_cli_attached(path: Path, views: list[str], alias: str | None = None) -> dict[str, int]:
    """The CLI with the file ``ATTACH``ed: under ``alias``, or without ``AS`` (DuckDB then names
    the catalog after the file)."""
    catalog = alias or catalog_name(path)
    attach = f"ATTACH '{path.resolve()}'" + (f" AS {alias}" if alias else "") + " (READ_ONLY); "
    sql = " UNION ALL ".join(f"SELECT '{v}', count(*) FROM \"{catalog}\".{v}" for v in views)
    return {view: int(n) for view, n in cli_query("-csv", "-noheader", "-c", attach + sql)}


def assert_every_view_answers(
    path: Path,
    sources: list[str],
    parts: int = 2,
    readers: tuple = ("here", "1.4", "cli"),
    history: bool = True,
) -> dict[str, int]:
    """Every view the sources (and the run history's, which ``solarsync run`` loads) declare
    exists in the published file and answers, with the same counts in every reader."""
    views = declared_views(*sources, *(["solarsync"] if history else []))
    con = duckdb.connect(str(path), read_only=True)
    try:
        present = {
            f"analytics.{v}"
            for (v,) in con.execute(
                "select view_name from duckdb_views() where schema_name = 'analytics'"
            ).fetchall()
        }
    finally:
        con.close()
    assert set(views) <= present, sorted(set(views) - present)
    counts = counts_here(path, views, parts)
    if "1.4" in readers:
        assert counts_duckdb14(path, views, parts) == counts
    if "cli" in readers:
        assert counts_cli(path, views, parts) == counts
    return counts
