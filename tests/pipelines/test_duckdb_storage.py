# ruff: noqa: F811  (sandbox fixtures imported from the per-source conftests)
"""The storage version of the DuckDB files BI tools open (issue 19, pipelines/duckdb_storage.py):
the published warehouse and the lake's ``_views.duckdb`` open in DuckDB 1.4 LTS and the DuckDB
CLI from PyPI; ``[destination.duckdb] storage_version`` chooses; warehouses an earlier version
left (DuckDB 2.0's own format, the old working-file name, loaded in place) keep loading."""

from __future__ import annotations

import contextlib
import os
import subprocess
from pathlib import Path

import duckdb
import pytest

from pipelines import cli, registry
from pipelines.destinations.duckdb import DuckDBWarehouse, publish
from pipelines.destinations.duckdb.files import earlier_working_path, wal_path, working_path
from pipelines.destinations.duckdb.storage import file_version
from pipelines.sync import run_source
from sources.common import ConfigurationError
from tests.duckdb_readers import (
    assert_every_view_answers,
    counts_cli,
    counts_duckdb14,
    counts_here,
    declared_views,
)
from tests.readers import reader_python, run_reader
from tests.sources.heat.conftest import heat_sandbox  # noqa: F401 (fixture)
from tests.sources.solarknock.warehouse_check import assert_equal_to_truth


@pytest.fixture
def warehouse(isolated_dlt: Path) -> Path:
    return isolated_dlt / "warehouse.duckdb"


def run(*args: str) -> int:
    return cli.main(["--no-progress", *args])


def sync(name: str, warehouse) -> object:
    result = run_source(registry.get(name), warehouse)
    assert result.ok, result.error
    return result


@pytest.mark.parametrize(
    ("setting", "expected"),
    [(None, "v1.4.0"), ("1.0", "v1.0.0"), ("v1.5.0", "v1.5.0"), ("latest", "v2.0.0")],
)
def test_the_working_and_published_files_are_in_the_configured_storage_version(
    heat_sandbox, warehouse, monkeypatch, setting, expected
):
    if setting:
        monkeypatch.setenv("DESTINATION__DUCKDB__STORAGE_VERSION", setting)
    assert run("run", "heat") == 0
    assert file_version(working_path(warehouse)) == expected
    assert file_version(warehouse) == expected
    python = reader_python("duckdb14", "duckdb==1.4.*")
    opened = run_reader(
        python,
        "import duckdb, sys\n"
        "try:\n"
        "    duckdb.connect(sys.argv[1], read_only=True).execute('select 1')\n"
        "    print('opened')\n"
        "except duckdb.Error as exc:\n"
        "    print(str(exc).splitlines()[0])",
        str(warehouse),
    ).stdout
    # DuckDB 1.4 reads up to its own storage version: the default and older ones
    if expected in ("v2.0.0", "v1.5.0"):
        assert "can only read" in opened, opened
    else:
        assert opened.strip() == "opened"


def test_the_setting_is_read_from_the_projects_config_toml(heat_sandbox, tmp_path):
    """``[destination.duckdb] storage_version`` in the project's ``.dlt/config.toml`` (a typed
    setting, resolved by dlt like every other), for ``solarsync run`` started there."""
    from tests.pipelines.test_duckdb_defaults import solarsync, user_env

    project = tmp_path / "project"
    (project / ".dlt").mkdir(parents=True)
    (project / ".dlt" / "config.toml").write_text('[destination.duckdb]\nstorage_version = "1.3"\n')
    env = user_env(
        DLT_DATA_DIR=str(tmp_path / "dlt"),
        SOURCES__HEAT__BASE_URL=heat_sandbox.base_url,
        SOURCES__HEAT__API_KEY=os.environ["SOURCES__HEAT__API_KEY"],
    )
    done = solarsync(project, env, "run", "heat")
    assert done.returncode == 0, done.stdout + done.stderr
    assert file_version(project / "warehouse" / "solarsync.duckdb") == "v1.3.0"


def test_an_unknown_storage_version_is_refused_with_what_to_set(
    heat_sandbox, warehouse, monkeypatch, capsys
):
    monkeypatch.setenv("DESTINATION__DUCKDB__STORAGE_VERSION", "v9.9")
    assert run("run", "heat") != 0
    out = capsys.readouterr().out
    assert "storage_version 'v9.9' is not a DuckDB storage version" in out
    assert "DESTINATION__DUCKDB__STORAGE_VERSION" in out
    assert not warehouse.exists() and not working_path(warehouse).exists()
    with pytest.raises(ConfigurationError):
        DuckDBWarehouse(warehouse).storage_version  # noqa: B018


