"""solarsync as Dagster assets, materialized in-process against the SolarKnock sandbox, into a
shared destination (a real Postgres; the Delta lake where it is available).

Every materialization runs with an EMPTY dlt data dir (a fresh worker): the checkpoints must
come back from the shared destination, so the second interval reads only what changed.
"""

from __future__ import annotations

import itertools
import logging
from pathlib import Path

import pytest

dg = pytest.importorskip("dagster", reason="the dagster extra is not installed")

from pipelines.dagster_defs import solarsync_definitions, source_assets  # noqa: E402
from tests.conftest import SK_KEY  # noqa: E402
from tests.sources.solarknock.warehouse_check import assert_equal_to_truth  # noqa: E402

NO_WAIT = dg.RetryPolicy(max_retries=2, delay=0)
_workers = itertools.count(1)


@pytest.fixture(autouse=True)
def _project_dir(monkeypatch: pytest.MonkeyPatch) -> None:
    """The assets set DLT_PROJECT_DIR when it is unset: undo that after each test."""
    monkeypatch.setenv("DLT_PROJECT_DIR", str(Path(__file__).resolve().parents[2]))


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


def materialize(asset, monkeypatch, tmp_path: Path):
    """One schedule interval on a worker that has never run solarsync (no local dlt state)."""
    monkeypatch.setenv("DLT_DATA_DIR", str(tmp_path / f"worker{next(_workers)}"))
    return dg.materialize([asset], instance=dg.DagsterInstance.ephemeral(), raise_on_error=False)


def test_two_intervals_on_fresh_workers_read_only_what_changed(
    sk_sandbox, shared_warehouse, tmp_path, monkeypatch, caplog
):
    caplog.set_level(logging.DEBUG)
    warehouse = shared_warehouse
    asset = source_assets("solarknock", retry_policy=NO_WAIT)

    first = materialize(asset, monkeypatch, tmp_path)
    assert first.success
    assert_equal(sk_sandbox, warehouse, tmp_path)
    knocks = first.asset_materializations_for_node("solarsync_solarknock")
    by_key = {m.asset_key.to_user_string(): m.metadata for m in knocks}
    assert set(by_key) >= {"solarknock/knocks", "solarknock/leads", "solarknock/org"}
    assert by_key["solarknock/knocks"]["rows_loaded"].value == len(sk_sandbox.truth("knocks"))
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
    metadata = {
        m.asset_key.to_user_string(): m.metadata
        for m in second.asset_materializations_for_node("solarsync_solarknock")
    }
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
    failures = [e for e in result.all_events if e.event_type_value == "STEP_RESTARTED"]
    assert len(failures) >= 1
    assert_equal(sk_sandbox, shared_warehouse, tmp_path)


def test_a_rejected_credential_fails_without_retries(sk_sandbox, tmp_path, monkeypatch):
    monkeypatch.setenv("SOURCES__SOLARKNOCK__API_KEY", "sk_WRONGKEY0000")
    asset = source_assets("solarknock", retry_policy=NO_WAIT)
    result = materialize(asset, monkeypatch, tmp_path)
    assert not result.success
    assert not [e for e in result.all_events if e.event_type_value == "STEP_RESTARTED"]
    assert sk_sandbox.count_requests(status=401) == 1
    failure = next(e for e in result.all_events if e.event_type_value == "STEP_FAILURE")
    assert "401" in str(failure) or "rejected" in str(failure).lower()
    assert "WRONGKEY0000" not in "\n".join(str(e) for e in result.all_events)


def test_definitions_have_a_job_and_schedule_per_configured_source(sk_sandbox):
    defs = solarsync_definitions()
    job = defs.get_job_def("solarsync_solarknock_job")
    assert job is not None
    schedule = defs.get_schedule_def("solarsync_solarknock_schedule")
    assert schedule.cron_schedule == "15 2 * * *"
    # only configured sources: the sandbox configures SolarKnock alone
    assert [s.name for s in defs.schedules] == ["solarsync_solarknock_schedule"]


def test_a_worker_killed_mid_run_is_retried_on_another_worker(
    sk_sandbox, shared_warehouse, tmp_path, monkeypatch
):
    """kill -9 of the worker in the middle of a run; the retry runs on a worker that never saw
    the killed one's files, and the warehouse ends equal to the source."""
    import os
    import signal
    import subprocess
    import sys
    import time

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
