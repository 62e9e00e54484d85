"""Lead attachments against the sandbox: every file stored once at its blob_path with the
server's sha256, reruns download nothing, changes/removals/faults/kills handled, the rate limit
shared with the list reads."""

from __future__ import annotations

import hashlib
import os
import secrets
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import pytest

from pipelines.cli import main
from tests.sources.solarknock.warehouse_check import warehouse_rows

REPO = Path(__file__).resolve().parents[3]
ATT = "attachments"


def run(*args: str) -> int:
    """One CLI run, after the current second (the API clock has whole seconds)."""
    time.sleep(1.05 - (time.time() % 1.0))
    return main(["--no-progress", *args])


@pytest.fixture(autouse=True)
def attachments_on(monkeypatch):
    """Explicitly on, whatever the shared fixtures choose for the other sandbox tests."""
    monkeypatch.setenv("SOURCES__SOLARKNOCK__ATTACHMENTS__ENABLED", "true")


@pytest.fixture
def warehouse(isolated_dlt: Path) -> Path:
    return isolated_dlt / "warehouse.duckdb"


@pytest.fixture
def root(isolated_dlt: Path) -> Path:
    """The default blob root of a warehouse called warehouse.duckdb."""
    return isolated_dlt / "blobs" / "warehouse" / "solarknock"


@pytest.fixture
def small_sandbox(monkeypatch):
    """Few leads (about 30 files), for the tests that pace or serialize downloads."""
    from sandbox.solarknock import SolarKnockSandbox

    counts = {"users": 3, "knocks": 40, "leads": 30, "appointments": 5, "daily-stats": 10}
    counts |= {"app-opens": 5, "counties": 3}
    key = f"sk_SMALL{secrets.token_hex(4).upper()}"  # its own limiter: no budget carried over
    with SolarKnockSandbox(seed=11, api_key=key, counts=counts) as sb:
        monkeypatch.setenv("SOURCES__SOLARKNOCK__API_KEY", key)
        monkeypatch.setenv("SOURCES__SOLARKNOCK__BASE_URL", sb.base_url)
        monkeypatch.setenv("SOURCES__SOLARKNOCK__BACKOFF_FACTOR", "0.05")
        yield sb


def live_files(sb) -> dict[tuple[str, str], dict]:
    return {
        (lead["id"], a["id"]): a
        for lead in sb.truth("leads")
        if not lead.get("deleted_at")
        for a in lead.get("attachments") or []
    }


DELETED_FIRST = "the lead was deleted before its files were stored"


def deleted_lead_files(sb) -> list[tuple[str, str]]:
    return sorted(
        (lead["id"], a["id"])
        for lead in sb.truth("leads")
        if lead.get("deleted_at")
        for a in lead.get("attachments") or []
    )


def rows(warehouse: Path) -> dict[tuple[str, str], dict]:
    out = {(r["lead_id"], r["file_id"]): r for r in warehouse_rows(warehouse, "lead_attachments")}
    assert len(out) == len(warehouse_rows(warehouse, "lead_attachments")), "duplicate keys"
    return out


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def assert_blobs_match(sb, warehouse: Path, root: Path) -> dict[tuple[str, str], dict]:
    """Every live file stored once at its blob_path with the server's sha256; no other file
    (and no partial download) anywhere under the root."""
    table = rows(warehouse)
    live = live_files(sb)
    for key, meta in live.items():
        row = table[key]
        assert row["status"] == "stored", (key, row["status"], row.get("reason"))
        path = Path(row["blob_path"])
        assert path.is_relative_to(root.resolve()), path
        assert row["sha256"] == sb.attachment_sha256(*key) == sha256_file(path)
        assert row["bytes_stored"] == meta["size"] == path.stat().st_size
        assert row["file_name"] == meta["fileName"]
    recorded = {Path(r["blob_path"]) for r in table.values() if r.get("blob_path")}
    on_disk = {p for p in root.rglob("*") if p.is_file()}
    assert on_disk == recorded, on_disk ^ recorded
    return table


