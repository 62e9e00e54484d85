"""All HTTP of SolarAssistant: the cloud API (user, sites, members, org users, authorize) and
the metrics snapshot through the cloud proxy, with the site tokens it needs.

Site tokens and site keys are secrets: they are registered for redaction the moment they are
received, kept in process memory only (module-level, so the polls of one ``solarsync poll``
process reuse them for their 7-day life) and sent through a request ``auth`` object, never as
logged request headers. They are never returned to the resources.
"""

from __future__ import annotations

import fnmatch
import hashlib
import logging
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from dlt.sources.helpers.rest_client.paginators import OffsetPaginator
from requests import PreparedRequest, Response
from requests.auth import AuthBase

from sources.common import (
    ApiClient,
    ApiError,
    AuthenticationError,
    BearerAuth,
    ConfigurationError,
    MalformedResponseError,
    redact,
    register_secret,
)
from sources.common.http import HttpStats
from sources.solarassistant.settings import (
    API_ROOT,
    AUTHORIZE_PATH,
    DEFAULT_PROXY_BACKOFF,
    DEFAULT_PROXY_MAX_ATTEMPTS,
    DEFAULT_PROXY_TIMEOUT,
    ERROR_HINTS,
    METRICS_PATH,
    NO_ORGANIZATION,
    ORG_USERS_PATH,
    PROXY_HINTS,
    SITE_MEMBERS_PATH,
    SITE_PATH,
    SITE_TOKEN_LIFETIME_S,
    SITE_TOKEN_RENEW_MARGIN_S,
    SITES_PATH,
    SOURCE_NAME,
    USER_PATH,
)
from sources.solarassistant.shapes import (
    describe_error,
    error_in_body,
    loads_exactly,
    validate_cloud,
    validate_proxy,
)

logger = logging.getLogger("solarsync.solarassistant")


# --------------------------------------------------------------------------- site access
@dataclass(frozen=True)
class SiteAccess:
    """What ``POST /sites/:id/authorize`` returned. ``repr`` shows no secret."""

    site_id: int
    host: str
    site_key: str = field(repr=False)
    token: str = field(repr=False)
    expires_at: float  # epoch seconds
    issued_at: float = 0.0

    def valid(self, now: float | None = None) -> bool:
        """Not expired, nor about to: renewed an hour (a tenth of its life if shorter) early."""
        margin = min(SITE_TOKEN_RENEW_MARGIN_S, (self.expires_at - self.issued_at) / 10)
        return (now or time.time()) < self.expires_at - margin


class SiteAuth(AuthBase):
    """``Authorization: Bearer <site token>``, ``Site-Id``, ``Site-Key``, applied when the
    request is prepared (after dlt's debug log of the request headers)."""

    __slots__ = ("_access",)

    def __init__(self, access: SiteAccess) -> None:
        self._access = access

    def __call__(self, request: PreparedRequest) -> PreparedRequest:
        request.headers["Authorization"] = f"Bearer {self._access.token}"
        request.headers["Site-Id"] = str(self._access.site_id)
        request.headers["Site-Key"] = self._access.site_key
        return request

    def __repr__(self) -> str:
        return "SiteAuth(***)"


#: (account fingerprint, site id) -> SiteAccess: process memory only, never persisted
_SITE_ACCESS: dict[tuple[str, int], SiteAccess] = {}
_SITE_ACCESS_LOCK = threading.Lock()


def forget_site_tokens() -> None:
    """Drop every cached site token (tests; a changed API token)."""
    with _SITE_ACCESS_LOCK:
        _SITE_ACCESS.clear()


def _expiry(body: dict[str, Any], now: float) -> float:
    """When the token expires: ``expires_in`` / ``expires_at`` if the API says, else 7 days."""
    expires_in = body.get("expires_in")
    if isinstance(expires_in, (int, float)) and not isinstance(expires_in, bool) and expires_in > 0:
        return now + float(expires_in)
    expires_at = body.get("expires_at")
    if isinstance(expires_at, (int, float)) and not isinstance(expires_at, bool):
        return float(expires_at)
    if isinstance(expires_at, str):
        try:
            return datetime.fromisoformat(expires_at.replace("Z", "+00:00")).timestamp()
        except ValueError:
            pass
    return now + SITE_TOKEN_LIFETIME_S


