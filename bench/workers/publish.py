"""``python -m bench.workers.publish WAREHOUSE``: one nightly ``run solarknock`` in this
process (the sandbox and the loaded warehouse are the harness's), then each way of publishing
its working file, timed in this same process so the ratios hold on a noisy machine. Prints one
JSON line.

- nightly: ``run_source`` wall time and what its own publish took (method, bytes, seconds)
- each method, best of 3, fsync included: reflink (where the file system has one),
  ``copy_file_range``, a plain read/write copy, DuckDB's compacting ``COPY FROM DATABASE`` into
  the configured storage version (what a compacting publish writes) and into DuckDB's newest
  (the cost of the storage version, in this same process)
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import time
from pathlib import Path
from typing import Any

REPEATS = 3


def _best(fn: Any, dst: Path) -> float:
    times = []
    for _ in range(REPEATS):
        dst.unlink(missing_ok=True)
        started = time.perf_counter()
        fn()
        from pipelines.destinations.duckdb.files import fsync_file

        fsync_file(dst)
        times.append(time.perf_counter() - started)
    dst.unlink(missing_ok=True)
    return min(times)


def main(argv: list[str]) -> int:
    from pipelines import registry
    from pipelines.destinations.duckdb import DuckDBWarehouse, publish
    from pipelines.sync import run_source

    path = Path(argv[0])
    warehouse = DuckDBWarehouse(path)
    started = time.perf_counter()
    result = run_source(registry.get("solarknock"), warehouse)
    nightly_s = time.perf_counter() - started
    out: dict[str, Any] = {"ok": result.ok, "error": result.error, "nightly_s": nightly_s}
    info = warehouse.last_published
    if not result.ok or info is None:
        print(json.dumps(out))
        return 1
    work = warehouse.load_path
    size = work.stat().st_size
    share, free_bytes = publish.free_share(work)
    from pipelines.destinations.duckdb.storage import file_version

    out.update(
        bytes=size,
        storage_version=file_version(work),
        free_share=round(share, 3),
        run_publish={
            "method": info.method,
            "seconds": info.seconds,
            "total_seconds": info.total_seconds,
            "bytes": info.bytes,
        },
    )
    dst = path.with_name(f".{path.name}.bench")

    def reflink() -> None:
        with open(work, "rb") as fin, open(dst, "wb") as fout:
            import fcntl

            fcntl.ioctl(fout.fileno(), publish.FICLONE, fin.fileno())

    def copy_file_range() -> None:
        with open(work, "rb") as fin, open(dst, "wb") as fout:
            done = 0
            while done < size:
                n = os.copy_file_range(fin.fileno(), fout.fileno(), size - done)
                if n == 0:
                    break
                done += n

    def plain() -> None:
        with open(work, "rb") as fin, open(dst, "wb") as fout:
            shutil.copyfileobj(fin, fout, 8 * 1024 * 1024)

    def compact() -> None:
        publish.compact_copy(work, dst, "1GB", warehouse.storage_version)

    def compact_newest() -> None:
        publish.compact_copy(work, dst, "1GB", "latest")

    methods: dict[str, Any] = {}
    for name, fn in (
        ("reflink", reflink),
        ("copy_file_range", copy_file_range),
        ("plain copy", plain),
        ("compacting copy", compact),
        ("compacting copy, DuckDB's newest format", compact_newest),
    ):
        try:
            seconds = _best(fn, dst)
        except OSError as exc:
            methods[name] = {"error": f"{type(exc).__name__}: {exc.strerror or exc}"}
            continue
        methods[name] = {
            "seconds": round(seconds, 4),
            "s_per_gb": round(seconds / (size / 1e9), 3),
            "share_of_nightly": round(seconds / nightly_s, 4),
        }
        if name.startswith("compacting copy"):
            fn()
            methods[name]["bytes"] = dst.stat().st_size
            dst.unlink(missing_ok=True)
    out["methods"] = methods
    out["run_publish"]["s_per_gb"] = round(info.seconds / (info.bytes / 1e9), 3)
    out["run_publish"]["share_of_nightly"] = round(info.total_seconds / nightly_s, 4)
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