def test_full_sync_stores_every_file_once_then_rerun_downloads_nothing(
    sk_sandbox, warehouse, root, capsys
):
    with_files = [lead["id"] for lead in sk_sandbox.truth("leads") if lead.get("attachments")]
    sk_sandbox.soft_delete("leads", ids=with_files[:3])  # deleted before the first sync
    assert run("run", "solarknock") == 0
    table = assert_blobs_match(sk_sandbox, warehouse, root)
    live = live_files(sk_sandbox)
    assert len(live) > 100
    assert sk_sandbox.count_requests(endpoint=ATT) == len(live)
    never = deleted_lead_files(sk_sandbox)  # leads deleted before the first sync
    assert len(never) >= 3
    for key in never:  # recorded as never stored (not "removed"), never fetched
        row = table[key]
        assert (row["status"], row["reason"]) == ("skipped_deleted", DELETED_FIRST)
        assert [row[c] for c in ("blob_path", "sha256", "bytes_stored")] == [None] * 3
    for path in [root, *root.rglob("*")]:
        assert stat.S_IMODE(path.stat().st_mode) == (0o700 if path.is_dir() else 0o600)
    for info in sk_sandbox.requests:
        if info.endpoint == ATT:
            assert info.auth_present and info.method == "GET"

    sk_sandbox.clear_requests()
    sk_sandbox.update("leads", n=20)  # walked again: their files are already stored
    sk_sandbox.update("leads", ids=sorted({lead for lead, _ in never}))  # still deleted
    assert run("run", "solarknock") == 0
    assert sk_sandbox.count_requests(endpoint=ATT) == 0
    after = assert_blobs_match(sk_sandbox, warehouse, root)
    assert {k for k, r in after.items() if r["status"] == "skipped_deleted"} == set(never)
    assert len(after) == len(live) + len(never)

    capsys.readouterr()
    assert run("status") == 0
    out = capsys.readouterr().out
    line = next(line for line in out.splitlines() if "lead_attachments" in line)
    total = sum(meta["size"] for meta in live.values())
    assert total > 1 << 20
    counts = f"{len(live)} stored, 0 failed, 0 removed, 0 skipped, {len(never)} skipped_deleted"
    assert line.strip() == f"files lead_attachments: {counts}; {total / (1 << 20):.1f} MiB stored"


def test_size_change_missing_blob_removal_and_deletion(sk_sandbox, warehouse, root):
    assert run("run", "solarknock") == 0
    table = rows(warehouse)
    by_lead: dict[str, list[str]] = {}
    for lead_id, file_id in live_files(sk_sandbox):
        by_lead.setdefault(lead_id, []).append(file_id)
    multi = [lead for lead, files in by_lead.items() if len(files) >= 2]
    single = [lead for lead, files in by_lead.items() if len(files) == 1]
    resized, trimmed, deleted, wiped = multi[0], multi[1], multi[2], single[0]

    sk_sandbox.set_attachment_size(resized, by_lead[resized][0], 4321)
    kept = next(a for a in sk_sandbox.truth("leads") if a["id"] == trimmed)["attachments"][:1]
    sk_sandbox.set_attachments(trimmed, kept)  # the others disappear from the lead
    sk_sandbox.soft_delete("leads", ids=[deleted])
    Path(table[(wiped, by_lead[wiped][0])]["blob_path"]).unlink()  # lost from the store
    sk_sandbox.update("leads", ids=[wiped])
    sk_sandbox.clear_requests()

    assert run("run", "solarknock") == 0
    fetched = {tuple(r.path.rsplit("/", 2)[-2:]) for r in sk_sandbox.requests if r.endpoint == ATT}
    assert fetched == {(resized, by_lead[resized][0]), (wiped, by_lead[wiped][0])}
    after = rows(warehouse)
    assert after[(resized, by_lead[resized][0])]["bytes_stored"] == 4321
    for file_id in by_lead[trimmed][1:]:
        row = after[(trimmed, file_id)]
        assert (row["status"], row["reason"]) == ("removed", "no longer attached to the lead")
        assert row["sha256"] == table[(trimmed, file_id)]["sha256"]  # the blob is kept
    for file_id in by_lead[deleted]:
        row = after[(deleted, file_id)]
        assert (row["status"], row["reason"]) == ("removed", "the lead was deleted")
    # the removed files keep their blobs: every file on disk is still a recorded blob_path
    assert_blobs_match(sk_sandbox, warehouse, root)


def fetched_files(sb) -> list[tuple[str, str]]:
    return sorted(tuple(r.path.rsplit("/", 2)[-2:]) for r in sb.requests if r.endpoint == ATT)


