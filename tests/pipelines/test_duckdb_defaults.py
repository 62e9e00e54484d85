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
from pipelines.duckdb_catalog import catalog_name
from pipelines.publish import working_path
from pipelines.views import VIEWS_DIR, statement_name, statements
from tests.readers import reader_python, run_reader
from tests.sandboxes import heat_sa_tesla

REPO = Path(__file__).resolve().parents[2]
HEAT_KEY = "agk_defaults.ags_DEFAULTSSECRET"
#: what ``solarsync`` reads from the environment besides the sources' settings
OVERRIDES = ("DESTINATION__", "SOLARSYNC__", "SOURCES__", "NORMALIZE__", "LOAD__", "DATA_WRITER__")


def declared_views(*sources: str) -> list[str]:
    """``analytics.<view>`` of every view the sources' views files declare (macros aside)."""
    out = []
    for source in sources:
        for statement in statements((VIEWS_DIR / f"{source}.sql").read_text()):
            name = statement_name(statement)
            if name and " VIEW " in f" {statement.upper()} ":
                out.append(name)
    return out


def user_env(**settings: str) -> dict[str, str]:
    """The environment of a user who configured only the sources: no destination override."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(OVERRIDES)}
    env.pop("PYTHONPATH", None)
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
    """``python -m sandbox heat --port P --api-key K``, as the README starts it; its base URL."""
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


# --------------------------------------------------------------------------- readers
#: a reader's own python: the count of every view named on the command line
COUNT_VIEWS = """
import duckdb, json, sys
con = duckdb.connect(sys.argv[1], read_only=True)
catalog = con.execute("select current_database()").fetchone()[0]
counts = {}
for view in sys.argv[3:]:
    name = view if sys.argv[2] == "2" else '"' + catalog + '".' + view
    counts[view] = con.execute("select count(*) from " + name).fetchone()[0]
print(json.dumps({"version": duckdb.__version__, "counts": counts}))
"""


def counts_here(path: Path, views: list[str], parts: int = 2) -> dict[str, int]:
    """Counts of ``views`` read by this DuckDB, the file opened read-only by its name;
    ``parts=3``: names with the catalog (a file named like a schema needs them in a user's own
    SQL; the views themselves bind either way)."""
    con = duckdb.connect(str(path), read_only=True)
    try:
        catalog = con.execute("select current_database()").fetchone()[0]
        names = {v: v if parts == 2 else f'"{catalog}".{v}' for v in views}
        return {v: con.execute(f"select count(*) from {n}").fetchone()[0] for v, n in names.items()}
    finally:
        con.close()


def counts_duckdb14(path: Path, views: list[str], parts: int = 2) -> dict[str, int]:
    python = reader_python("duckdb14", "duckdb==1.4.*")
    out = json.loads(
        run_reader(python, COUNT_VIEWS, str(path.resolve()), str(parts), *views).stdout
    )
    assert out["version"].startswith("1.4.")
    return out["counts"]


def duckdb_cli() -> Path:
    return reader_python("duckdb-cli", "duckdb-cli==1.5.*").with_name("duckdb")


def cli_query(*args: str) -> list[list[str]]:
    """The DuckDB CLI from PyPI (``duckdb -readonly FILE``, the README's example), CSV rows."""
    done = subprocess.run([str(duckdb_cli()), *args], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and "Error" not in done.stdout, done.stdout + done.stderr
    return [line.split(",") for line in done.stdout.splitlines() if line]


def counts_cli(path: Path, views: list[str], parts: int = 2) -> dict[str, int]:
    prefix = "" if parts == 2 else f'"{catalog_name(path)}".'
    sql = " UNION ALL ".join(f"SELECT '{v}', count(*) FROM {prefix}{v}" for v in views)
    rows = cli_query("-readonly", str(path.resolve()), "-csv", "-noheader", "-c", sql)
    return {view: int(n) for view, n in rows}


def assert_every_view_answers(
    path: Path,
    sources: list[str],
    parts: int = 2,
    readers: tuple = ("here", "1.4", "cli"),
    history: bool = True,
) -> dict[str, int]:
    """Every view the sources (and the run history's, which ``solarsync run`` loads) declare
    exists in the published file and answers, with the same counts in every reader."""
    views = declared_views(*sources, *(["solarsync"] if history else []))
    con = duckdb.connect(str(path), read_only=True)
    try:
        present = {
            f"analytics.{v}"
            for (v,) in con.execute(
                "select view_name from duckdb_views() where schema_name = 'analytics'"
            ).fetchall()
        }
    finally:
        con.close()
    assert set(views) <= present, sorted(set(views) - present)
    counts = counts_here(path, views, parts)
    if "1.4" in readers:
        assert counts_duckdb14(path, views, parts) == counts
    if "cli" in readers:
        assert counts_cli(path, views, parts) == counts
    return counts


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
    attached = cli_query(
        "-csv",
        "-noheader",
        "-c",
        f"ATTACH '{published.resolve()}' (READ_ONLY); "
        + " UNION ALL ".join(f"SELECT '{v}', count(*) FROM \"{name}\".{v}" for v in views),
    )
    assert {v: int(n) for v, n in attached} == counts
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
    views = list(counts)
    rows = cli_query(
        "-csv",
        "-noheader",
        "-c",
        f"ATTACH '{published}' AS dashboards (READ_ONLY); "
        + " UNION ALL ".join(f"SELECT '{v}', count(*) FROM dashboards.{v}" for v in views),
    )
    assert {v: int(n) for v, n in rows} == counts


def test_dlt_connections_and_the_warehouse_take_one_lock(tmp_path: Path):
    from pipelines.destinations import DuckDBWarehouse
    from pipelines.publish import lock_path

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
