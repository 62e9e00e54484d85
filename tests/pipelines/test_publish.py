"""BI publish of the DuckDB destination: loads go to a private working file, every run
publishes a copy at the path BI tools open (pipelines/destinations/duckdb/publish.py)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import pytest

from pipelines import cli, registry
from pipelines.destinations.duckdb import DuckDBWarehouse, publish
from pipelines.destinations.duckdb.files import lock_path, wal_path, working_path
from pipelines.destinations.duckdb.lock import WarehouseLock
from pipelines.destinations.duckdb.publish import adopt
from pipelines.sync import run_source
from sources.common import DestinationError
from tests.sources.solarknock.warehouse_check import assert_equal_to_truth

REPO = Path(__file__).resolve().parents[2]


def run(*args: str) -> int:
    return cli.main(["--no-progress", *args])


def count(path: Path, sql: str) -> int:
    con = duckdb.connect(str(path), read_only=True)
    try:
        return con.execute(sql).fetchone()[0]
    finally:
        con.close()


def table_counts(path: Path) -> dict[str, int]:
    con = duckdb.connect(str(path), read_only=True)
    try:
        tables = con.execute(
            "select schema_name, table_name from duckdb_tables() order by all"
        ).fetchall()
        return {
            f"{s}.{t}": con.execute(f'select count(*) from "{s}"."{t}"').fetchone()[0]
            for s, t in tables
        }
    finally:
        con.close()


def child(code: str, *args: str) -> subprocess.Popen:
    """A separate process (a BI tool, another solarsync) running ``code``; reads commands on
    stdin, answers on stdout."""
    return subprocess.Popen(
        [sys.executable, "-c", code, *args],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        cwd=REPO,
    )


#: a BI tool: holds a connection (read-only or not) and answers SQL sent on stdin
BI_TOOL = """
import duckdb, sys
con = duckdb.connect(sys.argv[1], read_only=sys.argv[2] == "ro")
print("held", flush=True)
for line in sys.stdin:
    try:
        print(repr(con.execute(line).fetchall()), flush=True)
    except Exception as exc:
        print("ERROR " + str(exc).splitlines()[0], flush=True)
