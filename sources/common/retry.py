"""The retry policy of the shared HTTP layer, on dlt's tenacity-based retry helpers: separate
budgets for rate-limit waits and other failures, and an exact wait for the rate-limit reset."""

from __future__ import annotations

from dlt.sources.helpers.requests.retry import _get_retry_response, wait_exponential_retry_after
from tenacity import RetryCallState
from tenacity.stop import stop_base

from sources.common.ratelimit import seconds_until_reset


class StopByKind(stop_base):
    """Separate budgets: rate-limit waits (429) and everything else (5xx, network, bad body)."""

    def __init__(self, max_attempts: int, max_rate_limit_waits: int) -> None:
        self.max_attempts = max_attempts
        self.max_rate_limit_waits = max_rate_limit_waits

    def __call__(self, retry_state: RetryCallState) -> bool:
        counts = retry_state.__dict__.setdefault("_solarsync_counts", {"429": 0, "other": 0})
        response = _get_retry_response(retry_state)
        if response is not None and response.status_code == 429:
            counts["429"] += 1
            return counts["429"] > self.max_rate_limit_waits
        counts["other"] += 1
        return counts["other"] >= self.max_attempts


class WaitForReset(wait_exponential_retry_after):
    """On 429 wait exactly until the window resets; otherwise dlt's backoff (Retry-After aware)."""

    def __call__(self, retry_state: RetryCallState) -> float:
        response = _get_retry_response(retry_state)
        if response is not None and response.status_code == 429:
            wait = getattr(response, "_solarsync_wait", None)
            if wait is None:
                wait = seconds_until_reset(response.headers)
            if wait is not None:
                return float(wait)
        return super().__call__(retry_state)
