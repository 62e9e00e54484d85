"""DuckDB view SQL transpiled for Postgres (pure functions; the views themselves run on both
destinations in test_views_everywhere.py)."""

from __future__ import annotations

import pytest

from pipelines import views

SCHEMA = views.schema_of(
    [
        ("s", "t", "id", "character varying"),
        ("s", "t", "group", "character varying"),
        ("s", "t", "tags", "jsonb"),
        ("s", "t", "n", "bigint"),
        ("s", "t", "at", "timestamp with time zone"),
        ("s", "t", "_dlt_load_id", "character varying"),
    ],
    "postgres",
)


def render(sql: str) -> str:
    return views.render(sql, "postgres", SCHEMA)


def test_stars_are_expanded_with_the_real_columns_and_keywords_stay_columns():
    out = render(
        "CREATE OR REPLACE VIEW v AS SELECT * EXCLUDE (_dlt_load_id, tags) "
        "REPLACE (n * 2 AS n) FROM s.t QUALIFY row_number() OVER (PARTITION BY id) = 1"
    )
    assert "EXCLUDE" not in out and "QUALIFY" not in out and "_dlt_load_id" not in out
    assert '"t"."group" AS "group"' in out and '"t"."n" * 2 AS "n"' in out
    assert '"_w"' not in out.split("FROM")[0]  # the outer select lists the view's columns only


def test_json_lists_become_arrays_null_stays_null_and_empty_lists_are_typed():
    out = render("SELECT coalesce(CAST(tags AS VARCHAR[]), []) AS tags FROM s.t")
    assert "JSONB_ARRAY_ELEMENTS_TEXT" in out and "WITH ORDINALITY" in out
    assert 'WHEN "t"."tags" IS NULL THEN NULL' in out
    assert "CAST(ARRAY[] AS TEXT[])" in out


def test_group_by_all_lists_the_grouped_positions():
    out = render("SELECT id, date_trunc('day', at) AS d, count(*) AS c FROM s.t GROUP BY ALL")
    assert out.endswith("GROUP BY 1, 2")


def test_a_view_over_missing_tables_is_skipped():
    with pytest.raises(views.MissingTables, match="s.missing"):
        render("CREATE OR REPLACE VIEW v AS SELECT * FROM s.missing")


def test_a_view_over_columns_a_table_does_not_have_yet_is_skipped():
    """A column a source declares reaches an existing table with its next load: until then
    the view is left as it was (MissingColumns is a MissingTables: skipped the same way)."""
    with pytest.raises(views.MissingColumns, match=r"s\.t\.later"):
        render("CREATE OR REPLACE VIEW v AS SELECT id, later FROM s.t")
    with pytest.raises(views.MissingColumns, match=r"s\.t\.later"):
        render("CREATE OR REPLACE VIEW v AS SELECT x.id, x.later FROM s.t AS x")
    assert issubclass(views.MissingColumns, views.MissingTables)
    # names of the view's own projections are no columns of the table
    out = render(
        "SELECT id, n * 2 AS twice FROM s.t QUALIFY row_number() OVER (ORDER BY twice) = 1"
    )
    assert "twice" in out


def test_a_table_macro_becomes_a_function_with_typed_parameters():
    macro = views.render_macro(
        "CREATE OR REPLACE MACRO a.m(at_time, as_of := NULL) AS TABLE "
        "SELECT * EXCLUDE (_dlt_load_id) FROM s.t WHERE at <= at_time "
        "AND at < coalesce(as_of, at_time)",
        "postgres",
        SCHEMA,
    )
    assert macro.params == ["at_time", "as_of"] and macro.defaults == {"as_of": "NULL"}
    assert macro.types == {"at_time": "TIMESTAMPTZ", "as_of": "TIMESTAMPTZ"}
    assert "$1" in macro.body and "$2" in macro.body and "at_time" not in macro.body
    assert macro.signature() == "a.m(TIMESTAMPTZ, TIMESTAMPTZ)"
    create = macro.create([("id", "character varying")], "postgres")
    assert create.startswith(
        'CREATE FUNCTION a.m("at_time" TIMESTAMPTZ, "as_of" TIMESTAMPTZ DEFAULT NULL)'
    )


def test_reader_sql_gets_driver_placeholders_and_literal_percent_signs():
    sql = "select count(*) from s.t where id = ? and name like 'a%' group by all"
    out = views.to_dbapi(sql, "postgres")
    assert out == "SELECT COUNT(*) FROM s.t WHERE id = %s AND name LIKE 'a%%'"
    assert views.to_dbapi(sql, "duckdb") == sql