"""


def ask(proc: subprocess.Popen, sql: str) -> str:
    proc.stdin.write(sql + "\n")
    proc.stdin.flush()
    return proc.stdout.readline().strip()


def stop(proc: subprocess.Popen) -> None:
    proc.kill()
    proc.wait()


@pytest.fixture
def warehouse(isolated_dlt: Path) -> Path:
    return isolated_dlt / "warehouse.duckdb"


def test_loads_go_to_a_working_file_and_runs_publish_a_whole_copy(sk_sandbox, warehouse):
    assert run("run", "solarknock") == 0
    work = warehouse.parent / ".solarsync" / "working.warehouse.duckdb"
    assert working_path(warehouse) == work and work.exists() and warehouse.exists()
    assert os.stat(work).st_ino != os.stat(warehouse).st_ino
    # the published file is the working file, checkpointed: no WAL, no temporary file left
    assert not wal_path(warehouse).exists() and not wal_path(work).exists()
    assert publish.leftovers(warehouse) == []
    assert table_counts(warehouse) == table_counts(work)
    assert_equal_to_truth(sk_sandbox, warehouse)
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        ((by, path),) = con.execute(
            "select published_by, published_path from solarsync.snapshot"
        ).fetchall()
    finally:
        con.close()
    # the last publish of the command: the source's, or the run history's right after it
    assert by in ("solarknock", "solarsync") and path == str(warehouse)


def test_two_warehouses_in_one_folder_never_share_a_working_file(tmp_path):
    a, b = tmp_path / "solarsync.duckdb", tmp_path / "demo.duckdb"
    assert working_path(a) != working_path(b)
    assert lock_path(a) != lock_path(b)
    assert working_path(a).parent == working_path(b).parent == tmp_path / ".solarsync"


def test_a_bi_tool_reading_keeps_its_snapshot_and_new_connections_see_the_run(
    sk_sandbox, warehouse
):
    assert run("run", "solarknock") == 0
    before = len(sk_sandbox.truth("knocks"))
    tool = child(BI_TOOL, str(warehouse), "ro")
    try:
        assert tool.stdout.readline().strip() == "held"
        sk_sandbox.insert("knocks", n=15)
        sk_sandbox.soft_delete("leads", n=2)
        assert run("run", "solarknock") == 0
        assert_equal_to_truth(sk_sandbox, warehouse)
        assert ask(tool, "select count(*) from solarknock.knocks") == repr([(before,)])
        assert count(warehouse, "select count(*) from solarknock.knocks") == before + 15
    finally:
        stop(tool)


def test_a_wal_a_bi_tool_left_next_to_the_published_file_does_not_lock_readers_out(
    sk_sandbox, warehouse, capsys
):
    """A tool that WROTE into the published file leaves ``warehouse.duckdb.wal`` next to it;
    DuckDB would refuse to open the new copy with it ("WAL does not match database file")."""
    assert run("run", "solarknock") == 0
    tool = child(BI_TOOL, str(warehouse), "rw")
    try:
        assert tool.stdout.readline().strip() == "held"
        assert ask(tool, "create table main.my_notes as select 1 as note") == repr([(1,)])
        assert wal_path(warehouse).exists()
        sk_sandbox.insert("knocks", n=5)
        assert run("run", "solarknock") == 0
        assert (
            "WARNING solarsync: a program wrote into the published file" in capsys.readouterr().err
        )
        assert not wal_path(warehouse).exists()
        assert_equal_to_truth(sk_sandbox, warehouse)  # opens fine: no stale WAL replayed
        assert (
            count(warehouse, "select count(*) from duckdb_tables() where table_name = 'my_notes'")
            == 0
        )
        # the tool still answers from the file it opened (its own write included)
        assert ask(tool, "select count(*) from main.my_notes") == repr([(1,)])
    finally:
        stop(tool)


#: ``solarsync run solarknock`` whose copy for BI stops half-way (a kill -9 lands there)
KILLED_IN_PUBLISH = """
import os, sys, time
from pathlib import Path
from pipelines import cli
from pipelines.destinations.duckdb import publish