def test_a_leads_backfill_repairs_their_files(small_sandbox, warehouse, root, monkeypatch, capsys):
    """``backfill --resource leads`` runs lead_attachments too: a lost blob comes back; with
    attachments switched off nothing follows (and nothing is said)."""
    sb = small_sandbox
    assert run("run", "solarknock") == 0
    table = rows(warehouse)
    capsys.readouterr()
    assert run("status", "solarknock") == 0  # every status listed, a zero count included
    line = next(x for x in capsys.readouterr().out.splitlines() if "files lead_attachments" in x)
    assert f"{len(table)} stored, 0 failed, 0 removed, 0 skipped, 0 skipped_deleted;" in line
    lost, other = sorted(live_files(sb))[:2]
    Path(table[lost]["blob_path"]).unlink()
    sb.clear_requests()
    capsys.readouterr()

    assert run("backfill", "solarknock", "--resource", "leads") == 0
    out = capsys.readouterr().out
    assert "backfilling leads also backfills lead_attachments" in out
    assert {r.endpoint for r in sb.requests} == {"org", "leads", ATT}
    assert fetched_files(sb) == [lost]  # the other files are already stored
    assert_blobs_match(sb, warehouse, root)

    Path(table[other]["blob_path"]).unlink()  # the files alone: leads read, not reloaded
    sb.clear_requests()
    assert run("backfill", "solarknock", "--resource", "lead_attachments") == 0
    assert "lead_attachments" in capsys.readouterr().out
    assert fetched_files(sb) == [other]
    assert_blobs_match(sb, warehouse, root)

    monkeypatch.setenv("SOURCES__SOLARKNOCK__ATTACHMENTS__ENABLED", "false")
    Path(table[lost]["blob_path"]).unlink()
    sb.clear_requests()
    assert run("backfill", "solarknock", "--resource", "leads") == 0
    assert "also backfills" not in capsys.readouterr().out
    assert {r.endpoint for r in sb.requests} == {"org", "leads"}
    assert run("backfill", "solarknock", "--resource", "lead_attachments") == 2


def test_hostile_names_and_ids_stay_inside_the_blob_root(sk_sandbox, warehouse, root):
    lead = next(lead["id"] for lead in sk_sandbox.truth("leads") if not lead.get("deleted_at"))
    hostile = [
        {"fileName": "../../etc/passwd", "size": 300},
        {"fileName": "/absolute/path.pdf", "size": 200},
        {"fileName": "C:\\Windows\\system32\\evil.exe", "size": 100},
        {"fileName": "contract\nsigned.pdf", "size": 50},
        {"id": "../../../escaped", "fileName": "..", "size": 10},
        {"id": "..", "fileName": "dots.pdf", "size": 20},
        {"id": "a/b", "fileName": "", "size": 30},
    ]
    sk_sandbox.set_attachments(lead, hostile)
    assert run("run", "solarknock") == 0
    table = assert_blobs_match(sk_sandbox, warehouse, root)
    names = {r["file_name"] for (lead_id, _), r in table.items() if lead_id == lead}
    assert names == {h["fileName"] for h in hostile}  # kept as metadata, never as a path
    parts = {p.name for p in (root / lead).iterdir()}
    assert len(parts) == len(hostile) and not any(".." == p or "/" in p for p in parts)
    for path in root.parent.parent.rglob("*"):
        assert path.resolve().is_relative_to(root.parent.parent.resolve())
    assert not (root.parent / "escaped").exists() and not Path("/etc/passwd.pdf").exists()


def test_404_5xx_and_a_retry_on_the_next_run(small_sandbox, warehouse, root, monkeypatch):
    sb = small_sandbox
    monkeypatch.setenv("SOURCES__SOLARKNOCK__ATTACHMENTS__MAX_CONCURRENCY", "1")
    files = sorted(live_files(sb))
    broken, vanished, flaky = files[0], files[1], files[2]
    flaky_hits = []

    def faults(sb, info):
        if info.endpoint != ATT:
            return
        key = tuple(info.path.rsplit("/", 2)[-2:])
        if key == broken:
            sb.fail_next(1, status=500, endpoint=ATT)
        elif key == vanished:
            sb.fail_next(1, status=404, endpoint=ATT, code="NOT_FOUND")
        elif key == flaky:
            flaky_hits.append(info)
            if len(flaky_hits) == 1:
                sb.drop_next(1, endpoint=ATT)

    sb.on_request(faults)
    assert run("run", "solarknock") == 0  # one file's trouble never fails the source
    table = rows(warehouse)
    assert table[broken]["status"] == "failed" and "500" in table[broken]["reason"]
    assert table[vanished]["status"] == "failed" and "404" in table[vanished]["reason"]
    assert table[flaky]["status"] == "stored" and len(flaky_hits) == 2
    hits = [tuple(r.path.rsplit("/", 2)[-2:]) for r in sb.requests if r.endpoint == ATT]
    assert hits.count(broken) == 5 and hits.count(vanished) == 1  # 5 attempts; 404 once
    assert not any(p.is_file() for p in (root / broken[0]).glob("*"))

    sb.on_request(None)
    sb.clear_requests()
    assert run("run", "solarknock") == 0  # no lead changed: the failures alone are retried
    hits = sorted(tuple(r.path.rsplit("/", 2)[-2:]) for r in sb.requests if r.endpoint == ATT)
    assert hits == sorted([broken, vanished])
    assert_blobs_match(sb, warehouse, root)
    sb.clear_requests()
    assert run("run", "solarknock") == 0
    assert sb.count_requests(endpoint=ATT) == 0


