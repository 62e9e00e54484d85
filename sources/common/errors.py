"""The one exception hierarchy of solarsync.

Every error raised by a source derives from :class:`SolarsyncError` and carries the source
name, the endpoint and a hint that tells the user what to do. Messages are built from those
parts only, never from a URL with a query string, a header or a raw body, so no secret can
leak through ``str(exc)`` or a traceback (the shared HTTP layer redacts what it passes in).
"""

from __future__ import annotations


class SolarsyncError(Exception):
    """Base class. ``str()`` is a one-line message: source, endpoint, what happened, what to do."""

    #: process exit code the CLI uses when this error ends a source
    exit_code = 1

    def __init__(
        self,
        message: str,
        *,
        source: str | None = None,
        endpoint: str | None = None,
        code: str | None = None,
        status: int | None = None,
        hint: str | None = None,
    ) -> None:
        self.source = source
        self.endpoint = endpoint
        self.code = code
        self.status = status
        self.hint = hint
        self.detail = message
        super().__init__(self._compose())

    def _compose(self) -> str:
        where = " ".join(p for p in (self.source, self.endpoint) if p)
        what = self.detail
        if self.status is not None or self.code:
            tag = " ".join(str(p) for p in (self.status, self.code) if p is not None)
            what = f"{what} [{tag}]"
        text = f"{where}: {what}" if where else what
        if self.hint:
            text = f"{text}. {self.hint}"
        return text

    def __reduce__(self):  # keep keyword-only fields when pickled across processes
        return (_rebuild, (type(self), self.detail, self.__dict__.copy()))


def _rebuild(cls: type[SolarsyncError], message: str, state: dict) -> SolarsyncError:
    exc = cls.__new__(cls)
    Exception.__init__(exc, message)
    exc.__dict__.update(state)
    exc.args = (exc._compose(),)
    return exc


class ConfigurationError(SolarsyncError):
    """A setting is missing or invalid: nothing was requested."""

    exit_code = 78  # EX_CONFIG


class AuthenticationError(SolarsyncError):
    """401/403: the credential is missing, unknown, revoked or lacks permission. Never retried."""

    exit_code = 77  # EX_NOPERM


class SubscriptionError(AuthenticationError):
    """402: the account's subscription has lapsed. Never retried."""


class ApiError(SolarsyncError):
    """The API answered with an error we do not retry (4xx), or retries were exhausted (5xx)."""


class InvalidCursorError(ApiError):
    """The API rejected a pagination cursor (the window is restarted once from its start)."""


class RateLimitError(ApiError):
    """429s kept coming after waiting for the reset as many times as allowed."""


class MalformedResponseError(ApiError):
    """A 2xx response whose body is not the documented shape: nothing of it is loaded."""


class SourceUnavailableError(SolarsyncError):
    """The API could not be reached (connection errors, timeouts, 5xx) after retries."""

    exit_code = 69  # EX_UNAVAILABLE


class ReadOnlyViolation(SolarsyncError):
    """Code tried a write method (POST/PUT/PATCH/DELETE) on an API. A programming error."""


class DestinationError(SolarsyncError):
    """The warehouse (DuckDB file, lake bucket, Postgres) refused or could not be reached:
    ``source`` names the destination (e.g. ``destination postgres``). Nothing was lost: the
    extracted data waits in the pipeline's working dir and the next run loads it first."""


class LockedError(SolarsyncError):
    """Another solarsync process holds the pipeline lock."""

    exit_code = 75  # EX_TEMPFAIL


def solarsync_error_in(exc: BaseException) -> SolarsyncError | None:
    """The :class:`SolarsyncError` inside wrappers (dlt's ``PipelineStepFailed`` keeps it in
    ``.exception``, ``ResourceExtractionError`` in ``__cause__``), or None."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, SolarsyncError):
            return current
        seen.add(id(current))
        nested = getattr(current, "exception", None)
        current = (
            nested
            if isinstance(nested, BaseException)
            else (current.__cause__ or current.__context__)
        )
    return None
