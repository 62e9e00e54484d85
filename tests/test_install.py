"""solarsync as someone installs it who never cloned the repo: the wheel built from this checkout,
installed into a fresh venv outside the repo (its dependencies from the package registry), runs
``solarsync demo`` from an empty directory, and the warehouse it writes has every analytics view
the views files declare, each answering. (A wheel without the views used to load data and
silently create no view.)"""

from __future__ import annotations

import os
import subprocess
import sys
import venv
import zipfile
from pathlib import Path

import duckdb

from tests.duckdb_readers import declared_views
from tests.readers import SESSION_ENV

ROOT = Path(__file__).resolve().parents[1]
SOURCES = ("solarknock", "heat", "solarassistant", "tesla", "solarsync")


def run(args: list[str], **kwargs) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(args, capture_output=True, text=True, **kwargs)
    assert done.returncode == 0, f"{args}: {done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done


def test_the_wheel_installed_outside_the_repo_runs_the_demo_with_every_view(tmp_path):
    dist = tmp_path / "dist"
    run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation",
         str(ROOT), "-w", str(dist)], timeout=300)  # fmt: skip
    (wheel,) = dist.glob("solarsync-*.whl")
    shipped = set(zipfile.ZipFile(wheel).namelist())
    in_repo = {f"warehouse/views/{p.name}" for p in (ROOT / "warehouse" / "views").glob("*.sql")}
    assert in_repo and in_repo <= shipped, sorted(in_repo - shipped)

    home = tmp_path / "venv"
    venv.create(home, with_pip=True)
    env = {k: v for k, v in SESSION_ENV.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV"))}
    run([str(home / "bin" / "python"), "-m", "pip", "install", "-q",
         "--disable-pip-version-check", str(wheel)], env=env, timeout=900)  # fmt: skip

    empty = tmp_path / "somewhere" / "else"
    empty.mkdir(parents=True)
    # nothing of the repo or of the test session's settings reaches the installed command
    env = {
        k: v
        for k, v in env.items()
        if not k.startswith(("DLT_", "DESTINATION__", "SOURCES__", "SOLARSYNC__", "NORMALIZE__"))
    }
    where = run([str(home / "bin" / "python"), "-c", "import pipelines, warehouse.views; "
                 "print(pipelines.__file__); print(warehouse.views.__file__)"],
                cwd=empty, env=env).stdout  # fmt: skip
    assert str(ROOT) not in where and str(home) in where, where
    demo = run([str(home / "bin" / "solarsync"), "demo"], cwd=empty, env=env, timeout=600)
    assert "demo finished" in demo.stdout, demo.stdout[-2000:]

    published = empty / "warehouse" / "demo.duckdb"
    views = declared_views(*SOURCES)
    con = duckdb.connect(str(published), read_only=True)
    try:
        present = {
            f"analytics.{name}"
            for (name,) in con.execute(
                "select view_name from duckdb_views() where schema_name = 'analytics'"
            ).fetchall()
        }
        assert set(views) <= present, sorted(set(views) - present)
        for view in views:
            con.execute(f"select count(*) from {view}").fetchone()
        # the demo loaded every source: every source's main view has rows
        for view in ("analytics.knocks", "analytics.heat_sites", "analytics.sync_runs",
                     "analytics.solarassistant_metrics", "analytics.tesla_energy_intervals"):  # fmt: skip
            assert con.execute(f"select count(*) from {view}").fetchone()[0] > 0, view
    finally:
        con.close()
    assert os.path.exists(empty / "warehouse" / "demo-report.html")
