"""All HTTP of one Tesla gateway: certificate pinning, login and session reuse, the endpoints.

Order of events for a gateway, once per process:

1. read the certificate the gateway presents (nothing is sent) and compare it with the pinned
   fingerprint (configured, or recorded on first use); on first use, record it;
2. every request from then on, the login included, goes through an adapter pinned to that
   fingerprint: the password never reaches a host with another certificate;
3. reuse the session recorded on disk by an earlier run; log in only without one;
4. on 401/403 log in again once and retry once; a login answered 429 blocks logins (on disk,
   for every process) for ``login_backoff_seconds`` and fails fast until then.
"""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

from requests import PreparedRequest, Response
from requests.auth import AuthBase

from sources.common import (
    ApiClient,
    ApiError,
    AuthenticationError,
    MalformedResponseError,
    RateLimitError,
    SourceUnavailableError,
    register_secret,
)
from sources.common.tls import (
    CertificateChangedError,
    PinnedAdapter,
    certificate_changed,
    peer_fingerprint,
    pretty,
)
from sources.tesla.config import GatewayConfig
from sources.tesla.settings import (
    AUTH_COOKIES,
    DEFAULT_BACKOFF_FACTOR,
    DEFAULT_LOGIN_BACKOFF_SECONDS,
    DEFAULT_MAX_ATTEMPTS,
    DEFAULT_TIMEOUT,
    LOGIN_PATH,
    LOGIN_USERNAME,
    MAX_RELOGINS_PER_POLL,
    REFUSED_RETRY_SECONDS,
    RETRY_STATUSES,
    SOURCE_NAME,
    Endpoint,
)
from sources.tesla.store import GatewayStore

logger = logging.getLogger("solarsync.tesla")

STOPPED = "stopped"  # sentinel results of :meth:`GatewayClient.fetch`
UNAVAILABLE = "unavailable"


class EndpointRefused(AuthenticationError):
    """One endpoint refused a session that was just obtained (the account lacks access)."""


class _SessionAuth(AuthBase):
    """Sends the current session: its cookies and, when the login returned one, the token."""

    def __init__(self, client: GatewayClient) -> None:
        self.client = client

    def __call__(self, request: PreparedRequest) -> PreparedRequest:
        session = self.client.session or {}
        cookies = session.get("cookies") or {}
        if cookies:
            request.headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in cookies.items())
        if session.get("token"):
            request.headers["Authorization"] = f"Bearer {session['token']}"
        return request

    def __repr__(self) -> str:
        return "SessionAuth(***)"


