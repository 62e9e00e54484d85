"""Issue 12 as it is checked, every party a separate process: while a BI tool holds a connection
to the published file (the path the user configured), first read-only and then read-write,
runs of several sources and a ``solarsync poll`` of several batches go on. Every run exits 0, a
connection opened after each run sees that run's rows equal to the source's truth, the held
connection keeps answering its snapshot, and a run killed during a publish loses nothing."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import duckdb

from tests.pipelines.test_poll import CHILD, fake, polled  # noqa: F401 (fixture)
from tests.pipelines.test_publish import BI_TOOL, KILLED_IN_PUBLISH, ask, child, stop
from tests.sources.solarknock.warehouse_check import assert_equal_to_truth

REPO = Path(__file__).resolve().parents[2]
SNAPSHOT_SQL = (
    "select (select count(*) from solarknock.knocks), (select count(*) from fakepoll.readings), "
    "(select count(*) from solarknock._dlt_loads), (select max(poll) from fakepoll.readings)"
)


def solarsync(*args: str, env: dict[str, str] | None = None) -> subprocess.Popen:
    """``solarsync ARGS`` in its own process (the fake poll source registered)."""
    return subprocess.Popen(
        [sys.executable, "-c", CHILD, "--no-progress", *args],
        cwd=REPO,
        env={**os.environ, **(env or {})},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def finish(proc: subprocess.Popen, timeout: float = 180) -> str:
    out, err = proc.communicate(timeout=timeout)
    assert proc.returncode == 0, f"exit {proc.returncode}\n{out}\n{err[-3000:]}"
    return out


def fakepoll_rows(path: Path) -> list[int]:
    con = duckdb.connect(str(path), read_only=True)  # a connection opened after the run
    try:
        return [
            r[0] for r in con.execute("select poll from fakepoll.readings order by poll").fetchall()
        ]
    finally:
        con.close()


def test_runs_and_polls_go_on_while_a_bi_tool_holds_the_published_file(
    sk_sandbox,
    fake,  # noqa: F811 (the fixture imported above)
    isolated_dlt,
):
    published = isolated_dlt / "warehouse.duckdb"
    assert os.environ["DESTINATION__DUCKDB__CREDENTIALS"] == str(published)
    finish(solarsync("run", "solarknock"))
    finish(solarsync("run", "fakepoll"))

    for mode in ("ro", "rw"):
        tool = child(BI_TOOL, str(published), mode)
        try:
            assert tool.stdout.readline().strip() == "held", mode
            snapshot = ask(tool, SNAPSHOT_SQL)
            assert snapshot.startswith("[("), snapshot

            def held_snapshot_unchanged() -> None:
                assert ask(tool, SNAPSHOT_SQL) == snapshot, mode  # noqa: B023

            # a nightly run of one source
            sk_sandbox.update("knocks", n=25)
            sk_sandbox.soft_delete("leads", n=2)
            sk_sandbox.insert("appointments", n=3)
            finish(solarsync("run", "solarknock"))
            assert_equal_to_truth(sk_sandbox, published)
            held_snapshot_unchanged()

            # another source, then a poll of several batches with a run of SolarKnock beside it
            finish(solarsync("run", "fakepoll"))
            assert fakepoll_rows(published) == polled(fake)
            held_snapshot_unchanged()
            sk_sandbox.insert("knocks", n=10)
            poll = solarsync(
                "poll", "fakepoll", "--every", "0.2s", "--for", "3s", "--batch", "0.5s",
                env={"DESTINATION__DUCKDB__PUBLISH_EVERY": "1ms"},
            )  # fmt: skip
            time.sleep(0.5)
            beside = solarsync("run", "solarknock")
            out = finish(poll)
            assert out.count("  batch ") >= 2, out
            finish(beside)
            assert fakepoll_rows(published) == polled(fake)
            assert_equal_to_truth(sk_sandbox, published)
            held_snapshot_unchanged()

            # a run killed in the middle of its publish: the file BI tools open stays whole
            before = fakepoll_rows(published), sk_sandbox_counts(published)
            sk_sandbox.update("knocks", n=7)
            mark = isolated_dlt / f"mark-{mode}"
            killed = subprocess.Popen(
                [sys.executable, "-c", KILLED_IN_PUBLISH],
                cwd=REPO,
                env={**os.environ, "PUBLISH_MARK": str(mark)},
            )
            try:
                deadline = time.monotonic() + 120
                while not mark.exists() and killed.poll() is None:
                    assert time.monotonic() < deadline, "the run never reached its publish"
                    time.sleep(0.05)
            finally:
                killed.kill()
                killed.wait()
            assert (fakepoll_rows(published), sk_sandbox_counts(published)) == before
            finish(solarsync("run", "solarknock"))
            assert_equal_to_truth(sk_sandbox, published)
            held_snapshot_unchanged()
        finally:
            stop(tool)


def sk_sandbox_counts(path: Path) -> tuple[int, int]:
    con = duckdb.connect(str(path), read_only=True)
    try:
        return con.execute(
            "select count(*), count(*) filter (where deleted_at is not null) from solarknock.knocks"
        ).fetchone()
    finally:
        con.close()
