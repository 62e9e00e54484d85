"""``solarsync run`` with every source configured: each runs, one broken source fails alone."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from pipelines import cli
from tests.conftest import SK_KEY
from tests.sandboxes import heat_sa_tesla


@pytest.fixture
def four_sandboxes(sk_sandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    with heat_sa_tesla(
        tmp_path,
        monkeypatch,
        seed=1,
        heat_key="agk_all.ags_ALLSECRET",
        sa_token="sa_ALLTOKEN",
        tesla_password="All-Tesla-PW",
        heat_sites=2,
        sa_sites=2,
        org_users=3,
    ) as sandboxes:
        yield sandboxes


def schemas(warehouse: Path) -> set[str]:
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        return {
            row[0]
            for row in con.execute(
                "select distinct table_schema from information_schema.tables"
            ).fetchall()
        }
    finally:
        con.close()


def test_run_without_arguments_syncs_every_configured_source(
    four_sandboxes, any_warehouse, capsys
) -> None:
    """On every destination: all four sources load, their views exist, status reads back."""
    destination = ["--destination", any_warehouse.kind]
    assert cli.main([*destination, "run"]) == 0, capsys.readouterr().out
    out = capsys.readouterr().out
    assert f"solarsync: 4 source(s) -> {any_warehouse.describe()}" in out
    for source in ("solarknock", "heat", "solarassistant", "tesla"):
        assert f"  {source}: ok" in out
    with any_warehouse.reader() as reader:
        found = {
            r[0] for r in reader.rows("select distinct table_schema from information_schema.tables")
        }
        assert {"solarknock", "heat", "solarassistant", "tesla", "analytics"} <= found
        sa_sites = four_sandboxes["solarassistant"].truth("sites")
        assert reader.rows("select count(*) from solarassistant.sites") == [(len(sa_sites),)]
        assert reader.rows("select count(distinct meter) from tesla.meter_readings") == [(4,)]
    assert cli.main([*destination, "status"]) == 0
    status = capsys.readouterr().out
    for source in ("solarknock", "heat", "solarassistant", "tesla"):
        assert f"{source}: last successful load 20" in status, status


def test_one_broken_source_does_not_stop_the_others(
    four_sandboxes, isolated_dlt: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    monkeypatch.setenv("SOURCES__SOLARASSISTANT__API_TOKEN", "sa_REVOKED")
    code = cli.main(["run"])
    out = capsys.readouterr().out
    assert code == 1, out
    assert "  solarassistant: FAILED" in out
    for source in ("solarknock", "heat", "tesla"):
        assert f"  {source}: ok" in out
    found = schemas(isolated_dlt / "warehouse.duckdb")
    assert {"solarknock", "heat", "tesla"} <= found and "solarassistant" not in found
    assert SK_KEY not in out and "sa_REVOKED" not in out


@pytest.mark.parametrize("source", ["heat", "solarassistant", "tesla"])
def test_a_backfill_of_a_snapshot_source_says_there_is_nothing_to_backfill(
    source: str, isolated_dlt: Path, capsys: pytest.CaptureFixture
) -> None:
    """The snapshot APIs show only what is true now: a clear usage error, nothing requested."""
    warehouse = isolated_dlt / "warehouse.duckdb"
    assert cli.main(["--no-progress", "--warehouse", str(warehouse), "backfill", source]) == 2
    err = capsys.readouterr().err
    assert f"{source} has nothing to backfill" in err
    assert "Sources with a backfill: solarknock" in err
    assert not warehouse.exists()
