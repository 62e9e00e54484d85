"""Every analytics view (and table macro) of warehouse/views/*.sql, created on DuckDB as
written and on Postgres as transpiled, gives the same rows on the same data.

"The same data": each source is extracted ONCE per step (one dlt load package, the source's
real code against its sandbox); a copy of the pipeline's working dir is then normalized and
loaded into Postgres while the original goes to DuckDB, so load ids, snapshot instants and
polled_at agree to the microsecond. Both loads are dlt's real merge/scd2/append paths.
"""

from __future__ import annotations

import json
import math
import shutil
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import dlt
import pytest

from pipelines import history, views
from pipelines.destinations import Warehouse
from pipelines.destinations.duckdb import DuckDBWarehouse
from pipelines.registry import get
from tests.conftest import SK_KEY
from tests.pipelines.test_history import row as history_row
from tests.sandboxes import heat_sa_tesla
from tests.sources.heat.conftest import HEAT_KEY

#: arguments each table macro is called with, per macro: SQL in DuckDB's dialect, run on both
#: destinations through their readers (a new macro must say how to call it here)
MACRO_CALLS = {
    "analytics.heat_schedule_at": [
        "select * from analytics.heat_schedule_at(CAST(? AS TIMESTAMPTZ))",
        "select * from analytics.heat_schedule_at(CAST(? AS TIMESTAMPTZ), "
        "as_of := CAST(? AS TIMESTAMPTZ))",
    ],
}


class Twins:
    """One extract, two loads: DuckDB (the working dir as is) and Postgres (a copy)."""

    def __init__(self, base: Path, duck: DuckDBWarehouse, pg: Warehouse) -> None:
        self.base, self.duck, self.pg = base, duck, pg

    def _pipeline(self, source: str, where: str, warehouse: Warehouse) -> dlt.Pipeline:
        return dlt.pipeline(
            pipeline_name=f"solarsync_{source}",
            pipelines_dir=str(self.base / where),
            destination=warehouse.dlt_destination(),
            dataset_name=source,
        )

    def step(self, source: str) -> None:
        spec = get(source)
        first = self._pipeline(source, "duckdb", self.duck)
        # Postgres' file format for both (DuckDB loads it too): one package fits both loaders
        first.extract(
            self.duck.adapt(spec.factory()()), loader_file_format=self.pg.loader_file_format
        )
        copy = self.base / "postgres" / f"solarsync_{source}"
        shutil.rmtree(copy, ignore_errors=True)
        shutil.copytree(self.base / "duckdb" / f"solarsync_{source}", copy)
        for warehouse, pipeline in (
            (self.duck, first),
            (self.pg, self._pipeline(source, "postgres", self.pg)),
        ):
            pipeline.normalize()
            pipeline.load().raise_on_failed_jobs()
            warehouse.publish(pipeline, source, views=f"{source}.sql")


def normal(value: Any) -> Any:
    """One spelling per value across drivers: numbers as rounded floats, instants in UTC,
    JSON parsed, lists as tuples."""
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, int | float | Decimal):
        number = float(value)
        return round(number, 6) if math.isfinite(number) else str(number)
    if isinstance(value, datetime):
        return value.astimezone(UTC) if value.tzinfo else value
    if isinstance(value, str) and value[:1] in "[{":
        try:
            return normal(json.loads(value))
        except ValueError:
            return value
    if isinstance(value, list | tuple):
        return tuple(normal(v) for v in value)
    if isinstance(value, dict):
        return tuple(sorted((k, normal(v)) for k, v in value.items()))
    return value


def answers(warehouse: Warehouse, sql: str, params: list[Any]) -> tuple[list[str], list[tuple]]:
    with warehouse.reader() as reader:
        records = reader.records(sql, params)
    columns = [c for c in (records[0] if records else {}) if c != "_dlt_id"]
    rows = [tuple(normal(r[c]) for c in columns) for r in records]
    return columns, sorted(rows, key=repr)


def assert_same(
    duck: Warehouse, pg: Warehouse, sql: str, params: list[Any] = (), some: bool = True
) -> int:
    duck_columns, duck_rows = answers(duck, sql, list(params))
    pg_columns, pg_rows = answers(pg, sql, list(params))
    assert duck_rows or not some, f"{sql}: no rows on DuckDB, nothing compared"
    assert pg_columns == duck_columns, sql
    for i, (a, b) in enumerate(zip(duck_rows, pg_rows, strict=False)):
        assert a == b, f"{sql}: row {i} differs\nduckdb:   {a}\npostgres: {b}"
    assert len(pg_rows) == len(duck_rows), sql
    return len(duck_rows)


