"""solarsync as Dagster assets.

- In-process materializations against the sandboxes: into a shared destination (a real
  Postgres; the Delta lake on S3) with an EMPTY dlt data dir per materialization (a fresh
  worker: the checkpoints must come back from the destination), and into DuckDB for the
  asset keys of all four sources (one per table a real load produced, no more, no less).
- What a code server without credentials defines, what it says with no source at all, the
  schedules' time zone, where the warehouse lands whatever directory Dagster runs in.
- As a user runs it: ``dagster dev`` answering on loopback with every asset listed, ``dagster
  job execute`` from a project directory following docs/dagster.md, and the ``[dagster]`` extra
  resolving in a fresh venv.
"""

from __future__ import annotations

import itertools
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
import venv
from pathlib import Path

import duckdb
import pytest

dg = pytest.importorskip("dagster", reason="the dagster extra is not installed")

from pipelines import registry  # noqa: E402
from pipelines.dagster_defs import (  # noqa: E402
    dagster_sources,
    defs,
    machine_timezone,
    schedule_timezone,
    solarsync_definitions,
    source_assets,
)
from sources.common import ConfigurationError  # noqa: E402
from tests.conftest import SK_KEY  # noqa: E402
from tests.sources.solarknock.warehouse_check import assert_equal_to_truth  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
DAGSTER = Path(sys.executable).with_name("dagster")
NO_WAIT = dg.RetryPolicy(max_retries=2, delay=0)
_workers = itertools.count(1)


@pytest.fixture(autouse=True)
def _project_dir(monkeypatch: pytest.MonkeyPatch):
    """The assets set DLT_PROJECT_DIR when it is unset (and make dlt read its TOML files from
    there): pin it to the repo, and after the test make dlt read the repo's files again."""
    monkeypatch.setenv("DLT_PROJECT_DIR", str(ROOT))
    monkeypatch.delenv("SOLARSYNC__DAGSTER_SOURCES", raising=False)
    monkeypatch.delenv("SOLARSYNC__DAGSTER_TIMEZONE", raising=False)
    yield
    from dlt.common.configuration.container import Container
    from dlt.common.configuration.specs.pluggable_run_context import PluggableRunContext

    os.environ["DLT_PROJECT_DIR"] = str(ROOT)
    Container()[PluggableRunContext].reload_providers()


#: destinations several workers can share
SHARED = ["postgres", "filesystem_s3"]


@pytest.fixture(params=SHARED)
def shared_warehouse(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch):
    """A fresh shared warehouse, configured for every worker through the environment."""
    warehouse = request.getfixturevalue(f"{request.param}_warehouse")
    monkeypatch.setenv("SOLARSYNC__DESTINATION", warehouse.kind)
    return warehouse


def assert_equal(sb, warehouse, tmp_path: Path) -> None:
    """The warehouse equals the sandbox (the lake read back with deltalake)."""
    from tests.readback import readable

    is_lake = warehouse.kind == "filesystem"
    assert_equal_to_truth(sb, readable(warehouse, tmp_path) if is_lake else warehouse)


def materialize(assets, monkeypatch, tmp_path: Path):
    """One schedule interval on a worker that has never run solarsync (no local dlt state)."""
    monkeypatch.setenv("DLT_DATA_DIR", str(tmp_path / f"worker{next(_workers)}"))
    assets = assets if isinstance(assets, list) else [assets]
    return dg.materialize(assets, instance=dg.DagsterInstance.ephemeral(), raise_on_error=False)


def materialized(result, node: str | None = None) -> dict[str, dict]:
    """``<source>/<table>`` -> metadata of each materialization of the run (or of ``node``)."""
    if node:
        events = result.asset_materializations_for_node(node)
    else:
        events = [
            e.event_specific_data.materialization
            for e in result.all_events
            if e.is_step_materialization
        ]
    return {m.asset_key.to_user_string(): m.metadata for m in events}


def restarts(result) -> list:
    return [e for e in result.all_events if e.event_type_value == "STEP_RESTARTED"]


