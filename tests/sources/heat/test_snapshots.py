"""Snapshots that are not loaded one run at a time: several polls extracted before one load
(``solarsync poll``), a package left by an interrupted run, a run killed mid-way."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import dlt

from pipelines.cli import main
from pipelines.destinations import as_warehouse
from pipelines.sync import make_pipeline
from sources.heat import heat
from tests.sources.heat.conftest import active_entries, rows, snapshots, truth_entries, ts

LOADER_FILE_FORMAT = "parquet"
REPO = Path(__file__).resolve().parents[3]


def validity(warehouse: Path, site: str) -> list[tuple]:
    found = rows(
        warehouse,
        "select asset, type, start_at, value, _dlt_valid_from as f, _dlt_valid_to as t "
        "from heat.schedule_entries where site_id = ? order by f, asset, type, start_at",
        site,
    )
    return [tuple(r.values()) for r in found]


def test_polls_extracted_before_one_load_keep_their_own_snapshot_instants(heat_sandbox, warehouse):
    """Each package carries its snapshot instant; dlt's scd2 boundary is the package's
    creation time, which is that same instant, so batching polls changes nothing."""
    sb = heat_sandbox
    a = sb.site_ids[0]
    first_schedules = sb.truth()[a]["schedules"]
    pipeline = make_pipeline("heat", warehouse)
    pipeline.extract(heat(), loader_file_format=LOADER_FILE_FORMAT)
    sb.set_schedule(
        a,
        "grid",
        "upperLimitkW",
        [{"startAt": "2026-06-01T08:00:00Z", "endAt": "2026-06-01T10:00:00Z", "value": 11}],
    )
    pipeline.extract(heat(), loader_file_format=LOADER_FILE_FORMAT)
    sb.clear_schedules(a)
    pipeline.extract(heat(), loader_file_format=LOADER_FILE_FORMAT)
    pipeline.normalize()
    pipeline.load().raise_on_failed_jobs()
    as_warehouse(warehouse).publish(
        pipeline, "heat", views="heat.sql"
    )  # what run and poll do after a load

    s1, s2, s3 = snapshots(warehouse)
    assert s1 < s2 < s3
    mine = validity(warehouse, a)
    start = ts("2026-06-01T08:00:00Z")
    assert [v for v in mine if v[4] != s1] == [("grid", "upperLimitkW", start, 11.0, s2, s3)]
    # the first snapshot's grid limits were replaced at s2, everything else cleared at s3
    assert {(v[1], v[5]) for v in mine if v[4] == s1} == {
        (s["type"], s2 if s["type"] == "upperLimitkW" and s["asset"] == "grid" else s3)
        for s in first_schedules
        if s["entries"]
    }
    assert not [e for e in active_entries(warehouse) if e[0] == a]
    others = {sid: s for sid, s in sb.truth().items() if sid != a}
    assert {e for e in active_entries(warehouse)} == truth_entries(others)


def test_a_package_left_by_an_interrupted_run_is_loaded_first(heat_sandbox, warehouse):
    sb = heat_sandbox
    a = sb.site_ids[0]
    pipeline = make_pipeline("heat", warehouse)
    pipeline.extract(heat(), loader_file_format=LOADER_FILE_FORMAT)  # killed before normalize
    pipeline.normalize()  # ... or before load: both leave a pending package
    sb.clear_schedule(a, "grid", "upperLimitkW")
    assert main(["--no-progress", "run", "heat"]) == 0
    s1, s2 = snapshots(warehouse)
    assert {e for e in active_entries(warehouse)} == truth_entries(sb.truth())
    retired = [v for v in validity(warehouse, a) if v[5] is not None]
    assert retired and {(v[1], v[4], v[5]) for v in retired} == {("upperLimitkW", s1, s2)}


def test_sigkill_mid_run_then_rerun(heat_sandbox, warehouse):
    sb = heat_sandbox
    assert main(["--no-progress", "run", "heat"]) == 0
    for sid in sb.site_ids[:2]:
        sb.clear_schedules(sid)
    sb.slow(0.2)
    sb.clear_requests()
    proc = subprocess.Popen(
        [sys.executable, "-m", "pipelines", "--no-progress", "run", "heat"],
        cwd=REPO,
        env=dict(os.environ, SOURCES__HEAT__CONCURRENCY="1"),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 30
    while sb.count_requests("detail") < 2 and proc.poll() is None:
        assert time.monotonic() < deadline
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)  # mid-way through the detail calls
    proc.wait()
    assert len(snapshots(warehouse)) == 1  # nothing of the killed run was loaded
    sb.slow(0)
    assert main(["--no-progress", "run", "heat"]) == 0
    assert len(snapshots(warehouse)) == 2
    assert {e for e in active_entries(warehouse)} == truth_entries(sb.truth())
    state = dlt.attach("solarsync_heat").state["sources"]["heat"]["resources"]
    assert state["schedule_entries"]["last_sync"]["rows"] == len(truth_entries(sb.truth()))
