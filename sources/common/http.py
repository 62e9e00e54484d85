"""The shared HTTP layer every source uses.

Built on dlt's requests helpers (``dlt.sources.helpers.requests`` session + tenacity retry
predicates, and ``RESTClient`` for paging). What it adds:

* proactive pacing from ``X-RateLimit-*`` headers through a :class:`RateLimiter` shared per key,
  and on 429 a wait of exactly the time until the reset (not a blind exponential backoff);
* retries for 5xx, dropped connections, timeouts and 2xx bodies that are not the documented
  shape (each source supplies a validator); never for 401/402/403;
* one exception type per failure class (``sources.common.errors``), raised by *every* call,
  ``get`` included (``RESTClient.get`` alone does not raise on error statuses);
* a read-only guard: only GET/HEAD, unless a call is explicitly marked as authentication;
* redaction of every secret the client is given, in log lines and exception text;
* request statistics per source for the end-of-run summary.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any
from urllib.parse import urlsplit

import orjson
from dlt.sources.helpers.requests.retry import (
    DEFAULT_RETRY_EXCEPTIONS,
    _get_retry_response,
    retry_if_predicate,
    retry_if_status,
)
from dlt.sources.helpers.requests.session import Session
from dlt.sources.helpers.rest_client import RESTClient
from dlt.sources.helpers.rest_client.paginators import BasePaginator
from requests import PreparedRequest, RequestException, Response
from requests.adapters import HTTPAdapter
from requests.auth import AuthBase
from tenacity import RetryCallState, Retrying, retry_any, retry_if_exception_type

from sources.common.errors import (
    ApiError,
    AuthenticationError,
    InvalidCursorError,
    MalformedResponseError,
    RateLimitError,
    ReadOnlyViolation,
    SolarsyncError,
    SourceUnavailableError,
    SubscriptionError,
)
from sources.common.ratelimit import RateLimiter
from sources.common.redact import redact, register_secret
from sources.common.retry import StopByKind, WaitForReset
from sources.common.stats import HttpStats, reset_stats, stats_for

logger = logging.getLogger("solarsync.http")

JSON_ACCEPT = "application/json"
READ_METHODS = frozenset({"GET", "HEAD"})
RETRY_STATUS = (429, *range(500, 600))

#: (response JSON, endpoint path) -> None when the body has the documented shape, else what is
#: wrong with it
Validator = Callable[[Any, str], str | None]
#: (response) -> (API error code, API error message)
ErrorDescriber = Callable[[Response], tuple[str | None, str | None]]


# --------------------------------------------------------------------------- error bodies
def json_object(response: Response) -> dict[str, Any] | None:
    """The body when it is a JSON object, else None (an HTML page, a list, no body)."""
    try:
        body = orjson.loads(response.content)
    except (orjson.JSONDecodeError, TypeError, ValueError):
        return None
    return body if isinstance(body, dict) else None


def describe_error_envelope(
    response: Response, *, error_is_code: bool = False
) -> tuple[str | None, str | None]:
    """Code and message from the common shapes ``{"error": {"code", "message"}}``,
    ``{"error": "..."}`` and ``{"code", "message"}``.

    ``error_is_code``: a plain ``error`` value is the code and ``message`` beside it the text,
    as in ``{"error": "not_found", "message": "Site not found"}`` (HEAT's error body)."""
    body = json_object(response)
    if body is None:
        return None, None
    err = body.get("error", body)
    if isinstance(err, dict):
        code = err.get("code") or err.get("error_code")
        message = err.get("message") or err.get("detail") or err.get("error_description")
        if not message and err is not body:
            message = body.get("message")
        return (str(code) if code else None), (str(message) if message else None)
    if error_is_code:
        message = body.get("message")
        return (str(err) if err else None), (str(message) if message else None)
    if isinstance(err, str):
        return None, err
    return None, None


# --------------------------------------------------------------------------- auth
class BearerAuth(AuthBase):
    """``Authorization: Bearer <token>``; the token never shows in a repr."""

    __slots__ = ("_token",)

    def __init__(self, token: str) -> None:
        register_secret(token)
        self._token = token

    def __call__(self, request: PreparedRequest) -> PreparedRequest:
        request.headers["Authorization"] = f"Bearer {self._token}"
        return request

    def __repr__(self) -> str:
        return "BearerAuth(***)"


# --------------------------------------------------------------------------- the client
class ApiClient:
    """HTTP access to one API for one source. Create one per source run; thread-safe."""

    def __init__(
        self,
        source: str,
        base_url: str,
        *,
        auth: AuthBase | None = None,
        headers: Mapping[str, str] | None = None,
        secrets: Sequence[str | None] = (),
        limiter: RateLimiter | None = None,
        validate: Validator | None = None,
        describe_error: ErrorDescriber = describe_error_envelope,
        hints: Mapping[int | str, str] | None = None,
        timeout: float | tuple[float, float] = (10.0, 60.0),
        max_attempts: int = 5,
        backoff_factor: float = 1.0,
        max_retry_delay: float = 60.0,
        max_rate_limit_waits: int = 30,
        max_connections: int = 10,
        verify: bool | str = True,
        adapter: HTTPAdapter | None = None,
        retry_statuses: Sequence[int] = RETRY_STATUS,
    ) -> None:
        """``adapter``: mounted for ``https://`` instead of the default pool (e.g. a
        certificate-pinning adapter, ``sources.common.tls``); ``retry_statuses``: the statuses
        retried (default 429 and every 5xx)."""
        if not base_url:
            raise ValueError(f"{source}: base_url is empty")
        for secret in secrets:
            register_secret(secret)
        self.source = source
        self.base_url = base_url.rstrip("/")
        self._base_path = urlsplit(self.base_url).path.rstrip("/")
        self.limiter = limiter
        self.validate = validate
        self.describe_error = describe_error
        self.hints = dict(hints or {})
        self.max_attempts = max_attempts
        self.stats = stats_for(source)
        self._local = threading.local()
        self.session = self._make_session(
            timeout=timeout,
            max_attempts=max_attempts,
            backoff_factor=backoff_factor,
            max_retry_delay=max_retry_delay,
            max_rate_limit_waits=max_rate_limit_waits,
            max_connections=max_connections,
            verify=verify,
            adapter=adapter,
            retry_statuses=retry_statuses,
        )
        self.rest = RESTClient(
            base_url=self.base_url,
            headers={"Accept": JSON_ACCEPT, **(headers or {})},
            auth=auth,
            session=self.session,
        )

    def __repr__(self) -> str:  # no auth, no headers
        return f"ApiClient(source={self.source!r}, base_url={self.base_url!r})"

    # -- public calls ---------------------------------------------------------------------
    def get(self, path: str, params: Mapping[str, Any] | None = None, **kwargs: Any) -> Response:
        """GET that raises a :class:`SolarsyncError` on any failure (after retries)."""
        return self.rest.get(path, params=dict(params or {}), **kwargs)

    def get_json(self, path: str, params: Mapping[str, Any] | None = None) -> Any:
        return self.get(path, params).json()

    def paginate(
        self,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        paginator: BasePaginator,
        data_selector: str,
    ) -> Iterator[Any]:
        """Pages of ``RESTClient.paginate`` (each has ``.response``); errors as in :meth:`get`."""
        yield from self.rest.paginate(
            path,
            params=dict(params or {}),
            paginator=paginator,
            data_selector=data_selector,
            hooks={"response": []},  # errors are raised by the session, mapped
        )

    @contextlib.contextmanager
    def authentication_call(self) -> Iterator[None]:
        """Lift the read-only guard for the calls made inside (logins, token requests)."""
        self._local.auth_call = True
        try:
            yield
        finally:
            self._local.auth_call = False

    def endpoint_of(self, url: str | None) -> str:
        """``/knocks`` for ``https://host/api/v1/reporting/knocks?cursor=...``: no query, no host."""
        path = urlsplit(url or "").path
        if self._base_path and path.startswith(self._base_path):
            path = path[len(self._base_path) :]
        return path or "/"

    # -- session assembly -----------------------------------------------------------------
    def _make_session(
        self,
        *,
        timeout: float | tuple[float, float],
        max_attempts: int,
        backoff_factor: float,
        max_retry_delay: float,
        max_rate_limit_waits: int,
        max_connections: int,
        verify: bool | str,
        adapter: HTTPAdapter | None = None,
        retry_statuses: Sequence[int] = RETRY_STATUS,
    ) -> Session:
        session = Session(timeout=timeout, raise_for_status=False)
        plain = HTTPAdapter(pool_connections=max_connections, pool_maxsize=max_connections)
        session.mount("http://", plain)
        session.mount("https://", adapter or plain)
        session.verify = verify
        retrying = Retrying(
            wait=WaitForReset(multiplier=backoff_factor, max=max_retry_delay),
            retry=retry_any(
                retry_if_status(list(retry_statuses)),
                retry_if_exception_type(DEFAULT_RETRY_EXCEPTIONS),
                retry_if_predicate(self._is_malformed),
            ),
            stop=StopByKind(max_attempts, max_rate_limit_waits),
            before_sleep=self._log_retry,
            reraise=True,
            retry_error_callback=lambda state: state.outcome.result(),
        )
        paced_send = self._paced(session.send)
        retried_send = retrying.wraps(paced_send)

        def send(request: PreparedRequest, **kwargs: Any) -> Response:
            try:
                response = retried_send(request, **kwargs)
            except SolarsyncError:
                raise
            except RequestException as exc:
                raise self._network_error(request, exc) from None
            self._raise_for_response(request, response)
            return response

        session.send = send  # type: ignore[method-assign]
        return session

    def _paced(self, raw_send: Callable[..., Response]) -> Callable[..., Response]:
        def paced_send(request: PreparedRequest, **kwargs: Any) -> Response:
            method = (request.method or "GET").upper()
            if method not in READ_METHODS and not getattr(self._local, "auth_call", False):
                raise ReadOnlyViolation(
                    f"refused {method}: solarsync is read-only",
                    source=self.source,
                    endpoint=self.endpoint_of(request.url),
                    hint="only GET is allowed outside an authentication call",
                )
            if self.limiter is not None:
                self.limiter.acquire()
            try:
                response = raw_send(request, **kwargs)
            except BaseException:
                if self.limiter is not None:
                    self.limiter.release(None)
                self.stats.add(requests=1, errors=1)
                raise
            if self.limiter is not None:
                self.limiter.release(response.headers)
            self.stats.add(requests=1)
            if response.status_code == 429:
                self.stats.add(rate_limited=1)
                if self.limiter is not None:
                    response._solarsync_wait = self.limiter.block_for_429(response.headers)  # type: ignore[attr-defined]
            elif not kwargs.get("stream"):
                self.stats.add(bytes_received=len(response.content))
            return response

        return paced_send

    def _is_malformed(self, response: Response | None, exc: BaseException | None) -> bool:
        """Retry predicate: parse a JSON 2xx body once (orjson) and validate its shape.

        The parsed body is memoised on the response, so ``RESTClient`` (which calls
        ``response.json()`` several times per page) never parses twice.
        """
        if response is None or not 200 <= response.status_code < 300:
            return False
        request = response.request
        if request is None or JSON_ACCEPT not in (request.headers.get("Accept") or ""):
            return False
        if getattr(response, "_solarsync_checked", False):
            return getattr(response, "_solarsync_malformed", None) is not None
        response._solarsync_checked = True  # type: ignore[attr-defined]
        problem: str | None
        try:
            body = orjson.loads(response.content)
        except orjson.JSONDecodeError as err:
            problem = f"body is not valid JSON ({err.msg} at byte {err.pos})"
        else:
            endpoint = self.endpoint_of(request.url)
            problem = self.validate(body, endpoint) if self.validate else None
            response.json = lambda **_: body  # type: ignore[method-assign]
        response._solarsync_malformed = problem  # type: ignore[attr-defined]
        return problem is not None

    def _log_retry(self, retry_state: RetryCallState) -> None:
        self.stats.add(retries=1)
        response = _get_retry_response(retry_state)
        exc = retry_state.outcome.exception() if retry_state.outcome else None
        wait = retry_state.next_action.sleep if retry_state.next_action else 0
        if response is not None:
            endpoint = self.endpoint_of(response.request.url if response.request else None)
            malformed = getattr(response, "_solarsync_malformed", None)
            what = malformed or f"HTTP {response.status_code}"
        else:
            endpoint = "?"
            request = getattr(exc, "request", None)
            if request is not None:
                endpoint = self.endpoint_of(request.url)
            what = type(exc).__name__ if exc else "error"
        level = (
            logging.INFO
            if response is not None and response.status_code == 429
            else logging.WARNING
        )
        logger.log(
            level,
            "%s GET %s: %s; retrying in %.1fs (attempt %d)",
            self.source,
            endpoint,
            redact(what),
            wait,
            retry_state.attempt_number + 1,
        )

    # -- error mapping --------------------------------------------------------------------
    def _hint(self, *keys: int | str | None) -> str | None:
        for key in keys:
            if key is not None and key in self.hints:
                return self.hints[key]
        return None

    def _network_error(self, request: PreparedRequest, exc: RequestException) -> SolarsyncError:
        endpoint = self.endpoint_of(request.url)
        host = urlsplit(request.url or "").netloc
        return SourceUnavailableError(
            f"could not get a response from {host} after {self.max_attempts} attempts "
            f"({type(exc).__name__})",
            source=self.source,
            endpoint=endpoint,
            hint=self._hint("network")
            or "check base_url and the network, then rerun (nothing was lost)",
        )

    def _raise_for_response(self, request: PreparedRequest, response: Response) -> None:
        status = response.status_code
        endpoint = self.endpoint_of(request.url)
        malformed = getattr(response, "_solarsync_malformed", None)
        if status < 400 and malformed is None:
            return
        self.stats.add(errors=1)
        if malformed is not None:
            raise MalformedResponseError(
                redact(f"unexpected response body after {self.max_attempts} attempts: {malformed}"),
                source=self.source,
                endpoint=endpoint,
                status=status,
                hint=self._hint("malformed")
                or "nothing from this run was loaded; rerun later or report the API change",
            )
        code, message = self.describe_error(response)
        detail = redact(message or response.reason or "error")
        kwargs: dict[str, Any] = {
            "source": self.source,
            "endpoint": endpoint,
            "code": code,
            "status": status,
            "hint": self._hint(code, status),
        }
        if status == 402:
            raise SubscriptionError(detail, **kwargs)
        if status in (401, 403):
            raise AuthenticationError(detail, **kwargs)
        if status == 429:
            raise RateLimitError(f"still rate limited after waiting: {detail}", **kwargs)
        if status >= 500:
            raise SourceUnavailableError(
                f"{detail} (after {self.max_attempts} attempts)",
                **{**kwargs, "hint": kwargs["hint"] or "the API is failing; rerun later"},
            )
        if code == "INVALID_CURSOR":
            raise InvalidCursorError(detail, **kwargs)
        raise ApiError(detail, **kwargs)


__all__ = [
    "ApiClient",
    "BearerAuth",
    "ApiError",
    "HttpStats",
    "describe_error_envelope",
    "json_object",
    "reset_stats",
    "stats_for",
]
