"""Peak RSS growth while one large lead attachment streams into the blob store.

    .venv/bin/python bench/attachment_rss.py            # a 512 MiB file
    .venv/bin/python bench/attachment_rss.py --size-mb 1024 --keep

The sandbox runs in its own process (its memory is not ours); the file is fetched through the
pipeline's own code path (``AttachmentSync``: the shared ``ApiClient`` with its limiter and
retries, streaming into ``BlobStore``), while a thread samples this process's RSS every 2 ms.
Reports the RSS before, the peak during and the growth, the throughput, and checks the stored
bytes against the sandbox's sha256. Target: growth under 50 MB, whatever the file size.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
KEY = "sk_BENCHKEY01"
PAGE = os.sysconf("SC_PAGE_SIZE")


def rss_bytes() -> int:
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * PAGE


class Sampler(threading.Thread):
    def __init__(self, interval: float = 0.002) -> None:
        super().__init__(daemon=True)
        self.interval, self.peak, self._stop_event = interval, rss_bytes(), threading.Event()

    def run(self) -> None:
        while not self._stop_event.wait(self.interval):
            self.peak = max(self.peak, rss_bytes())

    def stop(self) -> int:
        self._stop_event.set()
        self.join()
        return max(self.peak, rss_bytes())


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def admin(base: str, action: str, payload: dict | None = None) -> object:
    url = f"{base}/__admin/{action}"
    data = None if payload is None else json.dumps(payload).encode()
    request = urllib.request.Request(url, data=data, method="POST" if data else "GET")
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size-mb", type=int, default=512, help="file size in MiB (>= 500)")
    parser.add_argument("--keep", action="store_true", help="keep the blob directory")
    args = parser.parse_args()
    size = args.size_mb << 20

    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "sandbox", "solarknock", "--port", str(port), "--api-key", KEY]
        + ["--leads", "5", "--knocks", "10"],
        cwd=REPO,
        stdout=subprocess.PIPE,
        text=True,
    )
    blobs = Path(tempfile.mkdtemp(prefix="solarsync-rss-"))
    try:
        assert server.stdout is not None
        while "base URL" not in (line := server.stdout.readline()):
            if not line:
                raise SystemExit("the sandbox did not start")
        base_url = line.split()[-1]
        host = f"http://127.0.0.1:{port}"
        lead = next(row for row in admin(host, "truth/leads") if row.get("attachments"))
        file = lead["attachments"][0]
        admin(
            host,
            "set_attachment_size",
            {"lead_id": lead["id"], "file_id": file["id"]} | {"size": size, "touch": False},
        )

        from sandbox.solarknock.data import attachment_sha256
        from sources.solarknock.attachments import Attachment, AttachmentsConfig, AttachmentSync
        from sources.solarknock.client import SolarKnockClient

        client = SolarKnockClient(KEY, base_url, page_size=10)
        sync = AttachmentSync(client, AttachmentsConfig(blob_url=str(blobs)))
        att = Attachment(
            lead["id"],
            file["id"],
            file["fileName"],
            file["mimeType"],
            size,
            file["uploadedAt"],
            file["uploadedBy"],
            file["download_url"],
            lead["updated_at"],
        )
        sync.store  # noqa: B018  (the blob root exists before we measure)
        before = rss_bytes()
        sampler = Sampler()
        sampler.start()
        started = time.perf_counter()
        row = sync._process_one(att, None)
        elapsed = time.perf_counter() - started
        peak = sampler.stop()
        expected = attachment_sha256(lead["id"], file["id"], file["mimeType"], size)
        stored = Path(row["blob_path"])
        ok = row["status"] == "stored" and row["sha256"] == expected
        ok = ok and stored.stat().st_size == size
        print(f"file:            {size / 2**20:.0f} MiB ({row['status']}, sha256 ok: {ok})")
        print(f"download:        {elapsed:.1f} s, {size / 2**20 / elapsed:.0f} MiB/s")
        print(f"RSS before:      {before / 2**20:.1f} MiB")
        print(f"RSS peak during: {peak / 2**20:.1f} MiB")
        print(f"peak RSS growth: {(peak - before) / 2**20:.1f} MiB (target < 50 MB)")
        print(
            f"ru_maxrss:       {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.1f} MiB"
        )
        return 0 if ok and peak - before < 50_000_000 else 1
    finally:
        server.terminate()
        server.wait(timeout=30)
        if args.keep:
            print(f"blobs kept in {blobs}")
        else:
            shutil.rmtree(blobs, ignore_errors=True)


if __name__ == "__main__":
    raise SystemExit(main())
