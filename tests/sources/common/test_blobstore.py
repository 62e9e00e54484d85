"""The blob store: keys from ids only, atomic commits, owner-only files, stale temp sweep."""

from __future__ import annotations

import hashlib
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from sources.common.blobstore import INCOMING, BlobStore, BlobStoreError, key_part

HOSTILE_IDS = ["..", ".", "", "../../etc/passwd", "a/b", "C:\\x", "/abs", ".hidden", "x\x00y", "~z"]


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def files_under(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file())


@pytest.mark.parametrize("value", ["0ffb4823-cabf-453d-319f-607f752a938e", "lead_42", "A.b-c"])
def test_plain_ids_are_kept(value):
    assert key_part(value) == value


def test_hostile_ids_become_distinct_harmless_names():
    parts = [key_part(v) for v in HOSTILE_IDS] + [key_part("x" * 200)]
    assert len(set(parts)) == len(parts)  # injective
    for part in parts:
        assert part.startswith("~") and len(part) == 65
        assert "/" not in part and "\\" not in part and part not in (".", "..")


def test_commit_is_atomic_private_and_hashed(tmp_path):
    root = tmp_path / "blobs" / "src"
    store = BlobStore(str(root))
    assert mode(tmp_path / "blobs") == 0o700 and mode(root) == 0o700
    key = store.key("lead-1", "../../etc/passwd")
    data = [b"abc" * 1000, b"xyz" * 7]
    with store.receive(key) as blob:
        for chunk in data:
            blob.write(chunk)
        assert store.size(key) is None  # nothing at the key before commit
        location = blob.commit()
    path = Path(location)
    assert path.is_relative_to(root.resolve()) and path.parent.name == "lead-1"
    assert path.read_bytes() == b"".join(data)
    assert blob.sha256 == hashlib.sha256(b"".join(data)).hexdigest() == store.sha256(key)
    assert store.size(key) == sum(map(len, data))
    assert mode(path) == 0o600 and mode(path.parent) == 0o700
    assert files_under(root) == [path]  # no temporary object left


def test_a_failed_or_uncommitted_write_leaves_nothing(tmp_path):
    store = BlobStore(str(tmp_path))
    key = store.key("lead", "file")
    with store.receive(key) as blob:
        blob.write(b"old")
        blob.commit()
    with pytest.raises(RuntimeError), store.receive(key) as blob:
        blob.write(b"partial new bytes")
        raise RuntimeError("connection cut")
    with store.receive(key) as blob:
        blob.write(b"never committed")
    assert (tmp_path / "lead" / "file").read_bytes() == b"old"  # the old blob is untouched
    assert list((tmp_path / INCOMING).iterdir()) == []


def test_keys_cannot_leave_the_root(tmp_path):
    root = tmp_path / "root"
    store = BlobStore(str(root))
    for bad in ("../x", "a/../../x", "/etc/passwd", ".incoming/x", "", "a//b"):
        with pytest.raises(BlobStoreError):
            store.size(bad)
    outside = tmp_path / "outside"
    outside.mkdir()
    os.symlink(outside, root / "planted")  # someone planted a symlink as a lead directory
    with pytest.raises(BlobStoreError), store.receive(store.key("planted", "f")) as blob:
        blob.write(b"x")
        blob.commit()
    assert list(outside.iterdir()) == []


def test_sweep_removes_temporaries_of_dead_writers_only(tmp_path):
    store = BlobStore(str(tmp_path))
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True
    )
    dead_pid = int(dead.stdout)
    host = store._tag.rsplit("-", 1)[0]
    incoming = tmp_path / INCOMING
    (incoming / f"{host}-{dead_pid}-abcd.part").write_bytes(b"partial")
    (incoming / f"{host}-{os.getpid()}-live.part").write_bytes(b"being written")
    (incoming / "otherhost-1-efgh.part").write_bytes(b"maybe in use elsewhere")
    assert store.sweep_incoming() == 1
    assert sorted(p.name for p in incoming.iterdir()) == sorted(
        [f"{host}-{os.getpid()}-live.part", "otherhost-1-efgh.part"]
    )
    assert store.sweep_incoming(max_age_s=-1) == 2  # anything old enough goes


def test_any_fsspec_url(tmp_path):
    store = BlobStore("memory://solarsync-test/blobs")
    key = store.key("lead", "a/b")
    with store.receive(key) as blob:
        blob.write(b"hello")
        location = blob.commit()
    assert location.startswith("memory://") and location.endswith("/lead/" + key_part("a/b"))
    assert store.size(key) == 5 and store.sha256(key) == hashlib.sha256(b"hello").hexdigest()
    assert store.fs.ls(store._incoming) == []
    assert store.remove(key) and store.size(key) is None
    file_store = BlobStore(f"file://{tmp_path}/f")
    assert file_store.local and file_store.location(file_store.key("a")) == f"{tmp_path}/f/a"
