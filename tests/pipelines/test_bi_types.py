"""What BI tools see in the published file, after a sync of all four sources against sandboxes
that send nested values where the vendors' docs leave the shape open (a lead's savings
projection as an object, HEAT sites and assets with undocumented nested fields, a Tesla leader
gateway listing its followers):

- every column of every ``analytics`` view has a type ODBC/JDBC tools read;
- SQLAlchemy reflects every view (``inspector.get_columns`` and ``Table(autoload_with=...)``)
  to scalar types and selects it, through both DuckDB dialects, at the versions users get
  today, each in its own venv (``tests/readers.py``; two SQLAlchemy versions cannot share one):

  ==============================  =============================  ======================
  dialect                         SQLAlchemy                     venv
  ==============================  =============================  ======================
  duckdb_engine 0.17 (dev venv)   2.0.54, the newest it reflects  the project's (DuckDB 2)
  duckdb-sqlalchemy (newest)      2.1.x (newest)                 reader (DuckDB 1.5)
  duckdb-sqlalchemy (newest)      2.0.x (newest)                 reader (DuckDB 1.5)
  duckdb_engine 0.17              1.4.x: Superset 6.1's pins     reader (DuckDB 1.5)
  ==============================  =============================  ======================

The readers with DuckDB 1.x need the published file in a storage format DuckDB 1.x reads
(issue 19, section 2).
"""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import pytest

from pipelines import cli
from pipelines.destinations.duckdb.views import DuckDBViews
from pipelines.views import BI_TYPE
from tests.conftest import isolate, solarknock_sandbox
from tests.readers import reader_python, run_reader
from tests.sandboxes import heat_sa_tesla

SOURCES = ("solarknock", "heat", "solarassistant", "tesla")
READER = Path(__file__).resolve().parents[1] / "sqlalchemy_reader.py"
#: every analytics view of the four sources and of the run history
ANALYTICS_VIEWS = {
    "solarknock_orgs", "knocks", "knock_actions", "leads", "lead_actions", "lead_attachments",
    "rep_daily_activity", "rep_daily_knock_times",
    "heat_site_accounts", "heat_sites", "heat_site_availability", "heat_schedules_current", "heat_schedule_history",
    "heat_assets_current",
    "solarassistant_site_accounts", "solarassistant_latest_metrics", "solarassistant_metrics", "solarassistant_energy_intervals",
    "solarassistant_energy_daily", "solarassistant_site_status", "solarassistant_site_members",
    "tesla_energy_intervals", "tesla_energy_daily", "tesla_energy_daily_local",
    "tesla_gateway_states",
    "sync_runs", "sync_run_tables",
}  # fmt: skip
#: reader venvs: (name, pip requirements, the SQLAlchemy series it must have)
READERS = {
    "duckdb-sqlalchemy, SQLAlchemy 2.1": (
        "sa21-duckdb-sqlalchemy",
        ("duckdb-sqlalchemy", "sqlalchemy>=2.1,<2.2"),
        "2.1.",
    ),
    "duckdb-sqlalchemy, SQLAlchemy 2.0": (
        "sa20-duckdb-sqlalchemy",
        ("duckdb-sqlalchemy", "sqlalchemy>=2.0,<2.1"),
        "2.0.",
    ),
    # apache-superset 6.1.0 pins sqlalchemy<2 and its [duckdb] extra duckdb-engine>=0.17.0 and
    # duckdb>=1.4.2,<2; pytz comes with Superset's pandas (DuckDB 1.x needs it for TIMESTAMPTZ)
    "duckdb_engine 0.17, SQLAlchemy 1.4 (Superset)": (
        "superset-duckdb-engine",
        ("duckdb-engine>=0.17,<0.18", "sqlalchemy>=1.4,<2", "duckdb>=1.4.2,<2", "pytz"),
        "1.4.",
    ),
}
#: DuckDB type -> what a SQLAlchemy reflection of it must be
FAMILIES = {
    "VARCHAR": "text",
    "BOOLEAN": "boolean",
    "BIGINT": "integer",
    "INTEGER": "integer",
    "SMALLINT": "integer",
    "TINYINT": "integer",
    "DOUBLE": "number",
    "DATE": "date",
    "TIMESTAMP": "timestamp",
    "TIMESTAMP WITH TIME ZONE": "timestamp",
}
SCALAR_VALUES = {"str", "int", "float", "Decimal", "bool", "date", "datetime"}


