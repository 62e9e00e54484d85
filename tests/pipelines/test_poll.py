"""``solarsync poll``: polls extracted one by one, loaded in batches, on time, on a signal and
after a kill; failing polls logged and skipped; a rejected credential stops the loop."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import pytest

from pipelines import cli, registry
from pipelines.registry import SourceSpec
from pipelines.settings import parse_duration

REPO = Path(__file__).resolve().parents[2]
SPEC = SourceSpec(
    name="fakepoll",
    module="tests.pipelines.fake_poll_source",
    tables=("readings", "catalog"),
    required=(),
    poll_resources=("readings",),
)
#: runs the CLI in a child process with the fake source registered
CHILD = (
    "import sys; from pipelines import cli, registry; "
    "from tests.pipelines.test_poll import SPEC; registry.SOURCES['fakepoll'] = SPEC; "
    "sys.exit(cli.main(sys.argv[1:]))"
)


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    monkeypatch.setitem(registry.SOURCES, "fakepoll", SPEC)
    log = tmp_path / "polls.log"
    monkeypatch.setenv("FAKE_POLL_LOG", str(log))
    return log


def polled(log: Path) -> list[int]:
    return [int(n) for n in log.read_text().split()] if log.exists() else []


def loaded(tmp_path: Path) -> list[int]:
    con = duckdb.connect(str(tmp_path / "warehouse.duckdb"), read_only=True)
    try:
        return [
            row[0]
            for row in con.execute("SELECT poll FROM fakepoll.readings ORDER BY poll").fetchall()
        ]
    finally:
        con.close()


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("60s", 60),
        ("5m", 300),
        ("1h30m", 5400),
        ("0.5s", 0.5),
        ("90", 90),
        ("250ms", 0.25),
        ("1d", 86400),
    ],
)
def test_parse_duration(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "0s", "abc", "5 minutes", "-1s", "5x", "s"])
def test_parse_duration_refuses(text: str) -> None:
    with pytest.raises(ValueError, match="not a duration"):
        parse_duration(text)


def test_poll_loads_every_poll_once_in_batches(fake: Path, tmp_path: Path, capsys) -> None:
    code = cli.main(["poll", "fakepoll", "--every", "0.05s", "--for", "2s", "--batch", "0.2s"])
    out = capsys.readouterr().out
    assert code == 0, out
    polls = polled(fake)
    assert len(polls) >= 3
    assert loaded(tmp_path) == polls  # every poll landed, none twice
    assert out.count("  batch ") >= 2, out  # loaded during the loop, not only at the end
    assert "stopped by time" in out
    con = duckdb.connect(str(tmp_path / "warehouse.duckdb"), read_only=True)
    # the first poll took every table, later polls only the poll resources
    assert con.execute("SELECT count(*) FROM fakepoll.catalog").fetchone()[0] == 1
    con.close()


def test_failed_poll_is_skipped_and_reported(
    fake: Path, tmp_path: Path, monkeypatch, capsys
) -> None:
    monkeypatch.setenv("FAKE_POLL_FAIL", "2:api")
    code = cli.main(["poll", "fakepoll", "--every", "0.02s", "--for", "2s", "--batch", "1h"])
    out = capsys.readouterr().out
    assert code == 1, out  # a poll failed: say so through the exit code
    assert "1 failed" in out and "/readings" in out
    assert 2 not in loaded(tmp_path)
    assert loaded(tmp_path) == [n for n in polled(fake) if n != 2]  # the others all landed


def test_rejected_credential_stops_the_loop(
    fake: Path, tmp_path: Path, monkeypatch, capsys
) -> None:
    monkeypatch.setenv("FAKE_POLL_FAIL", "3:auth")
    code = cli.main(["poll", "fakepoll", "--every", "0.01s", "--for", "30s", "--batch", "1h"])
    out = capsys.readouterr().out
    assert code == 1, out
    assert polled(fake) == [1, 2, 3]  # no fourth poll against a rejected key
    assert loaded(tmp_path) == [1, 2]  # what was polled before is kept
    assert "stopped by error" in out


def test_sigterm_loads_and_exits_cleanly(fake: Path, tmp_path: Path) -> None:
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, "poll", "fakepoll", "--every", "0.05s", "--batch", "1h"],
        cwd=REPO,
        env=os.environ,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 60
    while len(polled(fake)) < 4 and time.monotonic() < deadline and child.poll() is None:
        time.sleep(0.05)
    child.send_signal(signal.SIGTERM)
    out, err = child.communicate(timeout=60)
    assert child.returncode == 0, out + err
    assert "stopped by signal" in out
    assert loaded(tmp_path) == polled(fake)  # the batch was loaded on the way out


def test_kill_between_loads_loses_no_poll(fake: Path, tmp_path: Path, capsys) -> None:
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, "poll", "fakepoll", "--every", "0.02s", "--batch", "1h"],
        cwd=REPO,
        env=os.environ,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 60
    while len(polled(fake)) < 6 and time.monotonic() < deadline:
        time.sleep(0.02)
    child.send_signal(signal.SIGKILL)
    child.wait(timeout=30)
    before = polled(fake)
    assert len(before) >= 6
    # the next poll process loads what the killed one extracted, then polls on
    code = cli.main(["poll", "fakepoll", "--every", "0.02s", "--for", "0.05s", "--batch", "1h"])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "completed" in out and "left by an interrupted run" in out
    rows = loaded(tmp_path)
    assert len(rows) == len(set(rows))  # nothing twice
    # every poll extracted before the kill landed; at most the one in flight was lost
    assert set(before) - set(rows) <= {before[-1]}
    assert set(polled(fake)[len(before) :]) <= set(rows)


def test_repeated_failures_back_off(fake: Path, tmp_path: Path, monkeypatch, capsys) -> None:
    """A source that keeps failing is polled less and less often, not every --every."""
    monkeypatch.setenv("FAKE_POLL_FAIL", ",".join(f"{n}:api" for n in range(1, 100)))
    code = cli.main(["poll", "fakepoll", "--every", "0.05s", "--for", "1.2s", "--batch", "1h"])
    assert code == 1
    # without back-off: ~24 polls in 1.2 s; with it the waits are 0.05, 0.1, 0.2, 0.4, 0.8 s
    assert len(polled(fake)) <= 7, polled(fake)
    assert "polls in a row failed; next poll in" in capsys.readouterr().err


def test_polls_go_on_while_a_batch_loads(fake: Path, tmp_path: Path, monkeypatch, capsys) -> None:
    import threading

    import dlt

    original = dlt.Pipeline.load
    during: list[tuple[int, int]] = []
    released = threading.Event()

    def slow_load(self, *args, **kwargs):
        if not during:  # the first batch: hold the load until two more polls were taken
            before = len(polled(fake))
            deadline = time.monotonic() + 30
            while len(polled(fake)) < before + 2 and time.monotonic() < deadline:
                time.sleep(0.01)
            during.append((before, len(polled(fake))))
            released.set()
        return original(self, *args, **kwargs)

    monkeypatch.setattr(dlt.Pipeline, "load", slow_load)
    code = cli.main(["poll", "fakepoll", "--every", "0.02s", "--for", "1.5s", "--batch", "0.1s"])
    assert code == 0, capsys.readouterr().out
    assert released.is_set()
    before, after = during[0]
    assert after >= before + 2  # polls were taken while the batch was loading
    assert loaded(tmp_path) == polled(fake)  # and every one of them landed
