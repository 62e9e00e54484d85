"""What BI tools see in the published file: after a sync of all four sources, every view in
``analytics`` has only types ODBC/JDBC tools read, and SQLAlchemy with ``duckdb_engine`` (what
Superset uses) reflects and selects every table and view."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from pipelines import cli
from pipelines.views import BI_TYPE, non_bi_columns
from tests.pipelines.test_all_sources import four_sandboxes  # noqa: F401 (fixture)

SOURCES = ("solarknock", "heat", "solarassistant", "tesla")


@pytest.fixture
def published(four_sandboxes, isolated_dlt: Path) -> Path:  # noqa: F811
    assert cli.main(["--no-progress", "run"]) == 0
    return isolated_dlt / "warehouse.duckdb"


def test_bi_types_are_what_odbc_and_jdbc_tools_read():
    for ok in ("VARCHAR", "BIGINT", "DECIMAL(38,9)", "TIMESTAMP WITH TIME ZONE", "DATE"):
        assert BI_TYPE.fullmatch(ok)
    for bad in ("VARCHAR[]", "JSON", "UBIGINT", "HUGEINT", "STRUCT(a INTEGER)", "MAP(VARCHAR, VARCHAR)", "UUID", "INTERVAL", "TIME"):  # fmt: skip
        assert not BI_TYPE.fullmatch(bad), bad


def test_every_analytics_view_of_every_source_has_bi_types_and_sqlalchemy_reads_it_all(
    published: Path,
):
    con = duckdb.connect(str(published), read_only=True)
    try:
        views = {
            r[0]
            for r in con.execute(
                "select view_name from duckdb_views() where schema_name = 'analytics'"
            ).fetchall()
        }
        # each source has views (so the check below covers all four)
        assert any(v.startswith("heat_") for v in views)
        assert any(v.startswith("solarassistant_") for v in views)
        assert any(v.startswith("tesla_") for v in views)
        assert {"knocks", "knock_actions", "lead_actions", "rep_daily_knock_times"} <= views
        assert non_bi_columns(con) == []
        tables = con.execute(
            "select schema_name, table_name from duckdb_tables() "
            "union all select schema_name, view_name from duckdb_views() where not internal "
            "order by all"
        ).fetchall()
    finally:
        con.close()

    import sqlalchemy as sa

    # the URI a Superset user types (read-only, so a dashboard never blocks a load)
    engine = sa.create_engine(f"duckdb:///{published}?access_mode=READ_ONLY")
    try:
        inspector = sa.inspect(engine)
        seen = set()
        for schema in (*SOURCES, "analytics", "solarsync"):
            names = inspector.get_table_names(schema=schema) + inspector.get_view_names(
                schema=schema
            )
            assert names, schema
            for name in names:
                table = sa.Table(name, sa.MetaData(), schema=schema, autoload_with=engine)
                assert table.columns, f"{schema}.{name}: no columns reflected"
                with engine.connect() as conn:
                    rows = conn.execute(sa.select(table).limit(5)).fetchall()
                    (n,) = conn.execute(sa.select(sa.func.count()).select_from(table)).one()
                assert len(rows) == min(n, 5)
                seen.add((schema, name))
        expected = {(s, t) for s, t in tables if s in (*SOURCES, "analytics", "solarsync")}
        assert seen == expected
        with engine.connect() as conn:
            (knocks,) = conn.execute(sa.text("select count(*) from analytics.knocks")).one()
        assert knocks > 0
    finally:
        engine.dispose()