@pytest.fixture
def sandboxes(sk_sandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    with heat_sa_tesla(
        tmp_path,
        monkeypatch,
        seed=3,
        heat_key=HEAT_KEY,
        sa_token="sa_VIEWSTOKEN",
        tesla_password="Views-Tesla-PW",
        heat_sites=4,
        sa_sites=3,
        org_users=4,
        gateway_options={
            "variant": "21.44-leader",  # a nested value (followers) in gateway_status
            "zero_at": {2: [("solar", "energy_exported")]},
            "reset_at": {3: ["site"]},
        },
    ) as started:
        yield {"solarknock": sk_sandbox, **started}


def test_every_view_gives_the_same_rows_on_duckdb_and_postgres(
    sandboxes, postgres_warehouse, tmp_path: Path
) -> None:
    duck = DuckDBWarehouse(tmp_path / "twin.duckdb")
    pg = postgres_warehouse
    twins = Twins(tmp_path / "pipelines", duck, pg)
    sk, heat, sa = sandboxes["solarknock"], sandboxes["heat"], sandboxes["solarassistant"]
    assert SK_KEY  # the SolarKnock sandbox is configured by its fixture

    # several steps per source, so merges, soft deletes, scd2 versions and counters move
    twins.step("solarknock")
    sk.update("knocks", 5)
    sk.soft_delete("leads", 2)
    sk.insert("daily-stats", 3)
    twins.step("solarknock")

    a, b, c, _ = heat.site_ids
    twins.step("heat")
    grid = next(s for s in heat.truth()[a]["schedules"] if s["asset"] == "grid")
    changed = dict(grid["entries"][0], value=grid["entries"][0]["value"] + 7)
    heat.set_schedule(a, grid["asset"], grid["type"], [changed, *grid["entries"][1:]])
    heat.clear_schedules(b)
    heat.set_online(c, False)
    twins.step("heat")
    heat.hide_site(c)
    twins.step("heat")

    for _ in range(2):
        twins.step("solarassistant")
        sa.tick()
    for _ in range(5):
        twins.step("tesla")

    # the run history's views (warehouse/views/solarsync.sql): one journal loaded into both
    history.journal(history_row("heat", run_id="h1", warnings=["site 7 skipped"]))
    history.journal(history_row("tesla", run_id="t1", status="failed", tables=[]))
    assert history.load(duck) == history.load(pg) == 2

    compared: dict[str, int] = {}
    for path in sorted(p for p in views.VIEWS_DIR.iterdir() if p.name.endswith(".sql")):
        for statement in views.statements(path.read_text()):
            name = views.statement_name(statement)
            if not name:
                continue
            if views.is_macro(statement):
                assert name in MACRO_CALLS, f"{name}: add how to call it to MACRO_CALLS"
                continue
            compared[name] = assert_same(duck, pg, f"select * from {name}")
    assert len(compared) >= 15, compared
    # the transpiled views keep BI types on Postgres too: no json/jsonb, no arrays
    with pg.reader() as reader:
        kinds = reader.rows(
            "select table_name, column_name, data_type from information_schema.columns "
            "where table_schema = 'analytics'"
        )
    assert {k[0] for k in kinds} >= {n.split(".")[1] for n in compared}
    odd = [k for k in kinds if k[2] in ("json", "jsonb", "ARRAY", "USER-DEFINED", "interval")]
    assert odd == [], odd

    # the macro: entries in force at each start instant, as known then and as known now
    with pg.reader() as reader:
        starts = [r[0] for r in reader.rows("select distinct start_at from heat.schedule_entries")]
        (latest,) = reader.rows("select max(_dlt_valid_from) from heat.schedule_entries")[0]
    first, second = MACRO_CALLS["analytics.heat_schedule_at"]
    found = 0
    for start in sorted(starts)[:4]:
        found += assert_same(duck, pg, first, [start], some=False)
        found += assert_same(duck, pg, second, [start + timedelta(minutes=1), latest], some=False)
    assert found > 0
