"""SQL made to bind under the catalog name DuckDB gives a file (pipelines/duckdb_catalog.py):
only names of the schema called like the catalog change, the rest stays byte for byte."""

from __future__ import annotations

import contextlib
from pathlib import Path

import duckdb
import pytest

from pipelines.destinations.duckdb.catalog import bind_under, catalog_name, stand_in_catalog


@pytest.mark.parametrize(
    ("path", "catalog"),
    [
        ("warehouse/solarsync.duckdb", "solarsync"),
        ("/data/heat.duckdb", "heat"),
        ("warehouse/.solarsync/working.heat.duckdb", "working"),
        ("bi.v2.duckdb", "bi"),
        (".hidden.duckdb", "hidden"),
        ("plain", "plain"),
    ],
)
def test_catalog_name_is_what_duckdb_calls_the_file(tmp_path: Path, path: str, catalog: str):
    assert catalog_name(path) == catalog
    file = tmp_path / Path(path).name
    con = duckdb.connect(str(file))
    try:
        assert con.execute("select current_database()").fetchone()[0] == catalog
    finally:
        con.close()


def test_sql_without_the_name_is_left_alone():
    sql = "SELECT s.* FROM heat.sites AS s JOIN analytics.heat_sites USING (site_id)"
    assert bind_under(sql, "solarsync") == (sql, set())
    assert bind_under(sql, "warehouse") == (sql, set())


def test_a_schema_named_like_the_catalog_gets_the_catalog():
    sql = 'SELECT heat.site_id FROM heat.sites AS heat JOIN "heat"."assets" a ON a.x = heat.x'
    out, three_part = bind_under(sql, "heat")
    # table names only: ``heat.site_id`` is a column of the alias ``heat``
    assert out == (
        'SELECT heat.site_id FROM "heat".heat.sites AS heat '
        'JOIN "heat"."heat"."assets" a ON a.x = heat.x'
    )
    assert three_part == {("heat", "sites"), ("heat", "assets")}
    assert (
        bind_under('SELECT * FROM "Heat".Sites', "HEAT")[0] == 'SELECT * FROM "HEAT"."Heat".Sites'
    )
    # already three-part: untouched
    assert bind_under("SELECT * FROM x.heat.sites", "heat") == ("SELECT * FROM x.heat.sites", set())


def test_a_view_reading_its_own_schema_names_it_in_one_part():
    sql = (
        "CREATE OR REPLACE VIEW analytics.tesla_energy_daily AS SELECT * FROM "
        "analytics.tesla_energy_intervals AS i JOIN tesla.site_info AS s ON true"
    )
    out, three_part = bind_under(sql, "analytics")
    assert out == (
        "CREATE OR REPLACE VIEW analytics.tesla_energy_daily AS SELECT * FROM "
        "tesla_energy_intervals AS i JOIN tesla.site_info AS s ON true"
    )
    assert three_part == set()
    # the same view under a catalog named like the schema it reads
    out, three_part = bind_under(sql, "tesla")
    assert 'JOIN "tesla".tesla.site_info' in out and three_part == {("tesla", "site_info")}
    assert out.startswith("CREATE OR REPLACE VIEW analytics.tesla_energy_daily AS")


def test_table_macros_and_their_calls():
    macro = (
        "CREATE OR REPLACE MACRO analytics.heat_schedule_at(at_time, as_of := NULL) AS TABLE\n"
        "SELECT * FROM heat.schedule_entries WHERE _dlt_valid_from <= at_time"
    )
    out, three_part = bind_under(macro, "heat")
    assert out == macro.replace("FROM heat.", 'FROM "heat".heat.')
    assert three_part == {("heat", "schedule_entries")}
    call = "CREATE VIEW analytics.now AS SELECT * FROM analytics.heat_schedule_at(now())"
    assert bind_under(call, "analytics")[0] == (
        "CREATE VIEW analytics.now AS SELECT * FROM heat_schedule_at(now())"
    )


def test_a_cte_named_like_a_view_of_the_schema_is_refused():
    sql = "CREATE VIEW analytics.v AS WITH knocks AS (SELECT 1) SELECT * FROM analytics.knocks"
    with pytest.raises(ValueError, match="CTE"):
        bind_under(sql, "analytics")


@pytest.mark.parametrize("reader_catalog", ["heat", "analytics", "bi"])
def test_views_written_for_a_catalog_answer_under_it(tmp_path: Path, reader_catalog: str):
    """A working file (catalog ``working``) gets views for the name readers open it under;
    then, copied to that name, DuckDB answers them, and so it does attached without AS."""
    working = tmp_path / "working.x.duckdb"
    con = duckdb.connect(str(working))
    con.execute("create schema heat; create table heat.sites as select 1 as id, 'a' as name")
    con.execute("create schema analytics")
    views = [
        "CREATE VIEW analytics.heat_sites AS SELECT s.* FROM heat.sites AS s",
        "CREATE VIEW analytics.heat_names AS SELECT name FROM analytics.heat_sites",
    ]
    prepared = [bind_under(v, reader_catalog) for v in views]
    stand_ins = set().union(*(t for _, t in prepared))
    # as apply_views does: a stand-in only where a name became three-part
    with (
        stand_in_catalog(con, reader_catalog, stand_ins) if stand_ins else contextlib.nullcontext()
    ):
        for sql, _ in prepared:
            con.execute(sql)
    con.close()
    published = tmp_path / f"{reader_catalog}.duckdb"
    published.write_bytes(working.read_bytes())
    con = duckdb.connect(str(published), read_only=True)
    try:
        # three-part: a query of the user's own names a schema called like the file that way
        names = f"{reader_catalog}.analytics.heat_names"
        assert con.execute(f"select * from {names}").fetchall() == [("a",)]
    finally:
        con.close()
    con = duckdb.connect()
    try:
        con.execute(f"attach '{published}' (read_only)")
        assert con.execute(f"select id from {reader_catalog}.analytics.heat_sites").fetchall() == [
            (1,)
        ]
    finally:
        con.close()


def test_sql_sqlglot_cannot_parse_is_left_alone_unless_it_names_the_schema():
    import sqlglot

    odd = "SELECT sites FROM x WHERE ??? broken"
    assert bind_under(odd, "sites") == (odd, set())
    with pytest.raises(sqlglot.errors.ParseError):
        bind_under("SELECT * FROM sites.t WHERE ??? broken", "sites")