def half_then_hang(src, dst):
    data = Path(src).read_bytes()
    Path(dst).write_bytes(data[: len(data) // 2])
    Path(os.environ["PUBLISH_MARK"]).write_text("copying")
    time.sleep(120)

publish.fast_copy = half_then_hang
sys.exit(cli.main(["--no-progress", "run", "solarknock"]))
"""


def test_a_kill_during_publish_leaves_the_old_or_new_file_and_loses_nothing(
    sk_sandbox, warehouse, tmp_path, monkeypatch
):
    assert run("run", "solarknock") == 0
    old = table_counts(warehouse)
    sk_sandbox.update("knocks", n=10)
    sk_sandbox.insert("leads", n=3)
    mark = tmp_path / "mark"
    monkeypatch.setenv("PUBLISH_MARK", str(mark))
    proc = subprocess.Popen([sys.executable, "-c", KILLED_IN_PUBLISH], cwd=REPO)
    try:
        deadline = time.monotonic() + 120
        while not mark.exists() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert mark.exists(), "the child never reached the publish"
        proc.kill()
    finally:
        proc.kill()
        proc.wait()
    # the published file is the previous one, whole; the half copy is a hidden temp file
    assert table_counts(warehouse) == old
    (left,) = publish.leftovers(warehouse)
    assert left.name.startswith(".warehouse.duckdb.publish-")
    # the working file is intact and holds the completed load
    assert_equal_to_truth(sk_sandbox, working_path(warehouse))
    sk_sandbox.clear_requests()
    assert run("run", "solarknock") == 0
    assert sk_sandbox.count_requests() == 8  # nothing to load again: /org + 7 lists
    assert_equal_to_truth(sk_sandbox, warehouse)
    assert publish.leftovers(warehouse) == []


#: another solarsync process using the working file: holds the warehouse lock with the file
#: open in DuckDB until told to stop
OTHER_LOADER = """
import duckdb, sys
from pathlib import Path
from pipelines.destinations.duckdb.files import lock_path, working_path
from pipelines.destinations.duckdb.lock import WarehouseLock
published = Path(sys.argv[1])
lock = WarehouseLock.get(lock_path(published))
lock.acquire("loading heat", 60)
con = duckdb.connect(str(working_path(published)))
print("holding", flush=True)
sys.stdin.readline()
con.close()
lock.release()
print("released", flush=True)
"""


def test_a_second_source_waits_for_the_warehouse_instead_of_failing(
    sk_sandbox, warehouse, monkeypatch, capsys
):
    assert run("run", "solarknock") == 0
    sk_sandbox.insert("knocks", n=4)
    other = child(OTHER_LOADER, str(warehouse))
    try:
        assert other.stdout.readline().strip() == "holding"
        # status reads the published file: never waits for a loader
        assert run("status", "solarknock") == 0
        assert "solarknock: last successful load 20" in capsys.readouterr().out
        # a run that gives up quickly says who holds the warehouse and what to do
        monkeypatch.setenv("DESTINATION__DUCKDB__LOCK_TIMEOUT", "0.3s")
        assert run("run", "solarknock") == 1
        out = capsys.readouterr().out
        assert (
            f"the warehouse is busy: another solarsync process (PID {other.pid}, loading heat"
            in out
        )
        assert "lock_timeout" in out
        # with the default it waits: the other process finishes, then this run loads
        monkeypatch.delenv("DESTINATION__DUCKDB__LOCK_TIMEOUT")
        releaser = __import__("threading").Timer(1.0, lambda: ask(other, "go"))
        releaser.start()
        assert run("run", "solarknock") == 0
        releaser.join()
    finally:
        stop(other)
    assert_equal_to_truth(sk_sandbox, warehouse)


class EarlierVersion(DuckDBWarehouse):
    """The DuckDB destination as solarsync had it before BI publish: dlt loads the file BI
    tools open, in place, and views are applied to it."""

    @property
    def load_path(self) -> Path:
        return self.path

    def credentials(self):
        from dlt.destinations.impl.duckdb.configuration import DuckDbCredentials

        return DuckDbCredentials(str(self.path))

    def writing(self, source):
        import contextlib

        return contextlib.nullcontext()

    def publish(self, pipeline, source, *, views, batch=False):
        from pipelines.destinations import Publication
        from pipelines.destinations.duckdb.views import apply_views

        return Publication(apply_views(self.path, source, views).views)


def test_an_earlier_versions_warehouse_is_adopted_and_nothing_is_downloaded_again(
    sk_sandbox, warehouse, isolated_dlt, monkeypatch
):
    spec = registry.get("solarknock")
    first = run_source(spec, EarlierVersion(warehouse))
    assert first.ok, first.error
    assert not working_path(warehouse).exists()
    blobs = isolated_dlt / "blobs" / "warehouse" / "solarknock"
    stored = {p: p.stat().st_mtime_ns for p in blobs.rglob("*") if p.is_file()}
    assert stored
    sk_sandbox.update("knocks", n=6)
    sk_sandbox.update("leads", n=4)

    # the control: the same state, run incrementally by the earlier version
    control = isolated_dlt / "control"
    shutil.copytree(isolated_dlt / "dlt", control / "dlt")
    shutil.copy(warehouse, control / "warehouse.duckdb")
    shutil.copytree(blobs, control / "blobs" / "warehouse" / "solarknock")
    with monkeypatch.context() as m:
        m.setenv("DLT_DATA_DIR", str(control / "dlt"))
        m.setenv("DESTINATION__DUCKDB__CREDENTIALS", str(control / "warehouse.duckdb"))
        sk_sandbox.clear_requests()
        incremental = run_source(spec, EarlierVersion(control / "warehouse.duckdb"))
        assert incremental.ok, incremental.error
        control_requests = sorted((r.endpoint, r.status) for r in sk_sandbox.requests)

    sk_sandbox.clear_requests()
    upgraded = run_source(spec, DuckDBWarehouse(warehouse))
    assert upgraded.ok, upgraded.error
    assert sorted((r.endpoint, r.status) for r in sk_sandbox.requests) == control_requests
    assert upgraded.rows == incremental.rows and upgraded.changes == incremental.changes
    assert working_path(warehouse).exists()
    assert_equal_to_truth(sk_sandbox, warehouse)
    assert (
        table_counts(warehouse)["solarknock.lead_attachments"]
        == table_counts(control / "warehouse.duckdb")["solarknock.lead_attachments"]
    )
    # the blobs stayed where they were: same files, none written again
    assert {p: p.stat().st_mtime_ns for p in blobs.rglob("*") if p.is_file()} == stored


def test_adopting_replays_a_wal_the_earlier_version_left(tmp_path):
    published, work = tmp_path / "solarsync.duckdb", working_path(tmp_path / "solarsync.duckdb")
    con = duckdb.connect(str(published))
    con.execute("create schema solarknock")
    con.execute("create table solarknock.knocks as select range as id from range(10)")
    con.close()
    # an earlier version killed in the middle of a load: its last rows are in the WAL only
    subprocess.run(
        [
            sys.executable,
            "-c",
            "import duckdb, os, sys\n"
            "c = duckdb.connect(sys.argv[1])\n"
            "c.execute('PRAGMA disable_checkpoint_on_shutdown')\n"
            "c.execute(\"SET wal_autocheckpoint = '1GB'\")\n"
            "c.execute('insert into solarknock.knocks select range from range(10, 15)')\n"
            "os._exit(0)",
            str(published),
        ],
        check=True,
    )
    assert wal_path(published).exists()
    assert adopt(published, work) == "compacting copy"
    assert count(work, "select count(*) from solarknock.knocks") == 15
    assert publish.leftovers(published) == []


def test_adopting_a_warehouse_a_program_holds_for_writing_says_what_to_do(tmp_path):
    published = tmp_path / "solarsync.duckdb"
    duckdb.connect(str(published)).close()
    tool = child(BI_TOOL, str(published), "rw")
    try:
        assert tool.stdout.readline().strip() == "held"
        with pytest.raises(DestinationError, match="close it .* for this one run"):
            adopt(published, working_path(published))
    finally:
        stop(tool)
    assert not working_path(published).exists() and publish.leftovers(published) == []


def test_compacting_publish_keeps_everything_and_the_next_run_goes_on(
    sk_sandbox, warehouse, monkeypatch
):
    monkeypatch.setenv("DESTINATION__DUCKDB__COMPACT", "always")
    assert run("run", "solarknock") == 0
    wh = DuckDBWarehouse(warehouse)
    assert_equal_to_truth(sk_sandbox, warehouse)
    sk_sandbox.update("knocks", n=30)
    sk_sandbox.soft_delete("leads", n=2)
    result = run_source(registry.get("solarknock"), wh)
    assert result.ok and wh.last_published.compacted
    assert_equal_to_truth(sk_sandbox, warehouse)
    assert table_counts(warehouse) == table_counts(working_path(warehouse))


def test_compaction_only_when_most_of_the_file_is_free():
    mb = 1024 * 1024
    assert not publish.should_compact("auto", 0.5, 10_000 * mb)  # merges' steady state
    assert not publish.should_compact("auto", 0.9, 10 * mb)  # small: a copy costs nothing
    assert publish.should_compact("auto", 0.7, 512 * mb)
    assert publish.should_compact("always", 0.0, 0)
    assert not publish.should_compact("never", 0.99, 10_000 * mb)


def test_a_published_file_that_cannot_be_replaced_is_published_by_the_next_run(
    sk_sandbox, warehouse, monkeypatch, capsys
):
    """Windows (and SMB shares) refuse to replace a file another program has open. That
    cannot happen on this machine: a stand-in ``os.replace`` refuses like Windows does."""
    assert run("run", "solarknock") == 0
    before = table_counts(warehouse)
    real_replace = os.replace

    def windows_replace(src, dst):
        if Path(dst) == warehouse:
            raise PermissionError(13, "The process cannot access the file")
        return real_replace(src, dst)

    sk_sandbox.insert("knocks", n=7)
    monkeypatch.setattr(publish, "REPLACE_PAUSE_S", 0)
    monkeypatch.setattr(publish.os, "replace", windows_replace)
    assert run("run", "solarknock") == 1
    out = capsys.readouterr().out
    assert "could not replace the published file" in out and "published by the next run" in out
    assert table_counts(warehouse) == before and publish.leftovers(warehouse) == []
    monkeypatch.setattr(publish.os, "replace", real_replace)
    assert run("run", "solarknock") == 0
    assert_equal_to_truth(sk_sandbox, warehouse)


def test_status_shows_the_last_load_and_when_the_snapshot_was_published(
    sk_sandbox, warehouse, capsys
):
    assert run("run", "solarknock") == 0
    capsys.readouterr()
    assert run("status", "solarknock") == 0
    out = capsys.readouterr().out
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        (published,) = con.execute("select published_at from solarsync.snapshot").fetchone()
        (last,) = con.execute(
            "select max(inserted_at) from solarknock._dlt_loads where status = 0"
        ).fetchone()
    finally:
        con.close()
    assert f"solarknock: last successful load {last}, published {published}" in out
    assert published >= last


def test_the_lock_counts_holders_within_a_process(tmp_path):
    lock = WarehouseLock.get(tmp_path / "x.lock")
    with lock.hold("a", 1):
        with lock.hold("b", 1):
            assert lock.held
        assert lock.held
        assert '"doing": "a"' in (tmp_path / "x.lock").read_text()
    assert not lock.held
    with pytest.raises(RuntimeError):
        lock.release()


def test_batches_publish_at_most_every_publish_every(fake, warehouse, monkeypatch):  # noqa: F811
    """Three batches loaded one after the other (as ``poll`` loads them): the first is
    published, the next two only reach the working file; ``publish`` then publishes all."""

    from pipelines.sync import make_pipeline
    from tests.pipelines.fake_poll_source import fakepoll

    monkeypatch.setenv("DESTINATION__DUCKDB__PUBLISH_EVERY", "1h")
    wh = DuckDBWarehouse(warehouse)
    pipeline = make_pipeline("fakepoll", wh)
    published = []
    for _ in range(3):
        pipeline.extract(fakepoll())
        pipeline.normalize()
        with wh.writing("fakepoll"):
            pipeline.load().raise_on_failed_jobs()
            wh.publish(pipeline, "fakepoll", views=None, batch=True)
        published.append(count(warehouse, "select count(*) from fakepoll.readings"))
    assert published == [1, 1, 1]
    assert count(working_path(warehouse), "select count(*) from fakepoll.readings") == 3
    wh.publish(pipeline, "fakepoll", views=None)
    assert count(warehouse, "select count(*) from fakepoll.readings") == 3


def test_a_poll_publishes_everything_it_loaded_at_its_end(fake, warehouse, monkeypatch):  # noqa: F811
    from pipelines.poll import poll_source
    from tests.pipelines.test_poll import SPEC, polled

    monkeypatch.setenv("DESTINATION__DUCKDB__PUBLISH_EVERY", "1h")  # batches: the first only
    result = poll_source(SPEC, warehouse, every=0.1, duration=1.5, batch=0.3)
    assert result.ok, result
    everything = sorted(polled(fake))
    assert count(warehouse, "select count(*) from fakepoll.readings") == len(everything)
    assert table_counts(warehouse) == table_counts(working_path(warehouse))


from tests.pipelines.test_poll import fake  # noqa: E402, F401 (fixture)


def test_a_program_opening_the_working_file_itself_gets_a_clear_message(
    sk_sandbox, warehouse, capsys
):
    assert run("run", "solarknock") == 0
    capsys.readouterr()
    intruder = child(BI_TOOL, str(working_path(warehouse)), "rw")
    sk_sandbox.update("knocks", n=2)  # a run with something to load (one without does not
    # open the working file for its data; its history row waits in the journal)
    try:
        assert intruder.stdout.readline().strip() == "held"
        assert run("run", "solarknock") == 1
        out = capsys.readouterr().out
        assert f"the warehouse's working file {working_path(warehouse)} is locked" in out
        assert f"PID {intruder.pid}" in out and "never the one in .solarsync/" in out
    finally:
        stop(intruder)
    assert run("run", "solarknock") == 0
    assert_equal_to_truth(sk_sandbox, warehouse)
