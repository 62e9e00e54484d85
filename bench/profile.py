"""Where solarsync's time goes: py-spy samples summarised as shares.

The run is wrapped as ``py-spy record --nonblocking --format raw -- <cmd>`` (no pausing of the
target; every thread is sampled, idle threads are not counted). Each sampled stack is put in
one bucket, first match wins:

* ``gzip of dlt temp files``: the leaf is in ``gzip``/``zlib``: dlt compresses the files
  extract writes and normalize reads back (``data_writer.disable_compression``)
* ``load``: DuckDB and dlt's load step (``dlt/load``, ``dlt/destinations``, ``duckdb``)
* ``normalize``: dlt's normalize step (``dlt/normalize``)
* ``JSON decode``: inside ``_is_malformed`` (the one ``orjson.loads`` per page) or ``json``
* ``validation``: the source's per-row shape check (``validate``)
* ``fetch/HTTP``: ``requests``, ``urllib3``, ``http.client``, ``socket``
* ``dlt extract``: the rest of dlt's extract step (``dlt/extract``: item writers, hints, state)
* ``source code``: the rest of ``sources/`` (paging, key checks, change counts)
* ``startup/other``: imports, CLI, pipeline setup, views

Shares are of sampled *thread* time, so the 4 load threads can together weigh more than the
wall time they took; the harness also reports the step wall times from dlt's own trace.
"""

from __future__ import annotations

import re
import shutil
import sys
from collections import Counter
from pathlib import Path

BUCKETS = (
    "gzip of dlt temp files",
    "fetch/HTTP",
    "JSON decode",
    "validation",
    "source code",
    "dlt extract",
    "normalize",
    "load",
    "startup/other",
)
_FRAME = re.compile(r"^(?P<func>.*?) \((?P<file>[^()]*?)(?::\d+)?\)$")
_HTTP = ("requests/", "urllib3/", "http/client.py", "socket.py", "ssl.py", "selectors.py")


def py_spy() -> str | None:
    here = Path(sys.executable).parent / "py-spy"
    return str(here) if here.exists() else shutil.which("py-spy")


def wrap(cmd: list[str], out: Path, rate: int = 100) -> list[str]:
    """``cmd`` under py-spy, raw (collapsed) stacks to ``out``."""
    exe = py_spy()
    if exe is None:
        raise FileNotFoundError("py-spy is not installed (pip install py-spy)")
    return [
        exe,
        "record",
        "--nonblocking",
        "--subprocesses",
        "--rate",
        str(rate),
        "--format",
        "raw",
        "--output",
        str(out),
        "--",
        *cmd,
    ]


def _frames(stack: str) -> list[tuple[str, str]]:
    frames = []
    for raw in stack.split(";"):
        m = _FRAME.match(raw.strip())
        frames.append((m["func"], m["file"]) if m else (raw, ""))
    return frames


def classify(stack: str) -> str:
    frames = _frames(stack)  # root first, leaf last
    files = [f for _, f in frames]
    funcs = [fn.rsplit(".", 1)[-1] for fn, _ in frames]  # py-spy 0.4 writes Class.method

    def any_file(*parts: str) -> bool:
        return any(p in f for f in files for p in parts)

    leaf = files[-1] if files else ""
    if leaf.endswith("gzip.py") or "zlib" in leaf or "_compression.py" in leaf:
        return "gzip of dlt temp files"
    if any_file("dlt/load/", "dlt/destinations/", "duckdb"):
        return "load"
    if any_file("dlt/normalize/", "dlt/common/normalizers/"):
        return "normalize"
    if any("validate" in fn and "sources/" in f for fn, f in frames):
        return "validation"
    if "_is_malformed" in funcs:  # the leaf while orjson.loads (C code) parses the page
        return "JSON decode"
    if any(
        "json/decoder.py" in f or f.endswith("json/__init__.py") for f in files
    ) and not any_file("dlt/"):
        return "JSON decode"
    if any_file(*_HTTP):
        return "fetch/HTTP"
    if any_file("dlt/extract/"):
        return "source code" if _is_ours(leaf) else "dlt extract"
    return "startup/other"


def _is_ours(path: str) -> bool:
    return any(p in path for p in ("sources/solarknock/", "sources/common/"))


def summarise(raw_file: Path) -> dict:
    """Shares per bucket from a py-spy raw file (``stack count`` per line)."""
    counts: Counter[str] = Counter()
    top: Counter[str] = Counter()
    total = 0
    for line in raw_file.read_text(errors="replace").splitlines():
        stack, _, n = line.rpartition(" ")
        if not stack or not n.isdigit():
            continue
        samples = int(n)
        total += samples
        bucket = classify(stack)
        counts[bucket] += samples
        leaf = stack.rsplit(";", 1)[-1].strip()
        top[f"{bucket}: {leaf}"] += samples
    shares = {b: round(counts[b] / total, 3) if total else 0.0 for b in BUCKETS}
    return {
        "samples": total,
        "shares": shares,
        "top_leaves": [
            {"where": where, "share": round(n / total, 3)} for where, n in top.most_common(12)
        ]
        if total
        else [],
    }
