"""``solarsync poll solarassistant``: repeated polls loaded in batches, a clean stop on SIGTERM,
and no API token, site token or site key anywhere (output at debug level, warehouse, dlt's
pipeline directory)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from pipelines.cli import main
from tests.pipelines.test_secrets import find_in_tree, find_in_warehouse
from tests.sources.solarassistant.conftest import SA_TOKEN
from tests.sources.solarassistant.warehouse_check import (
    assert_cloud_tables_equal,
    assert_latest_metrics_equal,
    rows,
)

REPO = Path(__file__).resolve().parents[3]


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pipelines", "--no-progress", *args],
        cwd=REPO,
        env=dict(os.environ),
        capture_output=True,
        text=True,
        timeout=120,
    )


def polls_by_instant(warehouse: Path) -> list[dict]:
    return rows(
        warehouse,
        "select polled_at, count(*) n, count(distinct _dlt_load_id) loads "
        "from solarassistant.metric_polls group by 1 order by 1",
    )


def test_poll_loop_loads_batches_and_reads_the_cloud_tables_once(sa_sandbox, warehouse, capsys):
    code = main(
        ["--no-progress", "poll", "solarassistant", "--every", "1s", "--for", "8s", "--batch", "2s"]
    )
    assert code == 0, capsys.readouterr()
    polls = polls_by_instant(warehouse)
    n_sites = len(sa_sandbox.sites)
    assert len(polls) >= 3 and {p["n"] for p in polls} == {n_sites}
    loads = rows(warehouse, "select count(*) n from solarassistant._dlt_loads where status = 0")
    assert 2 <= loads[0]["n"] < len(polls) + 1  # batches, not one load per poll
    # the cloud tables once (first poll), the site list for every poll, one token per site
    assert sa_sandbox.count("cloud", r"^/api/v1/sites/\d+$") == n_sites
    assert sa_sandbox.count("cloud", r"^/api/v1/sites$") == len(polls)
    assert sa_sandbox.authorize_calls == {s.id: 1 for s in sa_sandbox.sites}
    metric_rows = rows(
        warehouse, "select polled_at, count(*) n from solarassistant.metrics group by 1"
    )
    per_poll = sum(len(sa_sandbox.metrics_truth(s.id)) for s in sa_sandbox.sites[:-1])
    assert {r["n"] for r in metric_rows} == {per_poll} and len(metric_rows) == len(polls)
    assert_cloud_tables_equal(sa_sandbox, warehouse)
    assert_latest_metrics_equal(sa_sandbox, warehouse)


def test_sigterm_stops_cleanly_and_loads_every_poll(sa_sandbox, warehouse):
    proc = subprocess.Popen(
        [sys.executable, "-m", "pipelines", "--no-progress", "poll", "solarassistant"]
        + ["--every", "0.3s", "--batch", "1h"],
        cwd=REPO,
        env=dict(os.environ),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while sa_sandbox.count("cloud", r"^/api/v1/sites$") < 3 and time.monotonic() < deadline:
            assert proc.poll() is None, proc.communicate()
            time.sleep(0.05)
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    assert "SIGTERM" in err
    polls = polls_by_instant(warehouse)
    # every poll that was taken is loaded, in the one load of the stop (batch is an hour)
    assert len(polls) == sa_sandbox.count("cloud", r"^/api/v1/sites$") >= 3
    assert {p["loads"] for p in polls} == {1}  # each poll is one package, loaded once
    assert "1 load(s), stopped by signal" in out


def test_secrets_absent_from_output_warehouse_and_state(sa_sandbox, isolated_dlt):
    outputs = [cli("-v", "run", "solarassistant")]
    sa_sandbox.expire_tokens()  # a new process authorizes anyway; this one renews on 401 too
    outputs.append(
        cli("-v", "poll", "solarassistant", "--every", "0.5s", "--for", "1.5s", "--batch", "1s")
    )
    sa_sandbox.fail("proxy", "/metrics$", 401, times=4)  # rejected tokens reach error text
    outputs.append(cli("-v", "run", "solarassistant"))
    outputs.append(cli("-v", "check", "solarassistant"))
    assert [o.returncode for o in outputs] == [0, 0, 0, 0], [o.stderr[-2000:] for o in outputs]
    assert "Making GET request" in outputs[0].stderr  # debug logging shows every request...
    secrets = [SA_TOKEN, *sa_sandbox.site_tokens(), *sa_sandbox.site_keys()]
    assert len(sa_sandbox.site_tokens()) >= 3 * len(sa_sandbox.sites)
    for out in outputs:
        for secret in secrets:
            assert secret not in out.stdout and secret not in out.stderr  # ...redacted
    assert find_in_warehouse(isolated_dlt / "warehouse.duckdb", secrets) == []
    assert find_in_tree(isolated_dlt / "dlt", secrets) == []
    assert find_in_tree(isolated_dlt, secrets) == []