def test_a_warehouse_in_duckdb_2_format_is_rewritten_once_and_goes_on_incrementally(
    sk_sandbox, warehouse, monkeypatch
):
    """An earlier version wrote DuckDB 2.0's own format. The first run of this one rewrites the
    working file in the configured version (a compacting copy under the warehouse lock): every
    row, view and dlt's state kept, so the run reads only what changed; then DuckDB 1.4 opens
    the published file."""
    monkeypatch.setenv("SOURCES__SOLARKNOCK__ATTACHMENTS__ENABLED", "false")
    monkeypatch.setenv("DESTINATION__DUCKDB__STORAGE_VERSION", "latest")
    sync("solarknock", warehouse)
    assert file_version(working_path(warehouse)) == file_version(warehouse) == "v2.0.0"
    sk_sandbox.update("knocks", n=7)
    sk_sandbox.soft_delete("leads", n=2)
    monkeypatch.delenv("DESTINATION__DUCKDB__STORAGE_VERSION")
    sk_sandbox.clear_requests()
    upgraded = DuckDBWarehouse(warehouse)
    result = sync("solarknock", upgraded)
    assert upgraded.prepared == ["converted"]
    assert not list(working_path(warehouse).parent.glob("*.convert-*"))
    assert file_version(working_path(warehouse)) == file_version(warehouse) == "v1.4.0"
    # incremental: the 7 knocks and 2 leads that changed, not a full reload
    assert result.rows["knocks"] == 7 and result.rows["leads"] == 2
    assert_equal_to_truth(sk_sandbox, warehouse)
    views = declared_views("solarknock")
    views.remove("analytics.lead_attachments")  # attachments are off here
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        here = {v: con.execute(f"select count(*) from {v}").fetchone()[0] for v in views}
    finally:
        con.close()
    assert counts_duckdb14(warehouse, views) == here
    # once: the next run finds the configured version
    again = DuckDBWarehouse(warehouse)
    sync("solarknock", again)
    assert again.prepared == []


def test_an_earlier_versions_working_file_is_renamed_and_loading_goes_on(
    sk_sandbox, warehouse, monkeypatch
):
    """Before this version the working file was ``.solarsync/<name>`` (its catalog named like
    the published file); it is moved, WAL and all, and nothing is downloaded again."""
    monkeypatch.setenv("SOURCES__SOLARKNOCK__ATTACHMENTS__ENABLED", "false")
    sync("solarknock", warehouse)
    earlier = earlier_working_path(warehouse)
    os.replace(working_path(warehouse), earlier)
    # the earlier version killed before its checkpoint: a WAL next to its working file
    con = duckdb.connect(str(earlier))
    con.execute("PRAGMA disable_checkpoint_on_shutdown")
    con.execute("SET wal_autocheckpoint = '1GB'")
    con.execute("create table main.marker as select 42 as answer")
    con.close()
    assert wal_path(earlier).exists()
    sk_sandbox.update("knocks", n=3)
    moved = DuckDBWarehouse(warehouse)
    result = sync("solarknock", moved)
    assert moved.prepared == ["renamed"]
    assert not earlier.exists() and not wal_path(earlier).exists()
    assert result.rows["knocks"] == 3
    assert_equal_to_truth(sk_sandbox, warehouse)
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        assert con.execute("select answer from main.marker").fetchall() == [(42,)]
    finally:
        con.close()


class LoadedInPlace(DuckDBWarehouse):
    """A release before BI publishing: dlt loaded the file BI tools open, in place, in DuckDB's
    own format. (Its views failed in a file named ``analytics.duckdb``, the catalog named like
    the views' schema: it has the data and dlt's state only.)"""

    @property
    def load_path(self) -> Path:
        return self.path

    def credentials(self):
        from dlt.destinations.impl.duckdb.configuration import DuckDbCredentials

        return DuckDbCredentials(str(self.path))

    def writing(self, source):
        return contextlib.nullcontext()

    def publish(self, pipeline, source, *, views, batch=False):
        from pipelines.destinations import Publication

        return Publication()


