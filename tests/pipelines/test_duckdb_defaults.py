"""The DuckDB warehouse as a new user meets it (issue 19): the documented defaults exactly, and
any file name.

The default file is ``warehouse/solarsync.duckdb``; DuckDB names a file's catalog after it, and
``solarsync`` is also the run history's schema, so every run once failed with "Ambiguous
reference to catalog or schema". The tests here use no destination override at all (the
autouse ``isolated_dlt`` fixture sets ``DESTINATION__DUCKDB__CREDENTIALS``; they remove it), run
from an empty directory and from a fresh clone, and open the published file the way BI tools
do: by its name, with DuckDB 1.4 LTS and the DuckDB CLI from PyPI in their own environments
(``tests/readers.py``), as well as this DuckDB.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import duckdb
import pytest

from pipelines import cli
from pipelines.destinations.duckdb.catalog import catalog_name
from pipelines.destinations.duckdb.files import working_path
from tests.duckdb_readers import assert_every_view_answers, counts_cli_attached, declared_views
from tests.sandboxes import heat_sa_tesla

REPO = Path(__file__).resolve().parents[2]
HEAT_KEY = "agk_defaults.ags_DEFAULTSSECRET"
#: what ``solarsync`` reads from the environment besides the sources' settings
OVERRIDES = ("DESTINATION__", "SOLARSYNC__", "SOURCES__", "NORMALIZE__", "LOAD__", "DATA_WRITER__")


def user_env(**settings: str) -> dict[str, str]:
    """The environment of a user who configured only the sources: no destination override."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(OVERRIDES)}
    env.pop("PYTHONPATH", None)
    env.pop("DLT_PROJECT_DIR", None)  # a user's shell does not point dlt at another project
    return env | {"RUNTIME__DLTHUB_TELEMETRY": "false"} | settings


