"""Request counters per source and account, read by the CLI's end-of-run summary.

``stats_for("solarknock")`` is the counters of the account the calling thread runs
(``sources.common.accounts.scope``); the single-account configuration's are the source's own.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

from sources.common import accounts


@dataclass
class HttpStats:
    requests: int = 0
    retries: int = 0
    rate_limited: int = 0
    errors: int = 0
    bytes_received: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def add(self, **counts: int) -> None:
        with self._lock:
            for name, value in counts.items():
                setattr(self, name, getattr(self, name) + value)

    def as_dict(self) -> dict[str, int]:
        return {
            "requests": self.requests,
            "retries": self.retries,
            "rate_limited": self.rate_limited,
            "errors": self.errors,
            "bytes_received": self.bytes_received,
        }


_stats: dict[str, HttpStats] = {}
_stats_lock = threading.Lock()


def _key(source: str) -> str:
    account = accounts.current(source)
    return source if account == accounts.DEFAULT else f"{source}/{account}"


def stats_for(source: str) -> HttpStats:
    """Process-wide request counters of one source, for the account this thread runs (read by
    the CLI's run summary)."""
    with _stats_lock:
        return _stats.setdefault(_key(source), HttpStats())


def reset_stats(source: str | None = None) -> None:
    with _stats_lock:
        if source is None:
            _stats.clear()
        else:
            _stats.pop(_key(source), None)
