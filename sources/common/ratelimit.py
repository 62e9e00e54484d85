"""Proactive pacing from ``X-RateLimit-*`` headers, shared by everything that uses one key.

The limiter spends the budget the server announces (``Remaining``) and, once it is used up,
waits until ``Reset`` instead of provoking a 429. ``Reset`` may be epoch seconds or seconds
until the reset; epoch values are read against the server's ``Date`` header so a skewed local
clock does not stretch or shrink the wait. Requests in flight count against the budget, so
concurrent callers (attachment downloads beside list reads) never overrun it.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections.abc import Mapping
from email.utils import parsedate_to_datetime

logger = logging.getLogger(__name__)

_EPOCH_THRESHOLD = 1_000_000_000  # a Reset above this is an epoch timestamp
SAFETY_MARGIN_S = 0.25  # integer-second headers: do not arrive a hair before the reset
DEFAULT_429_WAIT_S = 5.0  # a 429 without usable headers


def _header_float(headers: Mapping[str, str], name: str) -> float | None:
    value = headers.get(name)
    if value is None:
        return None
    try:
        return float(value)
    except ValueError:
        return None


def seconds_until_reset(headers: Mapping[str, str], now: float | None = None) -> float | None:
    """Seconds from now until the window resets: ``X-RateLimit-Reset`` (either style), else
    ``Retry-After`` (seconds or an HTTP date), else None."""
    reset = _header_float(headers, "X-RateLimit-Reset")
    if reset is None:
        return _retry_after(headers, now)
    if reset < _EPOCH_THRESHOLD:
        return max(0.0, reset)
    server_now = now if now is not None else time.time()
    date = headers.get("Date")
    if date:
        try:
            server_now = parsedate_to_datetime(date).timestamp()
        except (TypeError, ValueError):
            pass
    return max(0.0, reset - server_now)


def _retry_after(headers: Mapping[str, str], now: float | None) -> float | None:
    value = headers.get("Retry-After")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        moment = parsedate_to_datetime(value).timestamp()
    except (TypeError, ValueError):
        return None
    return max(0.0, moment - (now if now is not None else time.time()))


class RateLimiter:
    """One request budget (one API key). Thread-safe."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._cond = threading.Condition()
        self.limit: int | None = None
        self._remaining: float | None = None  # None: unknown, let requests through
        self._reset_at: float | None = None  # monotonic
        self._blocked_until = 0.0  # monotonic, set by a 429
        self._inflight = 0
        self.waited_s = 0.0

    def acquire(self) -> None:
        """Block until a request may be sent under the announced budget."""
        with self._cond:
            while True:
                now = time.monotonic()
                if self._reset_at is not None and now >= self._reset_at:
                    self._remaining, self._reset_at = None, None  # new window, budget unknown
                wait = self._blocked_until - now
                if wait <= 0:
                    if self._remaining is None or self._remaining - self._inflight > 0:
                        self._inflight += 1
                        return
                    wait = (self._reset_at or now + DEFAULT_429_WAIT_S) - now
                    wait = max(wait, 0.01)
                if wait > 2:
                    logger.info("%s: rate limit budget used up, waiting %.1fs", self.name, wait)
                self.waited_s += wait
                self._cond.wait(timeout=wait)

    def release(self, headers: Mapping[str, str] | None) -> None:
        """Record the server's view of the budget after a response (None: no response)."""
        with self._cond:
            self._inflight = max(0, self._inflight - 1)
            if headers is not None:
                self._update(headers)
            self._cond.notify_all()

    def _update(self, headers: Mapping[str, str]) -> None:
        limit = _header_float(headers, "X-RateLimit-Limit")
        remaining = _header_float(headers, "X-RateLimit-Remaining")
        delta = seconds_until_reset(headers)
        if limit is not None:
            self.limit = int(limit)
        if remaining is None:
            return
        reset_at = time.monotonic() + delta + SAFETY_MARGIN_S if delta is not None else None
        # responses arrive out of order under concurrency: keep the most pessimistic view
        # of the current window, and start afresh when the server reports another window
        if self._reset_at is None or reset_at is None or abs(reset_at - self._reset_at) > 1:
            self._remaining, self._reset_at = remaining, reset_at
        else:
            self._remaining = min(
                self._remaining if self._remaining is not None else remaining, remaining
            )

    def block_for_429(self, headers: Mapping[str, str]) -> float:
        """A 429 arrived: hold every caller until the reset. Returns the wait in seconds."""
        delta = seconds_until_reset(headers)
        wait = (delta + SAFETY_MARGIN_S) if delta is not None else DEFAULT_429_WAIT_S
        with self._cond:
            self._blocked_until = max(self._blocked_until, time.monotonic() + wait)
            self._remaining = 0
            self._reset_at = self._blocked_until
        return wait


_registry: dict[str, RateLimiter] = {}
_registry_lock = threading.Lock()


def limiter_for(source: str, key: str) -> RateLimiter:
    """The process-wide limiter of one (source, API key): every client of that key shares it."""
    fingerprint = hashlib.sha256(key.encode()).hexdigest()[:12]
    name = f"{source}:{fingerprint}"
    with _registry_lock:
        if name not in _registry:
            _registry[name] = RateLimiter(source)
        return _registry[name]