def test_expired_subscription_during_downloads_stops_the_source(
    small_sandbox, warehouse, monkeypatch, capsys
):
    monkeypatch.setenv("SOURCES__SOLARKNOCK__ATTACHMENTS__MAX_CONCURRENCY", "1")

    def expire(sb, info):
        if info.endpoint == ATT and sb.count_requests(endpoint=ATT) == 3:
            sb.set_subscription_expired(True)

    small_sandbox.on_request(expire)
    assert run("run", "solarknock") == 1
    assert "SUBSCRIPTION_EXPIRED" in capsys.readouterr().out
    assert small_sandbox.count_requests(endpoint=ATT) == 3  # no retry, no further download
    if warehouse.exists():  # nothing of the failed run was loaded
        con = duckdb.connect(str(warehouse), read_only=True)
        tables = {
            t for (t,) in con.execute("select table_name from information_schema.tables").fetchall()
        }
        con.close()
        assert "lead_attachments" not in tables


def test_limits_disable_switch_and_fault_free_rerun(small_sandbox, warehouse, root, monkeypatch):
    sb = small_sandbox
    monkeypatch.setenv("SOURCES__SOLARKNOCK__ATTACHMENTS__ENABLED", "false")
    assert run("run", "solarknock") == 0
    assert sb.count_requests(endpoint=ATT) == 0 and not root.exists()

    monkeypatch.setenv("SOURCES__SOLARKNOCK__ATTACHMENTS__ENABLED", "true")
    monkeypatch.setenv("SOURCES__SOLARKNOCK__ATTACHMENTS__MAX_FILE_SIZE", "20000")
    monkeypatch.setenv("SOURCES__SOLARKNOCK__ATTACHMENTS__ALLOWED_MIME_TYPES", '["image/*"]')
    sb.update("leads", n=30)  # every lead in the next window
    assert run("run", "solarknock") == 0
    table = rows(warehouse)
    live = live_files(sb)
    for key, meta in live.items():
        small = meta["size"] <= 20000
        allowed = meta["mimeType"].startswith("image/")
        row = table[key]
        assert row["status"] == ("stored" if small and allowed else "skipped"), row
        if not small:
            assert "max_file_size" in row["reason"]
        elif not allowed:
            assert "allowed_mime_types" in row["reason"]
    stored = sum(1 for r in table.values() if r["status"] == "stored")
    assert 0 < stored < len(live) and sb.count_requests(endpoint=ATT) == stored


def test_rate_limit_is_shared_with_the_list_reads(small_sandbox, warehouse, root, monkeypatch):
    """15 requests per 1-second window for everything: list pages (5 rows each) and the
    downloads of each leads page, 4 in parallel, interleave under one budget."""
    sb = small_sandbox
    monkeypatch.setenv("SOURCES__SOLARKNOCK__PAGE_SIZE", "5")
    sb.set_rate_limit(15, burst=15, window=1.0)
    assert run("run", "solarknock") == 0
    kinds = [r.endpoint for r in sb.requests]
    assert kinds.count(ATT) >= 20 and len(kinds) >= 45
    assert kinds.index(ATT) < len(kinds) - 1 - kinds[::-1].index("leads")  # interleaved
    assert sb.count_requests(status=429) == 0
    assert sb.max_requests_in_window(seconds=1.0) <= 15
    assert_blobs_match(sb, warehouse, root)


def part_sizes(incoming: Path) -> list[int]:
    sizes = []
    for path in incoming.glob("*.part") if incoming.exists() else ():
        try:
            sizes.append(path.stat().st_size)
        except FileNotFoundError:  # a small file just committed
            pass
    return sizes


