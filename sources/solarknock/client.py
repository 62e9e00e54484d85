"""All HTTP of the SolarKnock Reporting API: auth, the list envelope, windows, cursors, errors."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Any

import pendulum
from dlt.sources.helpers.rest_client.paginators import JSONResponseCursorPaginator
from requests import Response

from sources.common import (
    ApiClient,
    ApiError,
    BearerAuth,
    InvalidCursorError,
    MalformedResponseError,
    SolarsyncError,
    limiter_for,
    register_secret,
)
from sources.solarknock.settings import (
    ERROR_HINTS,
    MAX_PAGE_SIZE,
    ORG_PATH,
    ORG_SECRET_FIELDS,
    SOURCE_NAME,
)

logger = logging.getLogger("solarsync.solarknock")


def iso(dt: pendulum.DateTime) -> str:
    """The API's timestamp form: UTC, milliseconds, ``Z``."""
    dt = dt.in_tz("UTC")
    return dt.format("YYYY-MM-DDTHH:mm:ss.SSS") + "Z"


def parse_ts(value: str) -> pendulum.DateTime:
    parsed = pendulum.parse(value)
    if not isinstance(parsed, pendulum.DateTime):
        raise ValueError(f"not a timestamp: {value!r}")
    return parsed.in_tz("UTC")


def make_validator(
    row_keys: Mapping[str, Sequence[tuple[str, ...]]],
) -> Callable[[Any, str], str | None]:
    """Shape check run on every 2xx JSON body (a failure is retried, then raised).

    ``row_keys`` maps an endpoint path (``/knocks``) to its primary-key candidates: every row
    must carry ``updated_at`` and at least one complete candidate.
    """

    def validate(body: Any, endpoint: str) -> str | None:
        if not isinstance(body, dict):
            return f"expected a JSON object, got {type(body).__name__}"
        if endpoint.rstrip("/").endswith("/" + ORG_PATH):
            return None  # a single object, with or without a "data" wrapper
        data = body.get("data")
        if not isinstance(data, list):
            return "the envelope has no 'data' list"
        pagination = body.get("pagination")
        if pagination is not None and not isinstance(pagination, dict):
            return "'pagination' is not an object"
        candidates = row_keys.get(endpoint.rstrip("/"), ())
        for index, row in enumerate(data):
            if not isinstance(row, dict):
                return f"row {index} is not an object"
            if row.get("updated_at") is None:
                return f"row {index} has no 'updated_at'"
            if candidates and not any(all(row.get(c) is not None for c in k) for k in candidates):
                return f"row {index} has no key ({' or '.join('+'.join(k) for k in candidates)})"
        return None

    return validate


@dataclass(frozen=True)
class Window:
    """The sync window ``(since, until]`` on ``updated_at``; ``since`` None = from the start."""

    since: pendulum.DateTime | None
    until: pendulum.DateTime

    def params(self) -> dict[str, str]:
        out = {"until": iso(self.until)}
        if self.since is not None:
            out["since"] = iso(self.since)
        return out

    def __str__(self) -> str:
        since = iso(self.since) if self.since else "the beginning"
        return f"({since}, {iso(self.until)}]"


class SolarKnockClient:
    """Typed access to the Reporting API for one key (one organisation)."""

    def __init__(
        self,
        api_key: str,
        base_url: str,
        *,
        page_size: int,
        row_keys: Mapping[str, Sequence[tuple[str, ...]]] | None = None,
        clock_path: str = "users",
        max_attempts: int = 5,
        timeout: float = 60.0,
        backoff_factor: float = 1.0,
    ) -> None:
        if not 1 <= page_size <= MAX_PAGE_SIZE:
            raise ValueError(f"page_size must be 1..{MAX_PAGE_SIZE}, got {page_size}")
        self.page_size = page_size
        self.api = ApiClient(
            SOURCE_NAME,
            base_url,
            auth=BearerAuth(api_key),
            secrets=[api_key],
            limiter=limiter_for(SOURCE_NAME, api_key),
            validate=make_validator(row_keys or {}),
            hints=ERROR_HINTS,
            timeout=(10.0, timeout),
            max_attempts=max_attempts,
            backoff_factor=backoff_factor,
        )
        self._org: tuple[dict[str, Any] | None, pendulum.DateTime] | None = None
        self.clock_path = clock_path

    # -- org and the server clock ------------------------------------------------------------
    def org_and_server_time(self) -> tuple[dict[str, Any] | None, pendulum.DateTime]:
        """``GET /org`` once per run: the org row and the server's clock at that moment.

        A server without ``/org`` (404) still gives its clock through a one-row list request;
        the org row is then None.
        """
        if self._org is None:
            try:
                response = self.api.get(ORG_PATH)
            except ApiError as exc:
                if exc.status != 404:
                    raise
                logger.warning(
                    "solarknock /org: not found; reading the server clock from /%s instead",
                    self.clock_path,
                )
                response = self.api.get(self.clock_path, params={"limit": 1})
                self._org = (None, server_time(response))
                return self._org
            body = response.json()
            org = body.get("data", body) if isinstance(body, dict) else None
            if not isinstance(org, dict):
                raise MalformedResponseError(
                    "expected the org object", source=SOURCE_NAME, endpoint="/" + ORG_PATH
                )
            for name in ORG_SECRET_FIELDS:
                for code in _as_list(org.get(name)):
                    register_secret(code)
            clean = {k: v for k, v in org.items() if k not in ORG_SECRET_FIELDS}
            self._org = (clean, server_time(response))
        return self._org

    def org_id(self, fallback: str) -> str:
        """The id of the key's org (``GET /org``, read once); ``fallback`` (the account's name)
        for a server without ``/org``."""
        org, _ = self.org_and_server_time()
        value = (org or {}).get("id")
        return str(value) if value not in (None, "") else fallback

    # -- lists ------------------------------------------------------------------------------
    def pages(
        self, path: str, window: Window, extra: Mapping[str, Any] | None = None
    ) -> Iterator[tuple[int, list[dict[str, Any]]]]:
        """``(page number, rows)`` of one window, ordered by ``(updated_at, id)``.

        ``INVALID_CURSOR`` restarts the window once from its ``since`` (rows read twice are
        deduplicated by the merge), then fails.
        """
        params = {
            **window.params(),
            "include_deleted": "true",
            "limit": self.page_size,
            **(extra or {}),
        }
        for attempt in (1, 2):
            page_no = 0
            paginator = EnvelopeCursorPaginator()
            try:
                for page in self.api.paginate(
                    path, params=params, paginator=paginator, data_selector="data"
                ):
                    page_no += 1
                    yield page_no, _rows_of(page)
                return
            except InvalidCursorError:
                if attempt == 2:
                    raise
                logger.warning(
                    "solarknock /%s: the API rejected a cursor at page %d; restarting the "
                    "window %s once",
                    path,
                    page_no + 1,
                    window,
                )
            except SolarsyncError as exc:
                raise _at_page(exc, page_no + 1) from None