def test_two_intervals_on_fresh_workers_read_only_what_changed(
    sk_sandbox, shared_warehouse, tmp_path, monkeypatch, caplog
):
    caplog.set_level(logging.DEBUG)
    warehouse = shared_warehouse
    asset = source_assets("solarknock", retry_policy=NO_WAIT)

    first = materialize(asset, monkeypatch, tmp_path)
    assert first.success
    assert_equal(sk_sandbox, warehouse, tmp_path)
    by_key = materialized(first, "solarsync_solarknock")
    assert set(by_key) == {f"solarknock/{t}" for t in registry.get("solarknock").loaded_tables()}
    assert by_key["solarknock/knocks"]["rows_loaded"].value == len(sk_sandbox.truth("knocks"))
    assert by_key["solarknock/lead_attachments"]["rows_loaded"].value > 0
    full_requests = len(sk_sandbox.requests)

    sk_sandbox.clear_requests()
    changed = sk_sandbox.update("knocks", n=7)
    second = materialize(asset, monkeypatch, tmp_path)
    assert second.success
    assert_equal(sk_sandbox, warehouse, tmp_path)
    # the checkpoint came back from the destination: knocks are read from it on, not from 0
    knock_reads = [r for r in sk_sandbox.requests if r.endpoint == "knocks"]
    assert knock_reads and all("since" in r.query for r in knock_reads)
    assert len(sk_sandbox.requests) < full_requests / 2
    metadata = materialized(second, "solarsync_solarknock")
    assert metadata["solarknock/knocks"]["updated"].value == len(changed)

    logged = caplog.text + "\n".join(str(e) for e in first.all_events + second.all_events)
    assert SK_KEY not in logged and SK_KEY.split("_", 1)[1] not in logged
    assert not (tmp_path / "warehouse.duckdb").exists()  # nothing went to a local file


def test_a_failed_attempt_is_retried_and_the_retry_leaves_the_warehouse_exact(
    sk_sandbox, shared_warehouse, tmp_path, monkeypatch
):
    asset = source_assets("solarknock", retry_policy=NO_WAIT)
    materialize(asset, monkeypatch, tmp_path)
    sk_sandbox.update("leads", n=5)
    sk_sandbox.insert("knocks", n=11)
    # the first attempt dies mid-run (5xx storm beyond the client's retries, after pages of
    # knocks were read); Dagster retries the step and the retry finishes the job
    sk_sandbox.fail_next(5, status=503, endpoint="leads")  # one attempt: 5 tries of a page
    result = materialize(asset, monkeypatch, tmp_path)
    assert result.success
    assert len(restarts(result)) >= 1
    assert_equal(sk_sandbox, shared_warehouse, tmp_path)


def test_a_rejected_credential_fails_without_retries(sk_sandbox, tmp_path, monkeypatch):
    monkeypatch.setenv("SOURCES__SOLARKNOCK__API_KEY", "sk_WRONGKEY0000")
    asset = source_assets("solarknock", retry_policy=NO_WAIT)
    result = materialize(asset, monkeypatch, tmp_path)
    assert not result.success
    assert not restarts(result)
    assert sk_sandbox.count_requests(status=401) == 1
    failure = next(e for e in result.all_events if e.event_type_value == "STEP_FAILURE")
    assert "401" in str(failure) or "rejected" in str(failure).lower()
    assert "WRONGKEY0000" not in "\n".join(str(e) for e in result.all_events)


def test_definitions_have_a_job_and_schedule_per_configured_source(sk_sandbox):
    defs = solarsync_definitions()
    job = defs.resolve_job_def("solarsync_solarknock_job")
    assert job is not None
    schedule = defs.resolve_schedule_def("solarsync_solarknock_schedule")
    assert schedule.cron_schedule == "15 2 * * *"
    # only configured sources: the sandbox configures SolarKnock alone
    assert [s.name for s in defs.schedules] == ["solarsync_solarknock_schedule"]


