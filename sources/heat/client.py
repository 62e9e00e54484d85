"""All HTTP of the HEAT Cloud Public API: /health, the site list, site details, errors."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from requests import Response, Timeout

from sources.common import (
    ApiClient,
    ApiError,
    BearerAuth,
    ConfigurationError,
    MalformedResponseError,
    RateLimitError,
    SolarsyncError,
    SourceUnavailableError,
    limiter_for,
    redact,
    register_secret,
)
from sources.common.http import describe_error_envelope
from sources.heat.settings import (
    DEFAULT_HEALTH_TIMEOUT,
    ERROR_HINTS,
    HEALTH_ATTEMPTS,
    HEALTH_PATH,
    KNOWN_API_VERSIONS,
    MAX_CONCURRENCY,
    SITES_PATH,
    SOURCE_NAME,
)

logger = logging.getLogger("solarsync.heat")

_VERSION_SUFFIX = re.compile(r"/api/(v\d+)(/public)?(/sites)?/?$")


def describe_error(response: Response) -> tuple[str | None, str | None]:
    """``{"error": "<code>", "message": "<text>"}`` (the documented error body), or a proxy's
    ``{"error": {"code", "message"}}``."""
    return describe_error_envelope(response, error_is_code=True)


def validate(body: Any, endpoint: str) -> str | None:
    """Shape check of every 2xx JSON body (a failure is retried, then raised)."""
    if not isinstance(body, dict):
        return f"expected a JSON object, got {type(body).__name__}"
    if endpoint.rstrip("/").endswith("/sites"):
        sites = body.get("sites")
        if not isinstance(sites, list):
            return "no 'sites' list"
        for index, site in enumerate(sites):
            problem = _site_problem(site)
            if problem:
                return f"site {index}: {problem}"
        return None
    return _site_problem(body)


def _site_problem(site: Any) -> str | None:
    if not isinstance(site, dict):
        return "not an object"
    if not isinstance(site.get("siteId"), str) or not site["siteId"]:
        return "no 'siteId'"
    schedules = site.get("schedules")
    if schedules is None:
        return None
    if not isinstance(schedules, list):
        return "'schedules' is not a list"
    for index, schedule in enumerate(schedules):
        if not isinstance(schedule, dict):
            return f"schedule {index} is not an object"
        for name in ("asset", "type"):
            if not isinstance(schedule.get(name), str) or not schedule[name]:
                return f"schedule {index} has no '{name}'"
        entries = schedule.get("entries")
        if entries is None:
            continue
        if not isinstance(entries, list):
            return f"schedule {index}: 'entries' is not a list"
        for entry in entries:
            if not isinstance(entry, dict) or not entry.get("startAt"):
                return f"schedule {index} has an entry without 'startAt'"
    return None


def split_base_url(base_url: str, api_version: str) -> tuple[str, str]:
    """``(server root, API version)``: a base URL given with ``/api/v1/public`` is accepted
    and its version wins over ``api_version``."""
    url = (base_url or "").strip().rstrip("/")
    match = _VERSION_SUFFIX.search(url)
    if match:
        return url[: match.start()], match.group(1)
    return url, api_version


def normalize_version(value: str | int) -> str:
    text = str(value).strip().lower()
    version = text if text.startswith("v") else f"v{text}"
    if not re.fullmatch(r"v\d+", version):
        raise ConfigurationError(
            f"api_version={value!r} is not a version like v1",
            source=SOURCE_NAME,
            hint=f"set sources.heat.api_version to one of {', '.join(KNOWN_API_VERSIONS)}",
        )
    if version not in KNOWN_API_VERSIONS:
        logger.warning("heat: api_version %s is not one this pipeline was written for", version)
    return version


class HeatClient:
    """Typed access to the HEAT read endpoints for one key (one access group)."""

    def __init__(
        self,
        api_key: str,
        base_url: str,
        *,
        api_version: str = "v1",
        max_attempts: int = 5,
        timeout: float = 60.0,
        backoff_factor: float = 1.0,
        health_timeout: float = DEFAULT_HEALTH_TIMEOUT,
    ) -> None:
        root, version = split_base_url(base_url, api_version)
        if not root.startswith(("http://", "https://")):
            raise ConfigurationError(
                f"base_url {root!r} is not an http(s) URL",
                source=SOURCE_NAME,
                hint="set sources.heat.base_url (SOURCES__HEAT__BASE_URL) to the server root, "
                "e.g. https://heat.example.com",
            )
        # agk_<id>.ags_<secret>: the secret part alone is masked too (the id is not a secret)
        register_secret(api_key.rpartition(".")[2])
        self.version = normalize_version(version)
        self.root = root
        self.sites_path = SITES_PATH.format(version=self.version)
        self.api = ApiClient(
            SOURCE_NAME,
            root,
            auth=BearerAuth(api_key),
            secrets=[api_key],
            limiter=limiter_for(SOURCE_NAME, api_key),
            validate=validate,
            describe_error=describe_error,
            hints=ERROR_HINTS,
            timeout=(10.0, timeout),
            max_attempts=max_attempts,
            backoff_factor=backoff_factor,
            max_connections=MAX_CONCURRENCY,  # one per detail call in flight
        )
        self.health_api = ApiClient(  # no auth; any body; few attempts, short timeout
            SOURCE_NAME,
            root,
            headers={"Accept": "*/*"},
            describe_error=describe_error,
            timeout=(min(10.0, health_timeout), health_timeout),
            max_attempts=HEALTH_ATTEMPTS,
            backoff_factor=backoff_factor,
        )

    def __repr__(self) -> str:
        return f"HeatClient(root={self.root!r}, version={self.version!r})"

    def use_stats(self, stats: Any) -> None:
        """Count this run's requests (the CLI resets the counters per run)."""
        self.api.stats = self.health_api.stats = stats

    # -- calls --------------------------------------------------------------------------
    def health(self) -> None:
        """``GET /health``: returns when the API is operational, else raises
        :class:`SourceUnavailableError` (503, any 5xx, a timeout, no connection)."""
        endpoint = "/" + HEALTH_PATH
        try:
            response = self.health_api.get(HEALTH_PATH)
        except SourceUnavailableError as exc:
            if exc.status or _timed_out(exc):
                status = f"HTTP {exc.status}" if exc.status else "no answer in time"
                raise SourceUnavailableError(
                    f"the HEAT API reports it is unavailable ({status})",
                    source=SOURCE_NAME,
                    endpoint=endpoint,
                    status=exc.status,
                    hint="nothing was loaded; rerun when /health answers 204",
                ) from None
            # refused, reset, TLS or DNS failure: the URL or the network, not the API's state
            raise SourceUnavailableError(
                f"could not connect to {self.root} ({_reason(exc)})",
                source=SOURCE_NAME,
                endpoint=endpoint,
                hint=ERROR_HINTS["network"],
            ) from None
        except ApiError as exc:
            raise ApiError(
                f"/health answered {exc.status}, not 204",
                source=SOURCE_NAME,
                endpoint=endpoint,
                status=exc.status,
                hint=ERROR_HINTS[404] if exc.status == 404 else "nothing was loaded",
            ) from None
        logger.debug("heat /health: %s", response.status_code)

    def sites(self) -> list[dict[str, Any]]:
        """Every site the key's access group sees, with its active schedules."""
        return self.api.get_json(self.sites_path)["sites"]

    def site(self, site_id: str) -> dict[str, Any] | None:
        """One site with its ``assets``; None (and a warning) when it vanished (404)."""
        try:
            return self.api.get_json(f"{self.sites_path}/{site_id}")
        except ApiError as exc:
            if exc.status != 404:
                raise
            logger.warning(
                "heat /%s/%s: the site is gone (404) since the list was read; "
                "its assets are skipped this run",
                self.sites_path,
                site_id,
            )
            return None

    def site_or_failure(self, site_id: str) -> dict[str, Any] | SolarsyncError | None:
        """:meth:`site`, with a detail that still fails after the retries (5xx, no answer, a
        malformed body) returned rather than raised: one broken site must not hold back the
        snapshot of every other (a rejected key or an exhausted rate limit still raises)."""
        try:
            return self.site(site_id)
        except (ApiError, SourceUnavailableError) as exc:
            if isinstance(exc, RateLimitError) or (
                exc.status is not None
                and exc.status < 500
                and not isinstance(exc, MalformedResponseError)
            ):
                raise
            return exc

    def site_details(
        self, site_ids: Sequence[str], concurrency: int
    ) -> Iterator[tuple[str, dict[str, Any]]]:
        """``(site_id, detail)`` in the order of ``site_ids``, ``concurrency`` calls in flight;
        vanished sites are left out. A detail that keeps failing (5xx, no answer, malformed)
        is left out too, with a warning and an entry in ``self.failed_details``, unless every
        detail failed (then the API is broken: raised). Any other error cancels the rest and
        is raised."""
        self.failed_details: list[str] = []
        if not site_ids:
            return
        with ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="heat") as pool:
            futures = [pool.submit(self.site_or_failure, site_id) for site_id in site_ids]
            try:
                outcomes = [(sid, f.result()) for sid, f in zip(site_ids, futures, strict=True)]
            except SolarsyncError:
                for future in futures:
                    future.cancel()
                raise
        failures = [(sid, o) for sid, o in outcomes if isinstance(o, SolarsyncError)]
        if failures and len(failures) == len(site_ids):
            raise failures[0][1]
        for site_id, exc in failures:
            message = (
                f"site {site_id}: its detail failed ({redact(str(exc))}); its assets and "
                "readings are not updated this run (its list data is)"
            )
            self.failed_details.append(message)
            logger.warning("heat: %s", message)
        for site_id, outcome in outcomes:
            if isinstance(outcome, dict):
                yield site_id, outcome


def _timed_out(exc: BaseException) -> bool:
    """Whether the request behind a mapped network error timed out (the mapping keeps the
    ``requests`` exception as the context)."""
    cause = exc.__cause__ or exc.__context__
    return isinstance(cause, Timeout) or "Timeout" in str(exc)


def _reason(exc: BaseException) -> str:
    cause = exc.__cause__ or exc.__context__
    return type(cause).__name__ if cause is not None else "no connection"