def test_sigkill_during_a_large_download_then_rerun(sk_sandbox, warehouse, root):
    """kill -9 while a 200 MB file streams: nothing partial at its key; a rerun completes it."""
    big = sorted(live_files(sk_sandbox))[0]
    sk_sandbox.set_attachment_size(*big, 200 << 20)
    sk_sandbox.throttle_attachments(40 << 20)  # about 5 s for the big file
    time.sleep(1.05 - (time.time() % 1.0))  # the resized lead is inside the run's window
    proc = subprocess.Popen(
        [sys.executable, "-m", "pipelines", "--no-progress", "run", "solarknock"],
        cwd=REPO,
        env=dict(os.environ),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    incoming = root / ".incoming"
    deadline = time.monotonic() + 60
    try:
        while True:
            assert time.monotonic() < deadline and proc.poll() is None
            if any(size > 8 << 20 for size in part_sizes(incoming)):  # only the big one
                break
            time.sleep(0.002)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    final = root / big[0] / big[1]
    assert not final.exists()  # the partial bytes are only ever in .incoming
    assert list(incoming.glob("*.part"))

    sk_sandbox.throttle_attachments(None)
    assert run("run", "solarknock") == 0
    assert_blobs_match(sk_sandbox, warehouse, root)  # complete, and the leftover part swept
    assert final.stat().st_size == 200 << 20
    assert not list(incoming.glob("*"))


# --------------------------------------------------------------------------- per destination
@pytest.mark.parametrize("kind", ["duckdb", "postgres", "filesystem", "filesystem_s3"])
def test_each_destination_keeps_the_files_where_the_readme_says(
    kind, small_sandbox, request, tmp_path, monkeypatch, isolated_dlt
):
    """The default blob root is the destination's (docs/sources/solarknock.md,
    "Attachments"), whatever DuckDB path is configured: next to the DuckDB file;
    ``$DLT_DATA_DIR/solarsync/blobs`` for Postgres (not the working dir); ``<bucket>/_blobs``
    in the lake (its own bucket, its credentials, on S3)."""
    from pipelines.destinations.duckdb import DuckDBWarehouse
    from tests.conftest import s3_client

    duck = tmp_path / "elsewhere" / "configured.duckdb"
    monkeypatch.setenv("DESTINATION__DUCKDB__CREDENTIALS", str(duck))
    workdir = tmp_path / "workdir"
    workdir.mkdir()
    monkeypatch.chdir(workdir)
    if kind == "duckdb":
        warehouse = DuckDBWarehouse(duck)
        expected = duck.parent / "blobs" / "configured" / "solarknock"
    elif kind == "postgres":
        warehouse = request.getfixturevalue("postgres_warehouse")
        expected = isolated_dlt / "dlt" / "solarsync" / "blobs" / "solarknock"
    else:
        warehouse = request.getfixturevalue(f"{kind}_warehouse")
        expected = f"{warehouse.bucket_url}/_blobs/solarknock"
        if kind == "filesystem":
            expected = Path(expected)
    destination = "filesystem" if kind.startswith("filesystem") else kind
    assert run("--destination", destination, "run", "solarknock") == 0

    with warehouse.reader() as reader:
        stored = reader.rows(
            "select blob_path, sha256 from solarknock.lead_attachments where status = 'stored'"
        )
    live = live_files(small_sandbox)
    assert len(stored) == len(live) > 0
    if kind == "filesystem_s3":
        bucket, prefix = str(expected)[len("s3://") :].split("/", 1)
        client = s3_client(os.environ["DESTINATION__FILESYSTEM__CREDENTIALS__ENDPOINT_URL"])
        objects = client.list_objects_v2(Bucket=bucket, Prefix=prefix + "/")["Contents"]
        keys = {o["Key"] for o in objects if "/.incoming/" not in o["Key"]}
        assert {path for path, _ in stored} == {f"s3://{bucket}/{k}" for k in keys}
        for path, sha in stored:
            body = client.get_object(Bucket=bucket, Key=path.split("/", 3)[3])["Body"].read()
            assert hashlib.sha256(body).hexdigest() == sha
    else:
        recorded = {Path(path) for path, _ in stored}
        assert {p for p in expected.rglob("*") if p.is_file()} == recorded
        assert all(sha256_file(Path(path)) == sha for path, sha in stored)
    others = [duck.parent / "blobs", workdir / "warehouse" / "blobs", tmp_path / "blobs"]
    for other in others:
        if not str(expected).startswith(str(other)):
            assert not other.exists(), other