def cloud_base_url(base_url: str) -> str:
    """The API root: ``https://solar-assistant.io`` and ``.../api/v1`` both mean ``.../api/v1``
    (the docs name the host; the paths are under ``/api/v1``)."""
    parts = urlsplit(str(base_url).strip())
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ConfigurationError(
            f"base_url {base_url!r} is not an http(s) URL",
            source=SOURCE_NAME,
            hint="set sources.solarassistant.base_url to e.g. https://solar-assistant.io/api/v1",
        )
    path = parts.path.rstrip("/")
    if not path:
        path = API_ROOT
    return urlunsplit((parts.scheme, parts.netloc, path, "", ""))


def proxy_base_url(host: str, site_id: int | None = None) -> str:
    """``https://<host>`` from the authorize response's ``host`` (TLS only)."""
    host = host.strip().rstrip("/")
    if "://" in host:
        if not host.lower().startswith("https://"):
            raise ConfigurationError(
                "the proxy host of a site is not HTTPS",
                source=SOURCE_NAME,
                endpoint="/" + AUTHORIZE_PATH.format(site_id=":id" if site_id is None else site_id),
                hint="solarsync only talks to the proxy over verified TLS",
            )
        return host
    return f"https://{host}"


AUTHORIZE_MALFORMED_HINT = (
    "this site's poll is recorded as an error and the other sites are loaded; the next poll "
    "asks again (report the API change if it persists)"
)


# --------------------------------------------------------------------------- paging
class RowOffsetPaginator(OffsetPaginator):
    """``offset``/``limit`` paging that advances by the rows received (a server that caps
    ``limit`` below ours never makes us skip rows) and stops at the first empty page."""

    def __init__(self, limit: int) -> None:
        super().__init__(limit=limit, total_path=None, stop_after_empty_page=True)
        self._first_ids: set[Any] = set()

    def update_state(self, response: Response, data: list[Any] | None = None) -> None:
        rows = data or []
        first = rows[0].get("id") if rows and isinstance(rows[0], dict) else None
        if first is not None:
            if first in self._first_ids:
                raise MalformedResponseError(
                    "the same page came back for a new offset (the API ignores 'offset')",
                    source=SOURCE_NAME,
                    endpoint="/" + ORG_USERS_PATH,
                    hint="nothing was loaded; set sources.solarassistant.page_size above the "
                    "number of organization users, or report the API change",
                )
            self._first_ids.add(first)
        self.value_step = len(rows)
        super().update_state(response, rows)


