"""solarsync run from a directory without the project's ``.dlt/config.toml`` (a cron line
without ``cd``, a Dagster code location elsewhere): what the warehouse promises must not depend
on that file. docs/sources/solarknock.md says every row carries ``_dlt_load_id`` and the
SolarKnock views rely on it; rows loaded as Arrow tables only get it when dlt is told to add it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import duckdb

from tests.conftest import SK_KEY

REPO = Path(__file__).resolve().parents[2]


def test_solarknock_run_outside_the_project_dir_loads_dlt_load_id_and_views(
    sk_sandbox, tmp_path: Path
):
    elsewhere = tmp_path / "elsewhere"  # no .dlt/ here
    elsewhere.mkdir()
    warehouse = tmp_path / "warehouse.duckdb"
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("SOURCES__", "NORMALIZE__"))},
        "PYTHONPATH": str(REPO),
        "DLT_DATA_DIR": str(tmp_path / "dlt"),
        "DESTINATION__DUCKDB__CREDENTIALS": str(warehouse),
        "SOURCES__SOLARKNOCK__API_KEY": SK_KEY,
        "SOURCES__SOLARKNOCK__BASE_URL": sk_sandbox.base_url,
        "SOURCES__SOLARKNOCK__ATTACHMENTS__ENABLED": "false",
        "RUNTIME__DLTHUB_TELEMETRY": "false",
    }
    done = subprocess.run(
        [sys.executable, "-m", "pipelines", "--no-progress", "run", "solarknock"],
        cwd=elsewhere,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "solarknock: ok" in done.stdout
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        for table in ("users", "knocks", "leads", "appointments", "daily_stats", "counties"):
            rows, missing = con.execute(
                f"SELECT count(*), count(*) FILTER (WHERE _dlt_load_id IS NULL) "
                f"FROM solarknock.{table}"
            ).fetchone()
            assert rows > 0 and missing == 0, table
        live = con.execute(
            "SELECT count(*) FROM solarknock.leads WHERE deleted_at IS NULL"
        ).fetchone()[0]
        assert con.execute("SELECT count(*) FROM analytics.leads").fetchone()[0] == live
    finally:
        con.close()