def test_a_worker_killed_mid_run_is_retried_on_another_worker(
    sk_sandbox, shared_warehouse, tmp_path, monkeypatch
):
    """kill -9 of the worker in the middle of a run; the retry runs on a worker that never saw
    the killed one's files, and the warehouse ends equal to the source."""
    asset = source_assets("solarknock", retry_policy=NO_WAIT)
    assert materialize(asset, monkeypatch, tmp_path).success
    sk_sandbox.update("knocks", n=150)
    sk_sandbox.soft_delete("leads", n=4)
    sk_sandbox.slow(0.05)
    sk_sandbox.clear_requests()
    env = dict(os.environ, DLT_DATA_DIR=str(tmp_path / "killed-worker"))
    proc = subprocess.Popen(
        [sys.executable, "-m", "pipelines", "run", "solarknock"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 60
    while sk_sandbox.count_requests(endpoint="knocks") < 2 and time.monotonic() < deadline:
        time.sleep(0.02)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert sk_sandbox.count_requests(endpoint="knocks") >= 2, "the killed run never got going"
    sk_sandbox.slow(0)

    retry = materialize(asset, monkeypatch, tmp_path)
    assert retry.success
    assert_equal(sk_sandbox, shared_warehouse, tmp_path)


# -- every table a source loads has an asset key ------------------------------------------------


@pytest.fixture
def four_sandboxes(sk_sandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """The four sandboxes; Tesla as two gateways, so that every Tesla table gets rows: firmware
    21.44 (battery state of energy, no grid faults) and 1.50 (grid faults, no soe endpoint)."""
    from sandbox.tesla import TeslaGatewaySandbox
    from tests.sandboxes import heat_sa_tesla

    password = "Dagster-Tesla-PW"
    with heat_sa_tesla(
        tmp_path,
        monkeypatch,
        seed=5,
        heat_key="agk_dg.ags_DAGSTERSECRET",
        sa_token="sa_DAGSTERTOKEN",
        tesla_password=password,
        heat_sites=2,
        sa_sites=2,
        org_users=3,
    ) as started:
        cabin = TeslaGatewaySandbox(tmp_path / "gw-cabin", variant="1.50", password=password)
        cabin.start()
        try:
            gateways = [
                {"name": "home", "host": started["tesla"].host, "password": password},
                {"name": "cabin", "host": cabin.host, "password": password},
            ]
            monkeypatch.delenv("SOURCES__TESLA__HOST")
            monkeypatch.delenv("SOURCES__TESLA__PASSWORD")
            monkeypatch.setenv("SOURCES__TESLA__GATEWAYS", json.dumps(gateways))
            yield {"solarknock": sk_sandbox, **started, "tesla_cabin": cabin}
        finally:
            cabin.stop()


def loaded_tables(warehouse: Path) -> dict[str, int]:
    """``<dataset>/<table>`` -> rows of every table the sources' loads created (dlt's own
    tables, the run history and the analytics views aside)."""
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        names = con.execute(
            "select table_schema, table_name from information_schema.tables "
            "where table_type = 'BASE TABLE' and table_schema in (select unnest(?)) "
            "and not starts_with(table_name, '_dlt')",
            [list(registry.SOURCES)],
        ).fetchall()
        return {
            f"{schema}/{table}": con.execute(
                f'select count(*) from "{schema}"."{table}"'
            ).fetchone()[0]
            for schema, table in names
        }
    finally:
        con.close()


def test_asset_keys_are_exactly_the_tables_a_materialization_loads(
    four_sandboxes, tmp_path, monkeypatch
):
    """All four sources materialized against their sandboxes (SolarKnock with attachments on,
    as shipped): one asset key per table the load created, no more, no less, and every key
    materialized with its rows as metadata."""
    monkeypatch.setenv("SOLARSYNC__DAGSTER_SOURCES", "all")
    definitions = solarsync_definitions(retry_policy=NO_WAIT)
    keys = {k.to_user_string() for k in definitions.resolve_asset_graph().get_all_asset_keys()}

    result = materialize(list(definitions.assets), monkeypatch, tmp_path)
    assert result.success
    loaded = loaded_tables(tmp_path / "warehouse.duckdb")
    assert {k.split("/")[0] for k in loaded} == set(registry.SOURCES)
    assert keys == set(loaded)
    metadata = materialized(result)
    assert set(metadata) == keys
    leads = four_sandboxes["solarknock"].truth("leads")
    files = sum(len(lead.get("attachments") or []) for lead in leads)
    assert files > 0
    assert loaded["solarknock/lead_attachments"] == files
    assert metadata["solarknock/lead_attachments"]["rows_loaded"].value == files
    # a first load into an empty warehouse: what each materialization reports is in the table
    for key, rows in loaded.items():
        assert metadata[key]["rows_loaded"].value >= rows, key


# -- sources listed explicitly, whether or not this process has their credentials -------------


def test_a_code_server_without_credentials_defines_every_listed_source(tmp_path, monkeypatch):
    """Secrets only in run workers: the listed sources' assets exist; a run without the
    credential fails at once (no retry) naming the setting."""
    monkeypatch.setenv("SOLARSYNC__DAGSTER_SOURCES", "solarknock, heat,tesla,solarassistant")
    definitions = solarsync_definitions()
    keys = {k.to_user_string() for k in definitions.resolve_asset_graph().get_all_asset_keys()}
    assert keys == {
        f"{spec.name}/{table}"
        for spec in registry.SOURCES.values()
        for table in spec.loaded_tables()
    }
    assert "solarknock/lead_attachments" in keys
    assert sorted(j.name for j in definitions.jobs) == sorted(
        f"solarsync_{name}_job" for name in registry.SOURCES
    )
    assert len(list(definitions.schedules)) == 4

    asset = source_assets("solarknock", retry_policy=NO_WAIT)
    result = materialize(asset, monkeypatch, tmp_path)
    assert not result.success
    assert not restarts(result)
    failure = next(e for e in result.all_events if e.event_type_value == "STEP_FAILURE")
    assert "SOURCES__SOLARKNOCK__API_KEY" in str(failure)
    assert "api_key" in str(failure)


def test_no_source_at_all_fails_loading_and_names_the_setting(caplog):
    caplog.set_level(logging.WARNING)
    with pytest.raises(ConfigurationError) as raised:
        defs()  # the module's own definitions, as `dagster dev` loads them
    assert "SOLARSYNC__DAGSTER_SOURCES" in str(raised.value)
    assert "dagster_sources" in str(raised.value)
    assert "SOLARSYNC__DAGSTER_SOURCES" in caplog.text


@pytest.mark.parametrize(
    ("value", "names"),
    [
        ("solarknock", ["solarknock"]),
        ("heat, tesla", ["heat", "tesla"]),
        ('["tesla", "solarknock"]', ["tesla", "solarknock"]),
        ("all", list(registry.SOURCES)),
    ],
)
def test_dagster_sources_setting(monkeypatch, value, names):
    monkeypatch.setenv("SOLARSYNC__DAGSTER_SOURCES", value)
    assert dagster_sources() == (names, "[solarsync] dagster_sources (SOLARSYNC__DAGSTER_SOURCES)")


def test_dagster_sources_from_the_project_config(tmp_path, monkeypatch):
    project = tmp_path / "project"
    (project / ".dlt").mkdir(parents=True)
    (project / ".dlt" / "config.toml").write_text('[solarsync]\ndagster_sources = ["heat"]\n')
    monkeypatch.chdir(project)
    monkeypatch.delenv("DLT_PROJECT_DIR")  # the directory Dagster starts in has a .dlt/
    keys = solarsync_definitions().resolve_asset_graph().get_all_asset_keys()
    assert {key.path[0] for key in keys} == {"heat"}


def test_an_unknown_source_is_an_error_naming_it(monkeypatch):
    monkeypatch.setenv("SOLARSYNC__DAGSTER_SOURCES", "solarknock,sollarassistant")
    with pytest.raises(ConfigurationError, match="sollarassistant"):
        solarsync_definitions()
    with pytest.raises(ConfigurationError, match="nope"):
        solarsync_definitions(sources=["nope"])


# -- schedules' time zone ----------------------------------------------------------------------


def test_schedules_run_in_the_machine_zone_unless_configured(monkeypatch):
    monkeypatch.setenv("SOLARSYNC__DAGSTER_SOURCES", "solarknock")
    monkeypatch.setenv("TZ", "Asia/Kolkata")
    schedule = solarsync_definitions().resolve_schedule_def("solarsync_solarknock_schedule")
    assert (schedule.cron_schedule, schedule.execution_timezone) == ("15 2 * * *", "Asia/Kolkata")

    monkeypatch.setenv("SOLARSYNC__DAGSTER_TIMEZONE", "UTC")
    schedule = solarsync_definitions().resolve_schedule_def("solarsync_solarknock_schedule")
    assert schedule.execution_timezone == "UTC"
    assert schedule_timezone("Europe/Berlin") == "Europe/Berlin"

    monkeypatch.setenv("SOLARSYNC__DAGSTER_TIMEZONE", "Mars/Olympus")
    with pytest.raises(ConfigurationError, match="SOLARSYNC__DAGSTER_TIMEZONE"):
        solarsync_definitions()


def test_machine_timezone_is_an_iana_name(monkeypatch):
    from zoneinfo import ZoneInfo

    monkeypatch.delenv("TZ", raising=False)
    ZoneInfo(machine_timezone())  # whatever this machine says, a name Dagster accepts
    monkeypatch.setenv("TZ", ":America/Denver")
    assert machine_timezone() == "America/Denver"


# -- where the warehouse lands -----------------------------------------------------------------

#: None: the default as shipped (warehouse/solarsync.duckdb, named like the history schema)
WAREHOUSE_SETTINGS = [pytest.param(None, id="default"), "warehouse/bi.duckdb"]


def make_project(
    directory: Path,
    duckdb_file: str | None,
    *,
    set_lines: dict[str, str] | None = None,
    config: str = "",
    secrets: str = "",
) -> Path:
    """A project directory as docs/dagster.md sets one up: solarsync's ``.dlt/config.toml`` with
    the warehouse file changed to ``duckdb_file`` (None: as shipped), the lines ``set_lines``
    replaced, ``config`` appended, and ``.dlt/secrets.toml``. Returns where the warehouse must
    land."""
    (directory / ".dlt").mkdir(parents=True)
    text = (ROOT / ".dlt" / "config.toml").read_text()
    changes = dict(set_lines or {})
    if duckdb_file:
        changes['credentials = "warehouse/solarsync.duckdb"'] = f'credentials = "{duckdb_file}"'
    for shipped, wanted in changes.items():
        assert shipped in text, shipped
        text = text.replace(shipped, wanted)
    (directory / ".dlt" / "config.toml").write_text(text + "\n" + config)
    (directory / ".dlt" / "secrets.toml").write_text(secrets)
    return directory / (duckdb_file or "warehouse/solarsync.duckdb")


SOLARKNOCK_URL = 'base_url = "https://app.solarknock.com/api/v1/reporting"'


def blob_root(warehouse: Path) -> Path:
    """Where the attachments of a warehouse file land by default (docs/sources/solarknock.md,
    "Attachments")."""
    base = warehouse.parent / "blobs"
    return (base if warehouse.stem == "solarsync" else base / warehouse.stem) / "solarknock"


@pytest.mark.parametrize("duckdb_file", WAREHOUSE_SETTINGS)
def test_the_warehouse_lands_in_the_project_dir_not_where_dagster_runs(
    sk_sandbox, tmp_path, monkeypatch, duckdb_file
):
    """A relative warehouse path (the default one included) resolves against the project
    directory (DLT_PROJECT_DIR here), whatever the worker's working directory; the
    attachments' blobs land next to the warehouse."""
    project, elsewhere = tmp_path / "project", tmp_path / "elsewhere"
    warehouse = make_project(project, duckdb_file)
    elsewhere.mkdir()
    monkeypatch.delenv("DESTINATION__DUCKDB__CREDENTIALS")  # the project's setting, as shipped
    monkeypatch.setenv("DLT_PROJECT_DIR", str(project))
    monkeypatch.chdir(elsewhere)

    result = materialize(source_assets("solarknock", retry_policy=NO_WAIT), monkeypatch, tmp_path)
    assert result.success
    assert_equal_to_truth(sk_sandbox, warehouse)
    assert any(blob_root(warehouse).rglob("*"))
    assert list(elsewhere.iterdir()) == []
    metadata = materialized(result)
    assert metadata["solarknock/knocks"]["warehouse"].value == str(warehouse)
    assert os.environ.get("DESTINATION__DUCKDB__CREDENTIALS") is None  # left as it was


# -- as a user runs it: dagster dev, dagster job execute, pip install '.[dagster]' --------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def dagster_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    """A user's shell: no solarsync or dlt settings from the test session, a DAGSTER_HOME of
    its own (telemetry off: nothing leaves loopback)."""
    home = tmp_path / "dagster_home"
    home.mkdir(exist_ok=True)
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    prefixes = ("SOURCES__", "DESTINATION__", "SOLARSYNC__", "DLT_PROJECT_DIR", "DAGSTER_")
    env = {k: v for k, v in os.environ.items() if not k.startswith(prefixes)}
    env |= {
        "DAGSTER_HOME": str(home),
        "DLT_DATA_DIR": str(tmp_path / "dlt"),
        "RUNTIME__DLTHUB_TELEMETRY": "false",
        **extra,
    }
    return env


def graphql(port: int, query: str) -> dict:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/graphql",
        data=json.dumps({"query": query}).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        answer = json.load(response)
    assert "errors" not in answer, answer
    return answer["data"]


WORKSPACE = """{ workspaceOrError { ... on Workspace { locationEntries { name
  locationOrLoadError { __typename ... on PythonError { message } } } } } }"""
ASSETS = "{ assetNodes { assetKey { path } } }"
SCHEDULES = """{ repositoriesOrError { ... on RepositoryConnection { nodes {
  schedules { name cronSchedule executionTimezone } } } } }"""


def test_dagster_dev_answers_on_loopback_with_every_asset(tmp_path):
    """`dagster dev` as the README and docs/dagster.md run it, from the project directory
    without arguments (the code location comes from pyproject.toml), in a code server that has
    no credentials."""
    port = free_port()
    env = dagster_env(tmp_path, SOLARSYNC__DAGSTER_SOURCES="all", TZ="Europe/Berlin")
    log = (tmp_path / "dagster-dev.log").open("w")
    proc = subprocess.Popen(
        [str(DAGSTER), "dev", "--host", "127.0.0.1", "--port", str(port)],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 180
        info = None
        while info is None:
            assert proc.poll() is None, (tmp_path / "dagster-dev.log").read_text()[-3000:]
            assert time.monotonic() < deadline, "dagster dev did not answer in 180 s"
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/server_info", timeout=5) as r:
                    info = json.load(r)
            except OSError:
                time.sleep(0.5)
        assert info["dagster_webserver_version"] == info["dagster_version"]
        # the code location loads in the background: wait for it, then read what it holds
        while True:
            entries = graphql(port, WORKSPACE)["workspaceOrError"]["locationEntries"]
            loaded = [e["locationOrLoadError"] for e in entries if e["locationOrLoadError"]]
            if loaded:
                break
            assert time.monotonic() < deadline, "the code location did not load in 180 s"
            time.sleep(0.5)
        assert [e["name"] for e in entries] == ["solarsync"]
        assert loaded[0]["__typename"] == "RepositoryLocation", loaded[0]
        keys = {"/".join(n["assetKey"]["path"]) for n in graphql(port, ASSETS)["assetNodes"]}
        assert keys == {
            f"{spec.name}/{t}" for spec in registry.SOURCES.values() for t in spec.loaded_tables()
        }
        (repository,) = graphql(port, SCHEDULES)["repositoriesOrError"]["nodes"]
        schedules = {s["name"]: s for s in repository["schedules"]}
        nightly = schedules["solarsync_solarknock_schedule"]
        assert (nightly["cronSchedule"], nightly["executionTimezone"]) == (
            "15 2 * * *",
            "Europe/Berlin",
        )
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)  # dagster dev shuts its services down on it
            try:
                proc.wait(timeout=90)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        log.close()
    assert proc.returncode == 0, (tmp_path / "dagster-dev.log").read_text()[-3000:]
    # no process of the session left behind (code server, daemon, webserver): the code server
    # finishes its RPC calls first
    deadline = time.monotonic() + 90
    while group_alive(proc.pid) and time.monotonic() < deadline:
        time.sleep(0.5)
    if group_alive(proc.pid):
        os.killpg(proc.pid, signal.SIGKILL)
        pytest.fail("dagster dev left processes running 90 s after it exited")


def group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


def test_dagster_loads_the_code_location_only_with_a_source_list(tmp_path):
    """`dagster definitions validate` as Dagster loads the module, in a code server without
    credentials: with no source listed it fails naming the setting; listed, it loads."""
    command = [str(DAGSTER), "definitions", "validate", "-m", "pipelines.dagster_defs"]
    for sources, code in ((None, 1), ("all", 0)):
        extra = {"SOLARSYNC__DAGSTER_SOURCES": sources} if sources else {}
        done = subprocess.run(
            command,
            cwd=tmp_path,
            env=dagster_env(tmp_path, **extra),
            capture_output=True,
            text=True,
            timeout=300,
        )
        output = done.stdout + done.stderr
        assert done.returncode == code, output[-3000:]
        assert ("SOLARSYNC__DAGSTER_SOURCES" in output) == (sources is None), output[-3000:]


@pytest.mark.parametrize(
    ("where", "duckdb_file"),
    [
        pytest.param("cwd", None, id="cwd"),
        pytest.param("DLT_PROJECT_DIR", "warehouse/bi.duckdb", id="DLT_PROJECT_DIR"),
    ],
)
def test_dagster_job_execute_as_a_new_user(sk_sandbox, tmp_path, where, duckdb_file):
    """The steps of docs/dagster.md: settings and secrets in a project directory's .dlt/, then
    `dagster job execute -m pipelines.dagster_defs -j solarsync_solarknock_job`, run in that
    directory, or elsewhere with DLT_PROJECT_DIR naming it. The warehouse lands under the
    project directory, equal to the source, with the attachments beside it."""
    project = tmp_path / "myproject"
    warehouse = make_project(
        project,
        duckdb_file,
        set_lines={SOLARKNOCK_URL: f'base_url = "{sk_sandbox.base_url}"'},
        config='[solarsync]\ndagster_sources = ["solarknock"]\n',
        secrets=f'[sources.solarknock]\napi_key = "{SK_KEY}"\n',
    )
    if where == "cwd":
        cwd, extra = project, {}
    else:
        cwd, extra = tmp_path / "elsewhere", {"DLT_PROJECT_DIR": str(project)}
        cwd.mkdir()
    done = subprocess.run(
        [str(DAGSTER), "job", "execute", "-m", "pipelines.dagster_defs"]
        + ["-j", "solarsync_solarknock_job"],
        cwd=cwd,
        env=dagster_env(tmp_path, **extra),
        capture_output=True,
        text=True,
        timeout=300,
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, output[-4000:]
    assert "RUN_SUCCESS" in output
    assert SK_KEY not in output
    assert_equal_to_truth(sk_sandbox, warehouse)
    assert any(blob_root(warehouse).rglob("*"))
    if where != "cwd":
        assert list(cwd.iterdir()) == []
    tables = loaded_tables(warehouse)
    assert set(tables) == {f"solarknock/{t}" for t in registry.get("solarknock").loaded_tables()}


def test_the_dagster_extra_resolves_in_a_fresh_venv(tmp_path):
    """pip resolves `pip install '.[dagster]'` outside the repo's venv to one release of
    dagster, dagster-graphql and dagster-webserver (released in lockstep)."""
    home = tmp_path / "venv"
    venv.create(home, with_pip=True)
    report = tmp_path / "report.json"
    done = subprocess.run(
        [str(home / "bin" / "python"), "-m", "pip", "install", "--dry-run", "--quiet"]
        + ["--report", str(report), f"{ROOT}[dagster]"],
        capture_output=True,
        text=True,
        timeout=900,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    versions = {
        item["metadata"]["name"].lower(): item["metadata"]["version"]
        for item in json.loads(report.read_text())["install"]
    }
    assert "dagster-webserver" in versions, sorted(versions)
    assert versions["dagster"] == versions["dagster-webserver"] == versions["dagster-graphql"]