# --------------------------------------------------------------------------- the client
class SolarAssistantClient:
    """Typed access to one account (one API token)."""

    def __init__(
        self,
        api_token: str,
        base_url: str,
        *,
        page_size: int = 100,
        concurrency: int = 16,
        max_attempts: int = 5,
        timeout: float = 60.0,
        backoff_factor: float = 1.0,
        proxy_timeout: float = DEFAULT_PROXY_TIMEOUT,
        proxy_max_attempts: int = DEFAULT_PROXY_MAX_ATTEMPTS,
        proxy_backoff_factor: float = DEFAULT_PROXY_BACKOFF,
    ) -> None:
        self.page_size = page_size
        self.base_url = base_url = cloud_base_url(base_url)
        self.api = ApiClient(
            SOURCE_NAME,
            base_url,
            auth=BearerAuth(api_token),
            secrets=[api_token],
            validate=validate_cloud,
            describe_error=describe_error,
            hints=ERROR_HINTS,
            timeout=(10.0, timeout),
            max_attempts=max_attempts,
            backoff_factor=backoff_factor,
            max_connections=max(concurrency, 1),
        )
        self._account = hashlib.sha256(f"{base_url}\n{api_token}".encode()).hexdigest()[:16]
        self._proxy_options = {
            "timeout": (min(10.0, proxy_timeout), proxy_timeout),
            "max_attempts": proxy_max_attempts,
            "backoff_factor": proxy_backoff_factor,
            "max_connections": max(concurrency, 1),
        }
        self._proxies: dict[str, ApiClient] = {}
        self._lock = threading.Lock()

    def use_stats(self, stats: HttpStats) -> None:
        """Count into ``stats`` from now on (the CLI resets the counters of each run)."""
        with self._lock:
            for client in (self.api, *self._proxies.values()):
                client.stats = stats

    # -- cloud --------------------------------------------------------------------------------
    def user(self) -> dict[str, Any]:
        return self.api.get_json(USER_PATH)

    def sites(self) -> list[dict[str, Any]]:
        return self.api.get_json(SITES_PATH)

    def site(self, site_id: int) -> dict[str, Any]:
        return self.api.get_json(SITE_PATH.format(site_id=site_id))

    def site_members(self, site_id: int) -> list[dict[str, Any]]:
        return self.api.get_json(SITE_MEMBERS_PATH.format(site_id=site_id))

    def org_users(self) -> Iterator[list[dict[str, Any]]]:
        """Pages of ``GET /users`` (organization accounts only; others get an error)."""
        for page in self.api.paginate(
            ORG_USERS_PATH,
            params={"limit": self.page_size},
            paginator=RowOffsetPaginator(self.page_size),
            data_selector="$",
        ):
            rows = list(page)
            error = error_in_body(rows[0]) if len(rows) == 1 else None
            if error:
                raise ApiError(
                    error,
                    source=SOURCE_NAME,
                    endpoint="/" + ORG_USERS_PATH,
                    code=NO_ORGANIZATION,
                    hint="organization users are only given to accounts with a registered "
                    "organization",
                )
            if rows:
                yield rows

    # -- site tokens --------------------------------------------------------------------------
    def site_access(self, site_id: int, *, renew: bool = False) -> tuple[SiteAccess, bool]:
        """A valid token for the site: the cached one, or a new one (second value True)."""
        key = (self._account, int(site_id))
        if not renew:
            with _SITE_ACCESS_LOCK:
                cached = _SITE_ACCESS.get(key)
            if cached is not None and cached.valid():
                return cached, False
        try:
            with self.api.authentication_call():
                response = self.api.rest.post(AUTHORIZE_PATH.format(site_id=site_id))
        except MalformedResponseError as exc:  # one site's answer: the others are polled
            raise MalformedResponseError(
                exc.detail,
                source=exc.source,
                endpoint=exc.endpoint,
                status=exc.status,
                hint=AUTHORIZE_MALFORMED_HINT,
            ) from None
        body, now = response.json(), time.time()
        # secrets first: nothing below may log them unmasked
        register_secret(body["token"])
        register_secret(body["site_key"])
        access = SiteAccess(
            site_id=int(body.get("site_id") or site_id),
            host=str(body["host"]),
            site_key=body["site_key"],
            token=body["token"],
            expires_at=_expiry(body, now),
            issued_at=now,
        )
        with _SITE_ACCESS_LOCK:
            _SITE_ACCESS[key] = access
        return access, True

    def forget(self, site_id: int) -> None:
        with _SITE_ACCESS_LOCK:
            _SITE_ACCESS.pop((self._account, int(site_id)), None)

    # -- the proxy ----------------------------------------------------------------------------
    def proxy(self, host: str, site_id: int | None = None) -> ApiClient:
        base = proxy_base_url(host, site_id)
        with self._lock:
            client = self._proxies.get(base)
            if client is None:
                client = ApiClient(
                    SOURCE_NAME,
                    base,
                    # the documented request (curl) sends */*; the body is parsed and checked
                    # by _metric_rows, which also reads the forms the shared layer would refuse
                    headers={"Accept": "*/*"},
                    describe_error=describe_error,
                    hints=PROXY_HINTS,
                    **self._proxy_options,
                )
                client.stats = self.api.stats  # the account's counters, from any thread
                self._proxies[base] = client
        return client

    def metrics(
        self,
        site_id: int,
        topics: Sequence[str | None] = (None,),
        on_authorize: Callable[[], None] | None = None,
    ) -> tuple[list[dict[str, Any]], bool]:
        """The site's metric rows (one request per topic glob) and whether a new site token was
        obtained. A 401 from the proxy (expired or revoked token) renews the token once.

        ``on_authorize`` is called each time a new site token is obtained, so a poll that fails
        afterwards still knows it authorized."""
        access, authorized = self.site_access(site_id)
        if authorized and on_authorize is not None:
            on_authorize()
        try:
            return self._fetch(access, topics), authorized
        except AuthenticationError as exc:
            if exc.status != 401:
                raise
            logger.info("solarassistant site %s: site token rejected; authorizing again", site_id)
        access, _ = self.site_access(site_id, renew=True)
        if on_authorize is not None:
            on_authorize()
        try:
            return self._fetch(access, topics), True
        except AuthenticationError as exc:
            if exc.status == 401:
                self.forget(site_id)  # a token the proxy refuses is not worth keeping
            raise

    def _fetch(self, access: SiteAccess, topics: Sequence[str | None]) -> list[dict[str, Any]]:
        client = self.proxy(access.host, access.site_id)
        rows: list[dict[str, Any]] = []
        seen: set[str] = set()
        for topic in topics:
            params = {"topic": topic} if topic else None
            for row in self._metric_rows(client, params, access):
                if topic and not topic_matches(str(row["topic"]), topic):
                    continue  # a proxy that ignores ?topic= must not widen the filter
                if str(row["topic"]) not in seen:  # overlapping globs: each topic once
                    seen.add(str(row["topic"]))
                    rows.append(row)
        return rows

    def _metric_rows(
        self, client: ApiClient, params: dict[str, Any] | None, access: SiteAccess
    ) -> list[dict[str, Any]]:
        """One ``GET /api/v1/metrics``, its body parsed here (see :func:`parse_metrics_body`);
        a body that is not rows is asked again, up to ``proxy_max_attempts`` times."""
        attempts = max(1, int(self._proxy_options["max_attempts"]))
        problem = "no answer"
        for attempt in range(1, attempts + 1):
            response = client.get(METRICS_PATH, params, auth=SiteAuth(access))
            body, problem = parse_metrics_body(
                response.content, response.headers.get("Content-Type")
            )
            if problem is None:
                return body
            if attempt < attempts:
                logger.warning(
                    "solarassistant GET %s: %s; retrying (attempt %d)",
                    METRICS_PATH,
                    redact(problem),
                    attempt + 1,
                )
        raise MalformedResponseError(
            redact(f"unexpected response body after {attempts} attempts: {problem}"),
            source=SOURCE_NAME,
            endpoint=METRICS_PATH,
            status=response.status_code,
            hint=PROXY_HINTS["malformed"],
        )