def solarsync(cwd: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    """The console script the install puts next to this python, as a user runs it."""
    script = Path(sys.executable).with_name("solarsync")
    return subprocess.run(
        [str(script), "--no-progress", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def heat_sandbox_process(cwd: Path) -> Iterator[str]:
    """``python -m sandbox heat --port P --api-key K``, as docs/contributing.md starts it; its
    base URL."""
    cwd.mkdir(parents=True, exist_ok=True)
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "sandbox", "heat", "--port", str(port), "--api-key", HEAT_KEY],
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    try:
        for line in proc.stdout:
            if "ready" in line:
                break
        else:
            raise AssertionError(f"the HEAT sandbox did not start (exit {proc.wait()})")
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(timeout=30)


# --------------------------------------------------------------------------- the defaults
def test_the_documented_defaults_from_an_empty_directory(tmp_path: Path):
    """Exactly what a new user does: HEAT configured, nothing else, from an empty directory
    (no .dlt there): two runs, status, report; then BI tools open the published
    ``warehouse/solarsync.duckdb`` and every analytics view answers."""
    home = tmp_path / "empty"
    home.mkdir()
    with heat_sandbox_process(tmp_path / "sandbox") as base_url:
        env = user_env(
            DLT_DATA_DIR=str(tmp_path / "dlt"),
            SOURCES__HEAT__BASE_URL=base_url,
            SOURCES__HEAT__API_KEY=HEAT_KEY,
        )
        for _ in range(2):
            done = solarsync(home, env, "run", "heat")
            assert done.returncode == 0, done.stdout + done.stderr
            assert "heat: ok" in done.stdout and "Ambiguous" not in done.stdout + done.stderr
        status = solarsync(home, env, "status", "--json", "heat")
        assert status.returncode == 0, status.stdout + status.stderr
        report = solarsync(home, env, "report")
        assert report.returncode == 0, report.stdout + report.stderr

    published = home / "warehouse" / "solarsync.duckdb"
    assert sorted(os.listdir(home)) == ["warehouse"]
    assert working_path(published).exists()
    assert (home / "warehouse" / "solarsync-report.html").stat().st_size > 0
    counts = assert_every_view_answers(published, ["heat"])
    assert counts["analytics.sync_runs"] == 2  # both runs, both ok
    con = duckdb.connect(str(published), read_only=True)
    try:
        sites = con.execute("select count(*) from heat.sites").fetchone()[0]
        ok = con.execute("select count(*) from analytics.sync_runs where ok").fetchone()[0]
    finally:
        con.close()
    assert counts["analytics.heat_sites"] == sites > 0 and ok == 2
    # status read the same file, under the same name
    (heat,) = json.loads(status.stdout)["sources"]
    assert "warning" not in json.loads(status.stdout)
    assert heat["last_load"] and {t["name"]: t["rows"] for t in heat["tables"]}["sites"] == sites


def test_a_fresh_clone_with_the_committed_config(tmp_path: Path):
    """``git clone``, a key in ``.dlt/secrets.toml`` as the README says, the committed
    ``.dlt/config.toml``, no other setting; the clone's own code (``python -m pipelines``)."""
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "--quiet", str(REPO), str(clone)], check=True, timeout=120)
    assert (clone / ".dlt" / "config.toml").exists()
    with heat_sandbox_process(tmp_path / "sandbox") as base_url:
        (clone / ".dlt" / "secrets.toml").write_text(
            f'[sources.heat]\nbase_url = "{base_url}"\napi_key = "{HEAT_KEY}"\n'
        )
        env = user_env(DLT_DATA_DIR=str(tmp_path / "dlt"))
        done = subprocess.run(
            [sys.executable, "-m", "pipelines", "--no-progress", "run", "heat"],
            cwd=clone,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert done.returncode == 0, done.stdout + done.stderr
        assert "-> warehouse/solarsync.duckdb" in done.stdout
    published = clone / "warehouse" / "solarsync.duckdb"
    assert_every_view_answers(published, ["heat"])
    # nothing the clone must not commit
    tracked = subprocess.run(
        ["git", "status", "--porcelain", "--ignored=no"], cwd=clone, capture_output=True, text=True
    ).stdout
    assert tracked == "", tracked


# --------------------------------------------------------------------------- any file name
#: a warehouse file named like each schema solarsync writes, and what to load into it
NAMES = {
    "solarsync": ["heat"],  # the run history's schema (loaded by every run)
    "analytics": ["heat", "tesla"],  # the views' own schema; their views read each other
    "heat": ["heat"],
    "solarknock": ["solarknock"],
    "tesla": ["tesla"],
    "solarassistant": ["solarassistant"],
}


@pytest.fixture
def four_sandboxes(sk_sandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    with heat_sa_tesla(
        tmp_path,
        monkeypatch,
        seed=4,
        heat_key=HEAT_KEY,
        sa_token="sa_NAMESTOKEN",
        tesla_password="Names-Tesla-PW",
        heat_sites=2,
        sa_sites=2,
        org_users=2,
    ) as sandboxes:
        yield sandboxes


@pytest.mark.parametrize("name", sorted(NAMES))
def test_a_warehouse_named_like_a_schema_loads_and_every_reader_answers_its_views(
    four_sandboxes, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str, capsys
):
    monkeypatch.delenv("DESTINATION__DUCKDB__CREDENTIALS")
    monkeypatch.chdir(tmp_path)
    published = Path("warehouse") / f"{name}.duckdb"
    sources = NAMES[name]
    for _ in range(2):  # the second run: the working file, views re-created, published again
        assert cli.main(["--no-progress", "--warehouse", str(published), "run", *sources]) == 0
    assert "Ambiguous" not in capsys.readouterr().out
    # three-part names in the reader's query: in a file named like a schema, DuckDB cannot
    # tell ``heat.sites`` (schema heat) from ``heat.sites`` (catalog heat); the views bind
    counts = assert_every_view_answers(published, sources, parts=3)
    assert any(counts[v] for v in declared_views(*sources)) and counts["analytics.sync_runs"]
    # ATTACH without AS names the catalog after the file: the same answers
    views = declared_views(*sources, "solarsync")
    assert counts_cli_attached(published, views) == counts
    # status reads the published file under its name too
    assert cli.main(["--no-progress", "--warehouse", str(published), "status", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert "warning" not in report
    for source in report["sources"]:
        if source["name"] in sources:
            assert source["last_load"], source
            assert any(t["rows"] for t in source["tables"]), source


def test_an_attach_under_another_alias_answers_every_view_of_a_file_named_otherwise(
    four_sandboxes, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    """Views name schemas in two parts: a file whose name is no schema's binds them under any
    alias a reader gives it."""
    monkeypatch.delenv("DESTINATION__DUCKDB__CREDENTIALS")
    published = tmp_path / "bi.duckdb"
    assert cli.main(["--no-progress", "--warehouse", str(published), "run", "heat", "tesla"]) == 0
    counts = assert_every_view_answers(published, ["heat", "tesla"], readers=("here",))
    assert counts_cli_attached(published, list(counts), alias="dashboards") == counts


def test_dlt_connections_and_the_warehouse_take_one_lock(tmp_path: Path):
    from pipelines.destinations.duckdb import DuckDBWarehouse
    from pipelines.destinations.duckdb.files import lock_path

    for name in NAMES:
        warehouse = DuckDBWarehouse(tmp_path / f"{name}.duckdb")
        pool = warehouse.credentials().conn_pool
        assert pool.warehouse_lock is warehouse._lock
        assert pool.warehouse_lock.path == lock_path(warehouse.path).resolve()
        assert catalog_name(warehouse.load_path) == "working"


def test_sources_never_name_a_schema_like_the_working_file():
    from pipelines import registry

    schemas = set(registry.SOURCES) | {"solarsync", "analytics"}
    assert "working" not in schemas
