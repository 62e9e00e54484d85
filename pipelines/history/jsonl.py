"""The run history's journal: ``<dlt data dir>/solarsync/sync_runs.jsonl``, one JSON object a
line, appended and fsynced under a lock; a line torn by a crash is skipped, never joined to the
next. Read from an offset (the loader) or from the end backwards (``status``)."""

from __future__ import annotations

import fcntl
import json
import logging
import os
import uuid
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import dlt

logger = logging.getLogger("solarsync")

JOURNAL_NAME = "sync_runs.jsonl"
_CHUNK = 64 * 1024
_REQUIRED = ("run_id", "source", "command", "status")


def journal_path() -> Path:
    return Path(dlt.current.run_context().data_dir) / "solarsync" / JOURNAL_NAME


def journal_id(path: Path | None = None) -> str:
    """A random id of this journal (``<journal>.id``, made once): load offsets are kept per
    journal, since several hosts may load their own journals into one destination."""
    path = Path(f"{path or journal_path()}.id")
    for _ in range(2):
        try:
            return path.read_text().strip()
        except FileNotFoundError:
            path.parent.mkdir(parents=True, exist_ok=True)
            try:
                with open(path, "x") as handle:
                    handle.write(uuid.uuid4().hex)
            except FileExistsError:
                continue  # another process made it first: read theirs
    return path.read_text().strip()


def append(row: dict[str, Any], path: Path | None = None) -> None:
    """Add ``row`` to the journal: one line, written and fsynced under an exclusive lock."""
    path = path or journal_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    data = (json.dumps(row, ensure_ascii=False, default=str) + "\n").encode()
    created = not path.exists()
    fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        size = os.fstat(fd).st_size
        if size and os.pread(fd, 1, size - 1) != b"\n":
            data = b"\n" + data  # a line torn by a crash stays alone (skipped when read)
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        os.fsync(fd)
    finally:
        os.close(fd)  # releases the lock
    if created:
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)


def _parse(line: bytes) -> dict[str, Any] | None:
    if not line.strip():
        return None
    try:
        row = json.loads(line)
    except ValueError:
        logger.warning("run history: skipping a damaged journal line (%d bytes)", len(line))
        return None
    if not isinstance(row, dict) or not all(isinstance(row.get(k), str) for k in _REQUIRED):
        logger.warning("run history: skipping a journal line without %s", ", ".join(_REQUIRED))
        return None
    return row


def read(path: Path | None = None, offset: int = 0) -> tuple[list[dict[str, Any]], int]:
    """The complete rows after byte ``offset``, oldest first, and the offset after them (a
    last line still being written is left for the next read)."""
    path = path or journal_path()
    try:
        with open(path, "rb") as handle:
            if offset > os.fstat(handle.fileno()).st_size:
                offset = 0  # the journal was replaced: read it again (loads are idempotent)
            handle.seek(offset)
            data = handle.read()
    except FileNotFoundError:
        return [], 0
    end = data.rfind(b"\n") + 1
    rows = [row for line in data[:end].split(b"\n") if (row := _parse(line)) is not None]
    return rows, offset + end


def read_newest_first(path: Path | None = None) -> Iterator[dict[str, Any]]:
    """Rows from the end of the journal backwards (``status`` reads only what it needs)."""
    path = path or journal_path()
    try:
        handle = open(path, "rb")
    except FileNotFoundError:
        return
    with handle:
        pos = os.fstat(handle.fileno()).st_size
        tail = b""
        while pos > 0:
            step = min(_CHUNK, pos)
            pos -= step
            handle.seek(pos)
            lines = (handle.read(step) + tail).split(b"\n")
            tail = lines.pop(0)  # may be the end of a line that starts in the previous chunk
            for line in reversed(lines):
                if (row := _parse(line)) is not None:
                    yield row
        if (row := _parse(tail)) is not None:
            yield row


def last_runs(
    sources: Iterable[str | tuple[str, str]], path: Path | None = None
) -> dict[Any, tuple[dict | None, dict | None]]:
    """Per source, or per ``(source, account)``: (its newest run, its newest successful run),
    from the journal. A row written before accounts is the account ``default``'s."""
    wanted = set(sources)
    last: dict[Any, dict] = {}
    last_ok: dict[Any, dict] = {}
    for row in read_newest_first(path):
        source = row.get("source")
        keys = [k for k in (source, (source, row.get("account") or "default")) if k in wanted]
        for key in keys:
            last.setdefault(key, row)
            if row.get("status") == "ok":
                last_ok.setdefault(key, row)
        if len(last_ok) == len(wanted):
            break
    return {s: (last.get(s), last_ok.get(s)) for s in wanted}


# --------------------------------------------------------------------------- loading