def topic_matches(topic: str, glob: str) -> bool:
    """``total/*`` matches ``total/pv_power`` (shell-style, case-insensitive)."""
    return fnmatch.fnmatchcase(topic.lower(), glob.lower())


def parse_metrics_body(
    content: bytes, content_type: str | None = None
) -> tuple[list[dict[str, Any]], str | None]:
    """The metric rows of a proxy answer, and what is wrong with it (None when fine).

    The documented body is a JSON array of rows. Also read: JSON with ``NaN``/``Infinity``
    literals (what Python's ``json`` writes for a non-finite float), newline-delimited rows
    (the ``sacli --json`` form; empty when there is no row) and a single row object. Numbers
    are read exactly (:func:`~sources.solarassistant.shapes.loads_exactly`): ``value_text``
    is the value as sent."""
    body: Any
    if not content.strip() and "ndjson" in (content_type or "").lower():
        return [], None  # newline-delimited rows, none of them
    text = content.decode("utf-8", errors="replace")
    try:
        body = loads_exactly(text)
    except ValueError as err:
        problem = f"body is not valid JSON ({getattr(err, 'msg', err)} at char "
        problem += f"{getattr(err, 'pos', '?')})"
        lines = [line for line in text.splitlines() if line.strip()]
        try:
            body = [loads_exactly(line) for line in lines]
        except ValueError:
            return [], problem
        if not lines or not all(isinstance(row, dict) for row in body):
            return [], problem
    if isinstance(body, dict) and "topic" in body:
        body = [body]  # a single row, not in an array
    problem = validate_proxy(body, METRICS_PATH)
    return (body, None) if problem is None else ([], problem)


__all__ = [
    "RowOffsetPaginator",
    "cloud_base_url",
    "SiteAccess",
    "SolarAssistantClient",
    "forget_site_tokens",
    "parse_metrics_body",
    "proxy_base_url",
]
