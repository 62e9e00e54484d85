"""``make demo`` runs ``solarsync demo``: it must work end to end on loopback."""

from __future__ import annotations

import os
from pathlib import Path

import duckdb
import pytest

from pipelines import cli


@pytest.fixture(autouse=True)
def restore_environment():
    """The demo points the sources at its sandboxes through os.environ: undo that."""
    saved = dict(os.environ)
    yield
    os.environ.clear()
    os.environ.update(saved)


def test_demo_syncs_all_four_sandboxes(tmp_path: Path, capsys) -> None:
    code = cli.main(["demo", "--warehouse-dir", str(tmp_path / "wh")])
    out = capsys.readouterr().out
    assert code == 0, out
    for source in ("solarknock", "heat", "solarassistant", "tesla"):
        assert f"  {source}: ok" in out, out
    assert "logins: 1 for 4 runs" in out
    assert "changed" in out and "removed" in out  # the HEAT schedule history shows both
    report = tmp_path / "wh" / "demo-report.html"  # the demo ends with the report's path
    assert out.rstrip().splitlines()[-1].strip() == str(report.resolve())
    assert report.stat().st_size > 3_000_000 and "Plotly.newPlot" in report.read_text()
    con = duckdb.connect(str(tmp_path / "wh" / "demo.duckdb"), read_only=True)
    try:
        schemas = {
            r[0]
            for r in con.execute("select schema_name from information_schema.schemata").fetchall()
        }
        assert {"solarknock", "heat", "solarassistant", "tesla", "analytics"} <= schemas
        (offline,) = con.execute(
            "select count(*) from analytics.solarassistant_site_status where last_status = 'offline'"
        ).fetchone()
        assert offline == 1
        runs = con.execute(
            "select source, count(*) filter (where ok) from analytics.sync_runs group by 1"
        ).fetchall()
        # SolarKnock: two offices (accounts default and south), two runs each
        assert dict(runs) == {"solarknock": 4, "heat": 2, "solarassistant": 1, "tesla": 4}
        offices = con.execute(
            "select account, count(*) from analytics.knocks k "
            "join analytics.solarknock_orgs o using (org_id, account) group by 1 order by 1"
        ).fetchall()
        assert [a for a, _ in offices] == ["default", "south"]
        assert all(n > 1000 for _, n in offices)
    finally:
        con.close()
    assert "the two offices side by side" in out
    assert "solarknock (account south): ok" in out
    assert 'Plotly.newPlot(                        "sk-offices"' in report.read_text()
