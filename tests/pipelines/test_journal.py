"""The poll journal: every journaled poll is extracted exactly once, whatever is killed when."""

from __future__ import annotations

import shutil
from pathlib import Path

import dlt
import duckdb

from pipelines.journal import PollJournal, fetch, resource_hints


@dlt.source(name="journaled")
def journaled(start: int = 0):
    @dlt.resource(write_disposition="append")
    def readings():
        yield from ({"n": start + i, "value": float(i)} for i in range(3))

    return readings


def make_pipeline(tmp_path: Path) -> dlt.Pipeline:
    return dlt.pipeline(
        "journal_test",
        destination=dlt.destinations.duckdb(str(tmp_path / "j.duckdb")),
        dataset_name="journaled",
    )


def loaded(tmp_path: Path) -> list[int]:
    con = duckdb.connect(str(tmp_path / "j.duckdb"), read_only=True)
    try:
        return [r[0] for r in con.execute("select n from journaled.readings order by n").fetchall()]
    finally:
        con.close()


def test_polls_are_extracted_as_one_package_exactly_once(tmp_path: Path) -> None:
    pipeline = make_pipeline(tmp_path)
    journal = PollJournal(pipeline, "journaled")
    for start in (0, 10, 20):
        journal.add(fetch(journaled(start)))
    hints = resource_hints(journaled())
    assert journal.extract(hints) == 3
    assert len(pipeline.list_extracted_load_packages()) == 1  # one package for three polls
    pipeline.normalize()
    pipeline.load()
    assert loaded(tmp_path) == [0, 1, 2, 10, 11, 12, 20, 21, 22]
    assert journal.pending() == [] and journal.extract(hints) == 0


def test_a_kill_after_extract_before_cleanup_does_not_duplicate(tmp_path: Path) -> None:
    pipeline = make_pipeline(tmp_path)
    journal = PollJournal(pipeline, "journaled")
    journal.add(fetch(journaled(0)))
    journal.add(fetch(journaled(10)))
    saved = tmp_path / "saved"
    shutil.copytree(journal.directory, saved)
    assert journal.extract(resource_hints(journaled())) == 2
    # as if killed between the package commit and the deletion of the journal files
    shutil.rmtree(journal.directory)
    shutil.copytree(saved, journal.directory)
    (journal.directory / "00000000000000000001.tmp").write_bytes(b"half a pickle")
    pipeline.normalize()
    pipeline.load()
    again = PollJournal(dlt.attach("journal_test"), "journaled")  # the next process
    assert again.pending() == []  # committed in the package's state: deleted, not re-read
    assert list(again.directory.iterdir()) == []  # the torn write is gone too
    journal.add(fetch(journaled(30)))
    assert again.extract(resource_hints(journaled())) == 1
    pipeline.normalize()
    pipeline.load()
    assert loaded(tmp_path) == [0, 1, 2, 10, 11, 12, 30, 31, 32]


def test_a_kill_before_the_package_commit_keeps_the_polls(tmp_path: Path) -> None:
    pipeline = make_pipeline(tmp_path)
    journal = PollJournal(pipeline, "journaled")
    journal.add(fetch(journaled(0)))
    # an extract that failed (e.g. killed) commits nothing: the file stays for the next one
    assert journal.extract({}) == 0
    assert len(journal.pending()) == 1
    assert journal.extract(resource_hints(journaled())) == 1
    pipeline.normalize()
    pipeline.load()
    assert loaded(tmp_path) == [0, 1, 2]