class GatewayClient:
    """One gateway for the life of the process: pinned, logged in at most when needed."""

    def __init__(
        self,
        config: GatewayConfig,
        store: GatewayStore,
        *,
        login_backoff_seconds: float = DEFAULT_LOGIN_BACKOFF_SECONDS,
        max_attempts: int = DEFAULT_MAX_ATTEMPTS,
        backoff_factor: float = DEFAULT_BACKOFF_FACTOR,
        timeout: float = DEFAULT_TIMEOUT,
    ) -> None:
        self.config = config
        self.store = store
        self.login_backoff_seconds = login_backoff_seconds
        self.max_attempts = max_attempts
        self.backoff_factor = backoff_factor
        self.timeout = timeout
        self.session: dict[str, Any] | None = None
        self.fingerprint: str | None = None
        self.logins = 0
        self.unavailable: set[str] = set()  # endpoints this firmware lacks (404)
        self._api: ApiClient | None = None
        self._login_api: ApiClient | None = None
        self._relogins = 0  # logins after a 401/403 in the current poll
        self._fresh = False  # the session comes from a login and has not served a request yet
        self._retry_after: float | None = None
        self._refused_cache: dict[str, float] | None = None

    def __repr__(self) -> str:
        return f"GatewayClient({self.config!r})"

    # -- pinning --------------------------------------------------------------------------
    def _hint(self) -> str:
        return (
            f"if the gateway's certificate really changed (a reset or a replaced gateway), "
            f"check it on the gateway, then set sources.tesla fingerprint for {self.config.name!r} "
            f"to the new value or delete {self.store.path} to trust the new certificate on the "
            "next run"
        )

    def connect(self) -> None:
        """Pin the certificate (once per process) and build the pinned HTTP clients."""
        if self._api is not None:
            return
        host, port = self.config.address
        try:
            seen = peer_fingerprint(host, port, timeout=self.timeout)
        except OSError as exc:
            raise SourceUnavailableError(
                f"could not open a TLS connection to {host}:{port} ({type(exc).__name__})",
                source=SOURCE_NAME,
                endpoint=self.config.name,
                hint="check the gateway's host in the configuration and that it is on the "
                "network, then rerun (nothing was lost)",
            ) from None
        expected = self.config.fingerprint
        if expected is None:
            expected = self.store.load().get("fingerprint")
            if expected is None:
                with self.store.locked():
                    expected = self.store.load().get("fingerprint") or seen
                    self.store.update(fingerprint=expected, fingerprint_recorded_at=_now_iso())
                if expected == seen:
                    logger.warning(
                        "tesla %s: trusting the gateway's certificate on first use, SHA-256 %s "
                        "(recorded in %s; set its fingerprint in the configuration to pin it "
                        "explicitly)",
                        self.config.name,
                        pretty(seen),
                        self.store.path,
                    )
        if seen != expected:
            raise certificate_changed(
                SOURCE_NAME, f"gateway {self.config.name!r}", expected, seen, self._hint()
            )
        self.fingerprint = expected
        self._api = self._client(self.max_attempts, RETRY_STATUSES)
        # the login is never retried automatically: the gateway rate limits it
        self._login_api = self._client(1, (), session_auth=False)

    def _client(
        self, attempts: int, retry_statuses: tuple[int, ...], session_auth: bool = True
    ) -> ApiClient:
        assert self.fingerprint is not None
        adapter = PinnedAdapter(
            self.fingerprint, source=SOURCE_NAME, what=f"gateway {self.config.name!r}",
            hint=self._hint(), pool_connections=2, pool_maxsize=2,
        )  # fmt: skip
        return ApiClient(
            SOURCE_NAME,
            self.config.base_url,
            auth=_SessionAuth(self) if session_auth else None,
            secrets=[self.config.password],
            hints={
                401: f"check the password of gateway {self.config.name!r}",
                403: f"check the password of gateway {self.config.name!r}",
                "network": f"check that gateway {self.config.name!r} ({self.config.host}) is "
                "reachable, then rerun (nothing was lost)",
            },
            timeout=(self.timeout, self.timeout * 3),
            max_attempts=attempts,
            backoff_factor=self.backoff_factor,
            max_retry_delay=10.0,
            max_rate_limit_waits=0 if attempts == 1 else 3,
            adapter=adapter,
            retry_statuses=retry_statuses,
        )

    # -- session --------------------------------------------------------------------------
    def ensure_session(self) -> None:
        """Adopt the session an earlier run recorded; log in only when there is none."""
        self.connect()
        if self.session is not None:
            return
        recorded = self.store.load().get("session")
        if isinstance(recorded, dict) and (recorded.get("token") or recorded.get("cookies")):
            self._adopt(recorded)
            self._fresh = False
            logger.debug("tesla %s: reusing the recorded session", self.config.name)
            return
        self.login(failed=None)

    def _adopt(self, session: dict[str, Any]) -> None:
        register_secret(session.get("token"))
        for value in (session.get("cookies") or {}).values():
            register_secret(value)
        self.session = session

    def login(self, failed: dict[str, Any] | None) -> None:
        """Log in, unless another process already replaced the session that ``failed``."""
        with self.store.locked():
            data = self.store.load()
            recorded = data.get("session")
            if isinstance(recorded, dict) and recorded and recorded != failed:
                self._adopt(recorded)  # a fresh session from another process or run
                self._fresh = False  # not ours: it may have served that process already
                return
            not_before = data.get("login_not_before")
            if isinstance(not_before, (int, float)) and time.time() < not_before:
                raise self._backoff_error(not_before, "still")
            try:
                response = self._post_login()
            except RateLimitError:
                # the gateway's Retry-After when it sends one, else login_backoff_seconds
                until = time.time() + (self._retry_after or self.login_backoff_seconds)
                self.store.update(session=None, login_not_before=until)
                raise self._backoff_error(until, "now") from None
            except AuthenticationError as exc:
                self.store.update(session=None)
                raise AuthenticationError(
                    f"gateway {self.config.name!r} refused the login",
                    source=SOURCE_NAME,
                    endpoint=LOGIN_PATH,
                    status=exc.status,
                    hint="check its password (and email) in .dlt/secrets.toml or "
                    "SOURCES__TESLA__PASSWORD; solarsync logs in once per run at most",
                ) from None
            session = self._session_from(response)
            self.logins += 1
            self.store.update(session=session, login_not_before=None)
            self._adopt(session)
            self._fresh = True
            logger.info("tesla %s: logged in (session recorded for later runs)", self.config.name)

    def _post_login(self) -> Response:
        assert self._login_api is not None
        body = {
            "username": LOGIN_USERNAME,
            "email": self.config.email,
            "password": self.config.password,
        }
        self._retry_after = None

        def note_retry_after(response: Response, *args: Any, **kwargs: Any) -> None:
            seconds = _retry_after_seconds(response.headers.get("Retry-After"))
            if seconds is not None:
                self._retry_after = max(30.0, seconds)

        # through the pinned session itself, not dlt's RESTClient: at debug level the latter
        # logs every request's JSON body (the password), with no redaction outside a pipeline run
        with self._login_api.authentication_call():
            return self._login_api.session.post(
                f"{self.config.base_url}{LOGIN_PATH}",
                json=body,
                headers={"Accept": "application/json"},
                allow_redirects=False,
                hooks={"response": [note_retry_after]},
            )

    def _session_from(self, response: Response) -> dict[str, Any]:
        try:
            body = response.json()
        except ValueError:
            body = None
        token = body.get("token") if isinstance(body, dict) else None
        cookies = {c.name: c.value for c in response.cookies if c.name in AUTH_COOKIES}
        if not token and not cookies:
            raise MalformedResponseError(
                "the login answer has neither a token nor session cookies",
                source=SOURCE_NAME,
                endpoint=LOGIN_PATH,
                hint="report the gateway's firmware version",
            )
        return {"token": token, "cookies": cookies, "obtained_at": _now_iso()}

    def _backoff_error(self, until: float, when: str) -> RateLimitError:
        stamp = datetime.fromtimestamp(until, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
        left = _duration(until - time.time())
        lead = (
            "the gateway rate limited the login (429)"
            if when == "now"
            else "an earlier login was rate limited (429)"
        )
        return RateLimitError(
            f"gateway {self.config.name!r}: {lead}; no login before {stamp} (in {left})",
            source=SOURCE_NAME,
            endpoint=LOGIN_PATH,
            status=429,
            hint="solarsync backs off so the gateway does not lock the account out; runs until "
            "then fail fast without contacting the login (nothing to do but wait; if it recurs, "
            "check that no other client logs in to this gateway too often)",
        )

    # -- data -----------------------------------------------------------------------------
    def begin_poll(self) -> None:
        """A new poll may log in again (on 401/403), at most ``MAX_RELOGINS_PER_POLL`` times."""
        self._relogins = 0

    def fetch(self, endpoint: Endpoint) -> Any:
        """The endpoint's JSON, or :data:`STOPPED` (502: site controller stopped) or
        :data:`UNAVAILABLE` (404: this firmware lacks it; or refused to a fresh session
        recently, see :meth:`remember_refused`).

        401/403 with a session that already served a request: it expired; log in again and
        retry once. 401/403 with a session that has not served anything since its login: this
        endpoint is refused (raises :class:`EndpointRefused`), no further login. A gateway whose
        new sessions keep expiring within one poll costs at most ``MAX_RELOGINS_PER_POLL``
        logins, then the poll stops (not remembered as refused: the next run tries again).
        """
        if endpoint.key in self.unavailable or self._refused_recently(endpoint):
            return UNAVAILABLE
        self.ensure_session()
        try:
            return self._get(endpoint)
        except CertificateChangedError:
            raise
        except AuthenticationError as exc:
            if self._fresh:  # just logged in, nothing answered since: this endpoint is refused
                raise self._refused(endpoint, exc) from None
            if self._relogins >= MAX_RELOGINS_PER_POLL:
                raise AuthenticationError(
                    f"gateway {self.config.name!r}: sessions keep expiring (logged in "
                    f"{self._relogins} times this poll); the rest of this poll is skipped",
                    source=SOURCE_NAME,
                    endpoint=endpoint.path,
                    status=exc.status,
                    hint="the next run logs in again; if it recurs, check the gateway (its "
                    "sessions should last much longer than one poll)",
                ) from None
            logger.info(
                "tesla %s: session refused on %s; logging in again",
                self.config.name,
                endpoint.path,
            )
            failed, self.session = self.session, None
            self._relogins += 1
            self.login(failed=failed)
        try:
            return self._get(endpoint)
        except CertificateChangedError:
            raise
        except AuthenticationError as exc:
            raise self._refused(endpoint, exc) from None

    def _refused(self, endpoint: Endpoint, exc: AuthenticationError) -> EndpointRefused:
        return EndpointRefused(
            f"gateway {self.config.name!r} refused a fresh session",
            source=SOURCE_NAME,
            endpoint=endpoint.path,
            status=exc.status,
            hint="the customer account may lack access to this endpoint on this firmware; "
            "check the password and the gateway's firmware",
        )

    def remember_refused(self, keys: list[str]) -> None:
        """Endpoints refused to a fresh session while others answered: the account lacks access
        (newer firmware). Skipped for a while by every run, so they cost no login each time."""
        until = time.time() + REFUSED_RETRY_SECONDS
        with self.store.locked():
            refused = dict(self.store.load().get("refused_endpoints") or {})
            refused.update(dict.fromkeys(keys, until))
            self.store.update(refused_endpoints=refused)

    def _refused_recently(self, endpoint: Endpoint) -> bool:
        if self._refused_cache is None:
            self._refused_cache = dict(self.store.load().get("refused_endpoints") or {})
        until = self._refused_cache.get(endpoint.key)
        return isinstance(until, (int, float)) and time.time() < until

    def _get(self, endpoint: Endpoint) -> Any:
        assert self._api is not None
        try:
            response = self._api.get(endpoint.path, allow_redirects=False)
        except ApiError as exc:
            if exc.status == 404:
                self._fresh = self._fresh and endpoint.public  # answered past the session check
                self.unavailable.add(endpoint.key)
                logger.info(
                    "tesla %s: %s not available on this firmware (404); skipped",
                    self.config.name,
                    endpoint.path,
                )
                return UNAVAILABLE
            raise
        except SourceUnavailableError as exc:
            if exc.status == 502:
                self._fresh = self._fresh and endpoint.public
                return STOPPED
            raise
        if 300 <= response.status_code < 400:
            raise ApiError(
                f"the gateway redirected {endpoint.path}; not followed",
                source=SOURCE_NAME,
                endpoint=endpoint.path,
                status=response.status_code,
                hint="check the host (give the gateway's own address, HTTPS)",
            )
        # the session served a request (a public endpoint's answer says nothing about it)
        self._fresh = self._fresh and endpoint.public
        try:
            return response.json()
        except ValueError:
            raise MalformedResponseError(
                "the body is not JSON", source=SOURCE_NAME, endpoint=endpoint.path
            ) from None


def _retry_after_seconds(value: str | None) -> float | None:
    """``Retry-After`` as seconds: delta-seconds or an HTTP date (RFC 9110); None if absent."""
    if not value or not value.strip():
        return None
    try:
        return max(0.0, float(value.strip()))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value.strip())
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def _duration(seconds: float) -> str:
    """A wait for people: ``45 s``, ``15 min``, ``2 h 05 min``."""
    seconds = max(0, round(seconds))
    if seconds < 120:
        return f"{seconds} s"
    minutes = round(seconds / 60)
    if minutes < 120:
        return f"{minutes} min"
    return f"{minutes // 60} h {minutes % 60:02d} min"


def _now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


__all__ = ["STOPPED", "UNAVAILABLE", "EndpointRefused", "GatewayClient"]