def test_a_warehouse_an_earlier_release_loaded_at_analytics_duckdb_is_adopted(
    heat_sandbox, isolated_dlt, monkeypatch
):
    monkeypatch.delenv("DESTINATION__DUCKDB__CREDENTIALS")
    published = isolated_dlt / "warehouse" / "analytics.duckdb"
    published.parent.mkdir()
    first = run_source(registry.get("heat"), LoadedInPlace(published))
    assert first.ok, first.error
    assert file_version(published) == "v2.0.0" and not working_path(published).exists()
    adopted = DuckDBWarehouse(published)
    sync("heat", adopted)
    assert adopted.prepared == ["adopted", "converted"]
    assert file_version(published) == "v1.4.0"
    assert_every_view_answers(published, ["heat"], parts=3, history=False)
    con = duckdb.connect(str(published), read_only=True)
    try:
        loads = con.execute(
            'select count(*) from "analytics".heat._dlt_loads where status = 0'
        ).fetchone()[0]
    finally:
        con.close()
    assert loads == 2  # the earlier release's load and this one's, one history


def test_adopting_with_a_wal_copies_into_the_configured_version(tmp_path: Path):
    published, work = tmp_path / "solarsync.duckdb", working_path(tmp_path / "solarsync.duckdb")
    con = duckdb.connect(str(published))
    con.execute("PRAGMA disable_checkpoint_on_shutdown")
    con.execute("SET wal_autocheckpoint = '1GB'")
    con.execute("create schema heat; create table heat.sites as select range id from range(5)")
    con.close()
    assert wal_path(published).exists() and file_version(published) == "v2.0.0"
    assert publish.adopt(published, work, "v1.4.0") == "compacting copy"
    assert file_version(work) == "v1.4.0"
    con = duckdb.connect(str(work), read_only=True)
    try:
        assert con.execute("select count(*) from heat.sites").fetchone()[0] == 5
    finally:
        con.close()


def test_a_compacting_publish_keeps_the_storage_version(heat_sandbox, warehouse, monkeypatch):
    monkeypatch.setenv("DESTINATION__DUCKDB__COMPACT", "always")
    wh = DuckDBWarehouse(warehouse)
    sync("heat", wh)
    assert wh.last_published.compacted
    assert file_version(working_path(warehouse)) == file_version(warehouse) == "v1.4.0"
    assert_every_view_answers(warehouse, ["heat"], readers=("here", "1.4"), history=False)


# --------------------------------------------------------------------------- the lake
def lake_views(path: Path) -> list[str]:
    con = duckdb.connect(str(path), read_only=True)
    try:
        return [
            f"analytics.{v}"
            for (v,) in con.execute(
                "select view_name from duckdb_views() where schema_name = 'analytics' order by 1"
            ).fetchall()
        ]
    finally:
        con.close()


def test_the_lakes_views_file_opens_in_duckdb_1_4_and_the_cli(
    heat_sandbox, filesystem_warehouse, monkeypatch
):
    sync("heat", filesystem_warehouse)
    views_file = filesystem_warehouse.views_file
    assert views_file.name == "_views.duckdb"
    assert file_version(views_file) == "v1.4.0"
    views = lake_views(views_file)
    assert set(declared_views("heat")) <= set(views)
    counts = counts_here(views_file, views)
    assert counts["analytics.heat_sites"] > 0
    assert counts_duckdb14(views_file, views) == counts
    assert counts_cli(views_file, views) == counts


def test_a_lake_views_file_in_duckdb_2_format_is_rewritten(
    heat_sandbox, filesystem_warehouse, monkeypatch
):
    monkeypatch.setenv("DESTINATION__DUCKDB__STORAGE_VERSION", "latest")
    sync("heat", filesystem_warehouse)
    views_file = filesystem_warehouse.views_file
    assert file_version(views_file) == "v2.0.0"
    monkeypatch.delenv("DESTINATION__DUCKDB__STORAGE_VERSION")
    sync("heat", filesystem_warehouse)
    assert file_version(views_file) == "v1.4.0"
    views = lake_views(views_file)
    assert set(declared_views("heat")) <= set(views)
    assert set(counts_duckdb14(views_file, views)) == set(views)
    assert not [p for p in views_file.parent.iterdir() if p.name.endswith(".tmp")]


def test_readers_from_pypi_are_really_the_versions_named(tmp_path: Path):
    """The reader environments are what the tests say they are (a 2.0 reader would pass every
    check above)."""
    python = reader_python("duckdb14", "duckdb==1.4.*")
    version = run_reader(python, "import duckdb; print(duckdb.__version__)").stdout.strip()
    assert version.startswith("1.4.")
    cli_binary = reader_python("duckdb-cli", "duckdb-cli==1.5.*").with_name("duckdb")
    done = subprocess.run([str(cli_binary), "--version"], capture_output=True, text=True)
    assert done.stdout.startswith("v1.5."), done.stdout