@pytest.fixture(scope="module")
def published(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The published file of one ``solarsync run`` of all four sources (once per module)."""
    base = tmp_path_factory.mktemp("bi")
    with pytest.MonkeyPatch.context() as monkeypatch:
        isolate(base, monkeypatch)
        with (
            solarknock_sandbox(monkeypatch),
            heat_sa_tesla(
                base,
                monkeypatch,
                seed=1,
                heat_key="agk_bi.ags_BISECRET",
                sa_token="sa_BITOKEN",
                tesla_password="Bi-Tesla-PW",
                heat_sites=4,
                sa_sites=2,
                org_users=3,
                gateway_options={"variant": "21.44-leader"},
            ),
        ):
            assert cli.main(["--no-progress", "run"]) == 0
    return base / "warehouse.duckdb"


def duckdb_columns(path: Path) -> dict[str, list[tuple[str, str]]]:
    """``analytics.<view>`` -> its (column, DuckDB type), as DuckDB itself sees them."""
    con = duckdb.connect(str(path), read_only=True)
    try:
        rows = con.execute(
            "select c.table_name, c.column_name, c.data_type from duckdb_columns() c "
            "join duckdb_views() v on v.schema_name = c.schema_name "
            "and v.view_name = c.table_name and v.database_name = c.database_name "
            "where c.schema_name = 'analytics' order by c.table_name, c.column_index"
        ).fetchall()
    finally:
        con.close()
    out: dict[str, list[tuple[str, str]]] = {}
    for view, column, data_type in rows:
        out.setdefault(f"analytics.{view}", []).append((column, data_type))
    return out


def family(data_type: str) -> str:
    return "number" if data_type.startswith("DECIMAL(") else FAMILIES[data_type]


def test_bi_types_are_what_odbc_and_jdbc_tools_read():
    for ok in ("VARCHAR", "BIGINT", "DECIMAL(38,9)", "TIMESTAMP WITH TIME ZONE", "DATE"):
        assert BI_TYPE.fullmatch(ok)
    for bad in ("VARCHAR[]", "JSON", "UBIGINT", "HUGEINT", "STRUCT(a INTEGER)", "MAP(VARCHAR, VARCHAR)", "UUID", "INTERVAL", "TIME"):  # fmt: skip
        assert not BI_TYPE.fullmatch(bad), bad


def test_nested_values_the_apis_send_reach_no_analytics_view(published: Path):
    con = duckdb.connect(str(published), read_only=True)
    try:
        # the sandboxes did send nested values where the views read (else this proves nothing)
        nested = con.execute(
            "select (select count(*) from solarknock.leads where savings_projection__v_json "
            "is not null), (select count(*) from heat.sites where location is not null), "
            "(select count(*) from tesla.gateway_status where followers is not null)"
        ).fetchone()
        assert all(nested), nested
        assert {r[0] for r in con.execute("select view_name from duckdb_views() where schema_name = 'analytics'").fetchall()} == ANALYTICS_VIEWS  # fmt: skip
        views = [f"analytics.{v}" for v in ANALYTICS_VIEWS]
        types = DuckDBViews(con, "published", "test").column_types(views)
        assert [(v, c, t) for v, c, t in types if not BI_TYPE.fullmatch(t)] == []
        # ... and come out as documented: an object as its JSON text, a list as text
        (text,) = con.execute(
            "select any_value(savings_projection_json) from analytics.leads "
            "where savings_projection_json is not null and savings_projection is null"
        ).fetchone()
        assert json.loads(text)["years"] == 25
        numbers = con.execute(
            "select count(*) from analytics.leads where savings_projection is not null"
        ).fetchone()[0]
        assert numbers > 0  # numbers and numeric strings stay numbers beside the objects
        followers = con.execute("select followers from analytics.tesla_gateway_states").fetchall()
        assert followers == [("1232100-00-E--TG0000000000F1, 1232100-00-E--TG0000000000F2",)]
    finally:
        con.close()


def read(python: Path | str, path: Path, how: str, schemas: str, tz: str = "") -> dict:
    code = READER.read_text()
    if str(python) == sys.executable:  # the project's venv: the same script, in its own process
        result = subprocess.run(
            [sys.executable, "-c", code, str(path), how, schemas, tz],
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert result.returncode == 0, result.stderr[-3000:]
        return json.loads(result.stdout.splitlines()[-1])
    out = run_reader(Path(python), code, str(path), how, schemas, tz, timeout=300)
    return json.loads(out.stdout.splitlines()[-1])


def assert_views_reflect_to_scalars(found: dict, published: Path) -> None:
    """Every analytics view, both reflections, the names and type families DuckDB has; every
    sampled value a scalar; every row counted."""
    expected = duckdb_columns(published)
    views = {k: v for k, v in found["relations"].items() if k.startswith("analytics.")}
    assert set(views) == set(expected)
    con = duckdb.connect(str(published), read_only=True)
    try:
        for name, relation in views.items():
            assert relation["kind"] == "view", name
            want = [(c, family(t)) for c, t in expected[name]]
            for how in ("columns", "autoload"):
                got = [(c["name"], c["family"]) for c in relation[how]]
                assert got == want, f"{name} ({how}): {relation[how]}"
            assert set(relation["value_types"]) <= SCALAR_VALUES, (name, relation["value_types"])
            (count,) = con.execute(f"select count(*) from {name}").fetchone()
            assert relation["count"] == count, name
            assert relation["sampled"] == min(count, 5), name
    finally:
        con.close()


def instants(relation: dict) -> dict[str, list[datetime]]:
    return {
        column: [datetime.fromisoformat(v).astimezone(UTC) for v in values]
        for column, values in relation["timestamps"].items()
    }


def test_duckdb_engine_in_the_dev_venv_reads_every_table_and_view(published: Path):
    """duckdb_engine 0.17 with SQLAlchemy 2.0.54, the newest it reflects with (2.0.55+ casts to
    REGCLASS, 2.1 queries pg_collation: neither exists in DuckDB)."""
    import duckdb_engine
    import sqlalchemy

    assert duckdb_engine.__version__.startswith("0.17.")
    assert sqlalchemy.__version__ == "2.0.54"
    schemas = ",".join((*SOURCES, "analytics", "solarsync"))
    found = read(sys.executable, published, "url", schemas)
    assert found["dialect"].startswith("duckdb_engine.")
    assert_views_reflect_to_scalars(found, published)
    # every table and view of every dataset, not only the views
    con = duckdb.connect(str(published), read_only=True)
    try:
        everything = {
            f"{s}.{t}"
            for s, t in con.execute(
                "select schema_name, table_name from duckdb_tables() union all "
                "select schema_name, view_name from duckdb_views() where not internal"
            ).fetchall()
            if s in schemas.split(",")
        }
    finally:
        con.close()
    assert set(found["relations"]) == everything
    for name, relation in found["relations"].items():
        assert relation["autoload"], f"{name}: no columns reflected"
    # TIMESTAMPTZ reflects as a plain TIMESTAMP (timezone=False) through duckdb_engine, but the
    # values are the right instants, aware, whatever the process's zone
    # (docs/destinations/duckdb.md: time zones)
    runs = found["relations"]["analytics.sync_runs"]
    started = next(c for c in runs["autoload"] if c["name"] == "started_at")
    assert (started["family"], started["timezone"]) == ("timestamp", False)
    in_new_york = read(sys.executable, published, "url", "analytics", "America/New_York")
    utc = read(sys.executable, published, "connect_args", "analytics", "UTC")
    seen = 0
    for view, relation in in_new_york["relations"].items():
        assert instants(relation) == instants(utc["relations"][view]), view
        for column, values in relation["timestamps"].items():
            seen += len(values)
            assert all(v[-6:] in ("-04:00", "-05:00") for v in values)  # the server's zone
            assert all(v.endswith("+00:00") for v in utc["relations"][view]["timestamps"][column])
    assert seen > 0


@pytest.mark.parametrize("reader", sorted(READERS))
def test_sqlalchemy_readers_of_today_reflect_every_view_to_scalar_types(
    published: Path, reader: str
):
    name, requirements, series = READERS[reader]
    python = reader_python(name, *requirements)
    for how in ("connect_args", "url"):
        found = read(python, published, how, "analytics")
        assert found["sqlalchemy"].startswith(series), found["sqlalchemy"]
        assert_views_reflect_to_scalars(found, published)
    recommended = "duckdb-sqlalchemy" in requirements
    assert found["dialect"].startswith("duckdb_sqlalchemy." if recommended else "duckdb_engine.")
    # duckdb-sqlalchemy keeps TIMESTAMPTZ's zone in the reflected type; duckdb_engine drops it
    zoned = [
        column["timezone"]
        for view, columns in duckdb_columns(published).items()
        for column, (_, data_type) in zip(
            found["relations"][view]["autoload"], columns, strict=True
        )
        if data_type == "TIMESTAMP WITH TIME ZONE"
    ]
    assert zoned and set(zoned) == {recommended}
