"""The key reaches no log (debug level included), output, table or dlt file; the sandbox's
admin API and standalone entry point work as documented."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.request
from pathlib import Path

import duckdb
import pytest

from tests.sources.heat.conftest import HEAT_KEY, HEAT_SECRET_PART

REPO = Path(__file__).resolve().parents[3]
WRONG_KEY = "agk_test01.ags_WRONGSECRET777"


def find_in_tree(root: Path, secrets: list[str]) -> list[str]:
    return [
        f"{path}: {s}"
        for path in root.rglob("*")
        if path.is_file()
        for s in secrets
        if s.encode() in path.read_bytes()
    ]


def find_in_warehouse(path: Path, secrets: list[str]) -> list[str]:
    con = duckdb.connect(str(path), read_only=True)
    try:
        hits = []
        for schema, table in con.execute(
            "select table_schema, table_name from information_schema.tables"
        ).fetchall():
            for row in con.execute(f'select * from "{schema}"."{table}"').fetchall():
                hits += [f"{schema}.{table}: {s}" for s in secrets if s in repr(row)]
        return hits
    finally:
        con.close()


def cli(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pipelines", "-v", "--no-progress", *args],
        cwd=REPO,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_key_absent_everywhere(heat_sandbox, isolated_dlt):
    """Debug-level CLI runs (a 5xx storm, a wrong key, good runs, check), then grep."""
    secrets = [HEAT_KEY, HEAT_SECRET_PART, WRONG_KEY, "WRONGSECRET777"]
    heat_sandbox.fail_next(20, 500, endpoint="detail")
    outputs = [cli("run", "heat")]
    heat_sandbox.reset_faults()
    outputs.append(cli("run", "heat", SOURCES__HEAT__API_KEY=WRONG_KEY))
    outputs.append(cli("run", "heat"))
    heat_sandbox.clear_schedules(heat_sandbox.site_ids[0])
    outputs.append(cli("run", "heat"))
    outputs.append(cli("check", "heat"))
    assert [o.returncode for o in outputs] == [1, 1, 0, 0, 0]
    assert "Making GET request" in outputs[2].stderr  # debug logging shows the requests...
    assert "revoked or expired" in outputs[1].stdout
    for out in outputs:
        for secret in secrets:
            assert secret not in out.stdout and secret not in out.stderr  # ...redacted
    assert find_in_warehouse(isolated_dlt / "warehouse.duckdb", secrets) == []
    assert find_in_tree(isolated_dlt / "dlt", secrets) == []


def admin(sb, action: str, **kwargs) -> object:
    request = urllib.request.Request(
        f"{sb.admin_url}/{action}", data=json.dumps(kwargs).encode(), method="POST"
    )
    with urllib.request.urlopen(request, timeout=5) as response:
        return json.load(response)["result"]


def get(sb, path: str, key: str | None = HEAT_KEY) -> tuple[int, object]:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    request = urllib.request.Request(sb.base_url + path, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            body = response.read()
            return response.status, json.loads(body) if body else None
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


def test_sandbox_serves_the_documented_shapes_and_obeys_the_admin_api(heat_sandbox):
    sb = heat_sandbox
    site = sb.site_ids[0]
    assert get(sb, "/health", key=None) == (204, None)
    status, body = get(sb, "/api/v1/public/sites")
    assert status == 200 and [s["siteId"] for s in body["sites"]] == sb.site_ids
    assert all("assets" not in s and "schedules" in s for s in body["sites"])
    status, detail = get(sb, f"/api/v0/public/sites/{site}")
    assert status == 200 and {"grid", "load"} <= set(detail["assets"])
    assert get(sb, "/api/v1/public/sites", key=None)[0] == 401
    assert get(sb, "/api/v1/public/sites/nope") == (
        404,
        {"error": "not_found", "message": "Site not found"},
    )

    admin(sb, "set_entry_field", name="priority", value="high", site_id=sb.site_ids[2])
    entries = [e for s in sb.truth()[sb.site_ids[2]]["schedules"] for e in s["entries"]]
    assert entries and {e["priority"] for e in entries} == {"high"}
    assert all("priority" not in e for s in sb.truth()[site]["schedules"] for e in s["entries"])
    admin(sb, "set_online", site_id=site, online=False)
    admin(sb, "clear_schedules", site_id=site)
    admin(sb, "add_asset", site_id=site, kind="hydrogen", fields={"storedHydrogenKg": 3})
    admin(sb, "hide_site", site_id=sb.site_ids[1])
    admin(sb, "set_health", status=503)
    admin(sb, "fail_next", n=1, status=502, endpoint="list")
    assert get(sb, "/health", key=None)[0] == 503
    assert get(sb, "/api/v1/public/sites")[0] == 502
    status, body = get(sb, "/api/v1/public/sites")
    assert [s["siteId"] for s in body["sites"]] == [sb.site_ids[0], *sb.site_ids[2:]]
    assert body["sites"][0]["isOnline"] is False and body["sites"][0]["schedules"] == []
    assert get(sb, f"/api/v1/public/sites/{site}")[1]["assets"]["hydrogen"] == {
        "id": "x-hydrogen",
        "type": "hydrogen",
        "storedHydrogenKg": 3,
    }
    admin(sb, "revoke_key")
    assert get(sb, "/api/v1/public/sites") == (
        401,
        {"error": "unauthorized", "message": "API key revoked or expired"},
    )
    request = urllib.request.Request(sb.base_url + "/api/v1/public/sites", method="POST")
    with pytest.raises(urllib.error.HTTPError):
        urllib.request.urlopen(request, timeout=5)
    assert sb.count_requests("list") >= 4 and all(
        HEAT_KEY not in json.dumps(r.as_dict()) for r in sb.requests
    )


def test_sandbox_runs_standalone():
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "sandbox.heat",
            "--port",
            "0",
            "--api-key",
            "agk_x.ags_y1234",
            "--sites",
            "2",
        ],
        cwd=REPO,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout.readline().startswith("HEAT sandbox ready: 2 site(s)")
        base = proc.stdout.readline().split()[-1]
        with urllib.request.urlopen(base + "/health", timeout=5) as response:
            assert response.status == 204
    finally:
        proc.terminate()
        assert proc.wait(timeout=10) == 0