class EnvelopeCursorPaginator(JSONResponseCursorPaginator):
    """``pagination.next_cursor`` / ``pagination.has_more``: stops when either says so.

    A missing ``has_more`` is not an error (the cursor decides), and a cursor that does not
    advance is, instead of an endless loop.
    """

    def __init__(self) -> None:
        super().__init__(
            cursor_path="pagination.next_cursor",
            cursor_param="cursor",
            has_more_path="pagination.has_more",
        )
        self._previous: str | None = None

    def _handle_missing_has_more(self, response_json: dict[str, Any]) -> None:
        return None

    def update_state(self, response: Response, data: list[Any] | None = None) -> None:
        super().update_state(response, data)
        cursor = self._next_reference
        if self.has_next_page and cursor == self._previous:
            raise MalformedResponseError(
                "the API returned the same cursor twice",
                source=SOURCE_NAME,
                hint="nothing was loaded; report the API bug",
            )
        self._previous = cursor


def _whole_seconds(stamp: str) -> bool:
    """``2026-05-01T17:32:14Z`` (no fraction) rather than ``...14.250Z``."""
    time_part = stamp.split("T", 1)[-1]
    return "." not in time_part and "," not in time_part


def _end_of_second(moment: pendulum.DateTime) -> pendulum.DateTime:
    return moment.replace(microsecond=999_000)


def _rows_of(page: Any) -> list[dict[str, Any]]:
    # RESTClient unwraps a one-element list into its element: undo that
    if isinstance(page, dict):
        return [page]
    return list(page)


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def _at_page(exc: SolarsyncError, page_no: int) -> SolarsyncError:
    """The same error, its message naming the page."""
    clone = type(exc).__new__(type(exc))
    clone.__dict__.update(exc.__dict__)
    clone.detail = f"{exc.detail} (page {page_no})"
    clone.args = (clone._compose(),)
    return clone


def server_time(response: Response) -> pendulum.DateTime:
    """The server's clock: ``meta.fetched_at`` if the body has it, else the ``Date`` header.

    Both usually have whole seconds, truncated: the server's real time is up to a second later.
    The end of the window is rounded up to the last millisecond of that second, so a row
    changed just before the run started is read by this run, not the next one. (A row changed
    in that last fraction after the probe is read early, which the merge makes harmless.)
    """
    try:
        body = response.json()
    except ValueError:
        body = None
    meta = body.get("meta") if isinstance(body, dict) else None
    fetched = meta.get("fetched_at") if isinstance(meta, dict) else None
    if isinstance(fetched, str):
        try:
            moment = parse_ts(fetched)
        except (ValueError, pendulum.parsing.exceptions.ParserError):
            logger.warning("solarknock: meta.fetched_at %r is not a timestamp", fetched)
        else:
            return _end_of_second(moment) if _whole_seconds(fetched) else moment
    date = response.headers.get("Date")
    if date:
        try:
            return _end_of_second(pendulum.instance(parsedate_to_datetime(date)).in_tz("UTC"))
        except (TypeError, ValueError):
            pass
    logger.warning(
        "solarknock: the server sent neither meta.fetched_at nor a Date header; "
        "using the local clock for the sync window"
    )
    return pendulum.now("UTC")
