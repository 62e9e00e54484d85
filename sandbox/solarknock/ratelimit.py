"""Per-org rate limit of the SolarKnock sandbox.

The reference says: "Default 60 requests/minute; burst up to 120 in any 60-second window."
Modelled as **fixed 60-second windows** aligned on the server clock's epoch minutes, each
admitting ``per_minute`` requests, plus a **sliding cap** of ``burst`` admitted requests in any
60 seconds (monotonic clock). Fixed windows alone allow up to 2 x ``per_minute`` in a sliding
minute (end of one window + start of the next): that is the documented burst of 120 for 60/min,
so the default ``burst`` is ``2 * per_minute`` and the cap only binds when set lower. Hence, by
construction, admitted requests never exceed ``burst`` in any sliding 60 s.

Only admitted requests consume quota; rejected ones (429) do not, but they are logged.

Headers on every response: ``X-RateLimit-Limit`` (= per_minute), ``X-RateLimit-Remaining``
(what is left now, under both rules) and ``X-RateLimit-Reset``: when the quota next frees up,
i.e. the end of the current window or, when the sliding cap is the binding rule, the moment
its oldest request leaves it. As integer epoch seconds of the *server* clock (reset_style
"epoch", rounded up) or integer seconds from now ("delta", rounded up). No ``Retry-After``.
Disabled (the default): a huge limit is advertised and nothing is refused.
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from collections.abc import Callable

DISABLED_LIMIT = 1_000_000
WINDOW = 60.0


class RateLimiter:
    def __init__(self, clock: Callable[[], float]) -> None:
        """``clock()`` returns the server's epoch seconds (real time + skew)."""
        self._clock = clock
        self._lock = threading.Lock()
        self.per_minute: int | None = None
        self.burst: int | None = None
        self.reset_style = "epoch"
        self.window = WINDOW  # seconds; tests shorten it to exercise resets quickly
        self._window = -1
        self._count = 0
        self._recent: deque[float] = deque()

    def configure(
        self,
        per_minute: int | None,
        burst: int | None = None,
        reset_style: str = "epoch",
        window: float = WINDOW,
    ) -> None:
        """``per_minute`` requests per fixed window of ``window`` seconds (60: the real API)."""
        if reset_style not in ("epoch", "delta"):
            raise ValueError("reset_style must be 'epoch' or 'delta'")
        if per_minute is not None and int(per_minute) < 1:
            raise ValueError("per_minute must be >= 1 (or None to disable)")
        if burst is not None and int(burst) < 1:
            raise ValueError("burst must be >= 1")
        with self._lock:
            self.per_minute = None if per_minute is None else int(per_minute)
            self.burst = (
                None
                if per_minute is None
                else (2 * self.per_minute if burst is None else int(burst))
            )
            self.reset_style = reset_style
            self.window = float(window)
            self._window = -1
            self._count = 0
            self._recent.clear()

    def hit(self, consume: bool = True) -> tuple[bool, dict[str, str]]:
        """Admit (and count) one request or refuse it; returns (allowed, headers)."""
        now = self._clock()
        mono = time.monotonic()
        with self._lock:
            size = self.window
            window = int(now // size)
            window_end = (window + 1) * size
            if self.per_minute is None:
                return True, self._headers(DISABLED_LIMIT, DISABLED_LIMIT, window_end, now)
            if window != self._window:
                self._window, self._count = window, 0
            recent = self._recent
            while recent and recent[0] <= mono - size:
                recent.popleft()
            limit, burst = self.per_minute, self.burst
            assert burst is not None
            allowed = self._count < limit and len(recent) < burst
            if allowed and consume:
                self._count += 1
                recent.append(mono)
            remaining = max(0, min(limit - self._count, burst - len(recent)))
            reset = window_end
            if len(recent) >= burst:
                free_at = now + (recent[len(recent) - burst] + size - mono)
                reset = max(free_at, window_end) if self._count >= limit else free_at
            return allowed, self._headers(limit, remaining, reset, now)

    def _headers(self, limit: int, remaining: int, reset: float, now: float) -> dict[str, str]:
        if self.reset_style == "delta":
            value = max(0, math.ceil(reset - now))
        else:
            value = math.ceil(reset)
        return {
            "X-RateLimit-Limit": str(limit),
            "X-RateLimit-Remaining": str(remaining),
            "X-RateLimit-Reset": str(value),
        }
