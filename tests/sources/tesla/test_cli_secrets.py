"""``solarsync run/poll/check tesla`` as separate processes, at debug level: logins stay rare
across processes, and the password and session tokens never reach logs, the warehouse or dlt's
files. The session store (owner-only) is the one place a token may be."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

from tests.pipelines.test_secrets import find_in_tree, find_in_warehouse
from tests.sources.tesla.conftest import PASSWORD, store_files

REPO = Path(__file__).resolve().parents[3]


def cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pipelines", "--no-progress", "-v", *args],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip


def test_separate_processes_log_in_once_and_leak_nothing(gateway, isolated_dlt):
    env = {**os.environ, "SOURCES__TESLA__HOST": gateway.host, "SOURCES__TESLA__PASSWORD":
           PASSWORD, "SOURCES__TESLA__NAME": "home"}  # fmt: skip
    outputs = [
        cli("run", "tesla", env=env),
        cli("run", "tesla", env=env),
        cli("poll", "tesla", "--every", "0.2s", "--for", "0.5s", "--batch", "10s", env=env),
        cli("check", "tesla", env=env),
    ]
    (store,) = store_files(isolated_dlt)
    assert stat.S_IMODE(store.stat().st_mode) == 0o600
    assert gateway.issued[0] in store.read_text()  # the session, kept for the next process
    hits = find_in_tree(isolated_dlt, gateway.issued)
    assert hits and all(hit.startswith(f"{store}:") for hit in hits)  # and nowhere else
    gateway.expire_sessions()  # the next run must log in again, with a wrong password
    wrong = cli("run", "tesla", env={**env, "SOURCES__TESLA__PASSWORD": "Wrong-Pass-99"})
    assert [o.returncode for o in outputs] == [0, 0, 0, 0], [o.stderr[-2000:] for o in outputs]
    assert wrong.returncode != 0 and "refused the login" in wrong.stdout
    assert gateway.logins == 1  # four processes, one login
    assert "recorded session reused" in outputs[3].stdout
    assert "Making POST request" in outputs[0].stderr or "logged in" in outputs[0].stderr

    secrets = [PASSWORD, *gateway.issued]
    for out in [*outputs, wrong]:
        for secret in [*secrets, "Wrong-Pass-99"]:
            assert secret not in out.stdout and secret not in out.stderr
    warehouse = isolated_dlt / "warehouse.duckdb"
    assert find_in_warehouse(warehouse, secrets) == []
    assert find_in_tree(isolated_dlt, [PASSWORD, "Wrong-Pass-99"]) == []
    # a refused login forgets the session: no token is left anywhere
    assert find_in_tree(isolated_dlt, gateway.issued) == []


def test_gateways_list_passwords_stay_out_of_dlt_files(
    make_gateway, run, isolated_dlt, monkeypatch
):
    """``gateways`` entries carry passwords: dlt must treat the setting as a secret, or it
    records the resolved value (passwords included) in the pipeline's trace.pickle."""
    import json

    first, second = make_gateway(configure=False), make_gateway(configure=False)
    for name in ("SOURCES__TESLA__HOST", "SOURCES__TESLA__PASSWORD", "SOURCES__TESLA__NAME"):
        monkeypatch.delenv(name, raising=False)
    value = [
        {"name": "house", "host": first.host, "password": PASSWORD},
        {"name": "barn", "host": second.host, "password": PASSWORD},
    ]
    monkeypatch.setenv("SOURCES__TESLA__GATEWAYS", json.dumps(value))
    result = run()
    assert result.ok, result.error
    assert list((isolated_dlt / "dlt").rglob("trace.pickle"))  # the file that leaked before
    assert find_in_tree(isolated_dlt, [PASSWORD]) == []


def test_check_that_logs_in_at_debug_level_does_not_log_the_password(gateway, isolated_dlt):
    """``solarsync -v check tesla`` on a fresh machine logs in outside any pipeline run (no
    redaction on dlt's own log handler there): the login body must not be logged."""
    env = {**os.environ, "SOURCES__TESLA__HOST": gateway.host, "SOURCES__TESLA__PASSWORD":
           PASSWORD, "SOURCES__TESLA__NAME": "home"}  # fmt: skip
    checked = cli("check", "tesla", env=env)
    assert checked.returncode == 0, checked.stdout + checked.stderr[-2000:]
    assert gateway.logins == 1 and "logged in" in checked.stdout + checked.stderr
    for secret in [PASSWORD, *gateway.issued]:
        assert secret not in checked.stdout and secret not in checked.stderr
