"""What every source shares: the HTTP layer, rate limiting, redaction and the error types."""

from sources.common.errors import (
    ApiError,
    AuthenticationError,
    ConfigurationError,
    DestinationError,
    InvalidCursorError,
    LockedError,
    MalformedResponseError,
    RateLimitError,
    ReadOnlyViolation,
    SolarsyncError,
    SourceUnavailableError,
    SubscriptionError,
    solarsync_error_in,
)
from sources.common.http import ApiClient, BearerAuth, reset_stats, stats_for
from sources.common.ratelimit import RateLimiter, limiter_for
from sources.common.redact import install_log_redaction, redact, register_secret

__all__ = [
    "ApiClient",
    "ApiError",
    "AuthenticationError",
    "BearerAuth",
    "ConfigurationError",
    "DestinationError",
    "InvalidCursorError",
    "LockedError",
    "MalformedResponseError",
    "RateLimitError",
    "RateLimiter",
    "ReadOnlyViolation",
    "SolarsyncError",
    "SourceUnavailableError",
    "SubscriptionError",
    "install_log_redaction",
    "limiter_for",
    "redact",
    "register_secret",
    "reset_stats",
    "solarsync_error_in",
    "stats_for",
]
