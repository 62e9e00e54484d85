"""What a gateway connection remembers between runs, on disk, outside the warehouse.

One JSON file per gateway (name + host) under ``<dlt data dir>/solarsync/tesla/`` (directory
0700, files 0600, written atomically):

* ``fingerprint``: the certificate recorded on first use (trust on first use);
* ``session``: the login token and cookies, so a cron job does not log in every run (the
  gateway rate limits logins and locks out clients that log in too often);
* ``login_not_before``: after a login answered 429, no process logs in before this instant.

Never in dlt state (which is loaded into the warehouse) and never in a log line.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import re
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any


def default_directory() -> Path:
    import dlt

    return Path(dlt.current.run_context().data_dir) / "solarsync" / "tesla"


class GatewayStore:
    """The state file of one gateway. Read/modify/write under :meth:`locked` when several
    processes may touch it (a cron run and a ``solarsync check``)."""

    def __init__(self, directory: Path, name: str, host: str) -> None:
        self.directory = Path(directory)
        slug = re.sub(r"[^A-Za-z0-9_.-]+", "_", name)[:40] or "gateway"
        digest = hashlib.sha256(f"{name}\0{host}".encode()).hexdigest()[:12]
        self.path = self.directory / f"{slug}-{digest}.json"
        self.name = name
        self.host = host

    def _ensure_dir(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        os.chmod(self.directory, 0o700)

    def load(self) -> dict[str, Any]:
        try:
            data = json.loads(self.path.read_text())
        except FileNotFoundError:
            return {}
        except (OSError, ValueError):
            return {}  # a damaged file costs one login and a re-recorded fingerprint warning
        return data if isinstance(data, dict) else {}

    def save(self, data: dict[str, Any]) -> None:
        self._ensure_dir()
        payload = {"gateway": self.name, "host": self.host, **data}
        fd, tmp = tempfile.mkstemp(dir=self.directory, prefix=".tmp-", suffix=".json")
        try:
            os.fchmod(fd, 0o600)
            with os.fdopen(fd, "w") as handle:
                json.dump(payload, handle, indent=1, sort_keys=True)
            os.replace(tmp, self.path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise

    def update(self, **changes: Any) -> dict[str, Any]:
        data = self.load()
        for key, value in changes.items():
            if value is None:
                data.pop(key, None)
            else:
                data[key] = value
        self.save(data)
        return data

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        """Exclusive across processes (a login decision is made by one process at a time)."""
        self._ensure_dir()
        lock_path = self.path.with_suffix(".lock")
        with open(lock_path, "a+") as handle:
            os.chmod(lock_path, 0o600)
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)


__all__ = ["GatewayStore", "default_directory"]
