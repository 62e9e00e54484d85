"""Secrets never reach logs (even at debug level), error output, the warehouse, or dlt's
pipeline directory (state, trace, schemas, load packages)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import duckdb

from tests.conftest import SK_KEY

REPO = Path(__file__).resolve().parents[2]


def cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pipelines", "--no-progress", *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def secrets_of(sb) -> list[str]:
    (org,) = sb.truth("org")
    codes = [c for c in org.get("invite_codes", []) if c]
    assert codes, "the sandbox org should carry invite codes (they are keys)"
    return [SK_KEY, SK_KEY.removeprefix("sk_"), *codes]


def find_in_tree(root: Path, secrets: list[str]) -> list[str]:
    hits = []
    for path in root.rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            hits += [f"{path}: {s}" for s in secrets if s.encode() in data]
    return hits


def find_in_warehouse(path: Path, secrets: list[str]) -> list[str]:
    con = duckdb.connect(str(path), read_only=True)
    hits = []
    try:
        tables = con.execute(
            "select table_schema, table_name from information_schema.tables"
        ).fetchall()
        for schema, table in tables:
            for row in con.execute(f'select * from "{schema}"."{table}"').fetchall():
                text = repr(row)
                hits += [f"{schema}.{table}: {s}" for s in secrets if s in text]
    finally:
        con.close()
    return hits


def test_secrets_absent_everywhere(sk_sandbox, isolated_dlt):
    secrets = secrets_of(sk_sandbox)
    env = dict(os.environ)
    outputs = []
    # a failing run (5xx storm), a run with a wrong key, then good runs, all at debug level
    sk_sandbox.fail_next(30, status=500, endpoint="knocks")
    outputs.append(cli("-v", "run", "solarknock", env=env))
    sk_sandbox.reset_faults()
    outputs.append(
        cli(
            "-v",
            "run",
            "solarknock",
            env={**env, "SOURCES__SOLARKNOCK__API_KEY": "sk_" + secrets[2]},
        )
    )
    outputs.append(cli("-v", "run", "solarknock", env=env))
    sk_sandbox.update("leads", n=5)
    outputs.append(cli("-v", "run", "solarknock", env=env))
    outputs.append(cli("-v", "status", env=env))
    outputs.append(cli("-v", "check", env=env))
    assert [o.returncode for o in outputs] == [1, 1, 0, 0, 0, 0]
    assert "Making GET request" in outputs[2].stderr  # debug logging shows every request...
    for out in outputs:
        for secret in secrets:
            assert secret not in out.stdout and secret not in out.stderr  # ...redacted
    warehouse = isolated_dlt / "warehouse.duckdb"
    assert find_in_warehouse(warehouse, secrets) == []
    assert find_in_tree(isolated_dlt / "dlt", secrets) == []
    assert find_in_tree(isolated_dlt, [SK_KEY]) == []  # nothing anywhere, binary files included
