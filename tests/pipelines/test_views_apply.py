"""The analytics views applied to DuckDB warehouses loaded before the sources declared the
columns the views read: nothing fails, a view that needs a column the table gets with its next
load is left as it was (a warning names the column), and a raw column of a type BI tools do not
read is reported by name."""

from __future__ import annotations

import logging
from pathlib import Path

import duckdb
import pytest

from pipelines.destinations.duckdb.views import apply_views

#: solarknock.leads as a load of an earlier solarsync left it: no savings_projection__v_json
OLD_LEADS = """
CREATE SCHEMA solarknock;
CREATE TABLE solarknock.leads AS SELECT
    'l1' AS id, 'u1' AS user_id, 'Pat' AS name, NULL::VARCHAR AS email, NULL::VARCHAR AS phone,
    NULL::VARCHAR AS address, 120.5 AS monthly_bill, NULL::VARCHAR AS roof_type,
    NULL::VARCHAR AS interest_level, 'new' AS status, 80::BIGINT AS score,
    NULL::VARCHAR AS notes, 7.5 AS system_size_kw, {projection} AS savings_projection,
    '["qualified"]'::JSON AS actions_taken, '[]'::JSON AS attachments,
    TIMESTAMPTZ '2026-01-01 00:00:00+00' AS created_at,
    TIMESTAMPTZ '2026-01-02 00:00:00+00' AS updated_at,
    NULL::TIMESTAMPTZ AS deleted_at, 'load1' AS _dlt_load_id,
    'o1' AS org_id, 'default' AS account;  -- as upgraded for accounts (docs/accounts.md)
"""


def warehouse(path: Path, projection: str) -> Path:
    con = duckdb.connect(str(path))
    try:
        con.execute(OLD_LEADS.format(projection=projection))
    finally:
        con.close()
    return path


def view_names(path: Path) -> set[str]:
    con = duckdb.connect(str(path), read_only=True)
    try:
        return {
            r[0]
            for r in con.execute(
                "select view_name from duckdb_views() where schema_name = 'analytics'"
            ).fetchall()
        }
    finally:
        con.close()


def test_a_view_needing_a_column_the_table_gets_with_its_next_load_is_left_as_it_was(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
):
    path = warehouse(tmp_path / "old.duckdb", "31250.0")
    with caplog.at_level(logging.WARNING, logger="solarsync"):
        created = apply_views(path, "solarknock").views
    assert "analytics.leads" not in created
    assert "analytics.lead_actions" in created  # the other views of the table are made
    assert "analytics.leads left as it was" in caplog.text
    assert "savings_projection__v_json" in caplog.text

    # the next load of leads brings the declared column: the view follows
    con = duckdb.connect(str(path))
    try:
        con.execute("ALTER TABLE solarknock.leads ADD COLUMN savings_projection__v_json JSON")
    finally:
        con.close()
    assert "analytics.leads" in apply_views(path, "solarknock").views
    assert "leads" in view_names(path)


def test_a_qualified_column_the_table_lacks_is_named_too(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
):
    """``s.knock_count`` (DuckDB words that error differently from an unqualified column)."""
    path = tmp_path / "stats.duckdb"
    con = duckdb.connect(str(path))
    try:
        con.execute(
            "CREATE SCHEMA solarknock; CREATE TABLE solarknock.users (id VARCHAR, name VARCHAR, "
            "org_id VARCHAR, account VARCHAR);"
            "CREATE TABLE solarknock.daily_stats (user_id VARCHAR, date DATE, "
            "deleted_at TIMESTAMPTZ, knock_timestamps JSON, org_id VARCHAR, account VARCHAR)"
        )
    finally:
        con.close()
    with caplog.at_level(logging.WARNING, logger="solarsync"):
        created = apply_views(path, "solarknock").views
    assert "analytics.rep_daily_knock_times" in created
    assert "analytics.rep_daily_activity left as it was" in caplog.text
    assert "knock_count" in caplog.text


def test_a_raw_column_of_a_type_bi_tools_do_not_read_is_reported_by_name(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
):
    """A warehouse whose first leads sent the projection as an object has a JSON column
    there (it was typed before the source declared it): the view shows it as it is, and the
    run says which column of which view and where to convert it."""
    path = warehouse(tmp_path / "json.duckdb", """'{"annual": 1250}'::JSON""")
    con = duckdb.connect(str(path))
    try:
        con.execute("ALTER TABLE solarknock.leads ADD COLUMN savings_projection__v_json JSON")
    finally:
        con.close()
    with caplog.at_level(logging.WARNING, logger="solarsync"):
        assert "analytics.leads" in apply_views(path, "solarknock").views
    assert "analytics.leads.savings_projection is JSON" in caplog.text
    assert "warehouse/views/solarknock.sql" in caplog.text
