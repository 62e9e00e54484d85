"""``solarsync poll tesla`` as a process stopped by SIGTERM: every snapshot taken is loaded."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import duckdb

from tests.sources.tesla.conftest import PASSWORD

REPO = Path(__file__).resolve().parents[3]


def test_sigterm_loads_every_poll_taken(gateway, isolated_dlt):
    env = {**os.environ, "SOURCES__TESLA__HOST": gateway.host, "SOURCES__TESLA__PASSWORD":
           PASSWORD, "SOURCES__TESLA__NAME": "home"}  # fmt: skip
    proc = subprocess.Popen(
        [sys.executable, "-m", "pipelines", "--no-progress", "poll", "tesla", "--every", "0.2s",
         "--batch", "1h"],
        cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while gateway.requests_to("/api/meters/aggregates") < 3 and time.monotonic() < deadline:
            time.sleep(0.05)  # waiting for the process to start polling, not a timing assertion
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err[-3000:]
    polls = gateway.requests_to("/api/meters/aggregates")
    assert polls >= 3 and gateway.logins == 1
    con = duckdb.connect(str(isolated_dlt / "warehouse.duckdb"), read_only=True)
    try:
        loaded = con.execute(
            "select count(distinct polled_at), count(*) from tesla.meter_readings"
        ).fetchone()
    finally:
        con.close()
    assert loaded == (polls, polls * 4)  # nothing lost between the last batch and SIGTERM
