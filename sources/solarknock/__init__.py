"""SolarKnock Reporting API source (dataset ``solarknock``).

Every row carries ``org_id`` (the org of the key, from ``GET /org``) and ``account`` (the
configured account, docs/accounts.md), and every key starts with ``org_id``: two orgs' ids may
be the same, their rows never merge.

Tables (key; cursor; write disposition):

* ``org``: the organisation behind the key (``org_id``; none; merge: one row per org, loaded
  when it changed). Invite codes are keys and are never loaded.
* ``users``, ``knocks``, ``leads``, ``appointments``: (``org_id, id``; ``updated_at``; merge)
* ``daily_stats``, ``app_opens``: (``org_id, user_id, date``; ``updated_at``; merge)
* ``counties``: (``org_id, county_fips``; ``updated_at``; merge)
* nested lists (``actions_taken``, ``attachments``, ``knock_timestamps``) stay in their row as
  JSON columns; the ``analytics`` views expose them as bridge views and text.
* the documented fields the views read are declared with their types
  (``settings.KNOCK_COLUMNS`` etc.): they exist from the first load, and a value of another kind
  (an object where a number is documented) lands in ``<name>__v_<type>``.
* ``lead_attachments``: (``org_id, lead_id, file_id``; the leads' window; merge) the files of the leads
  copied into a blob store, with ``blob_path``, ``sha256`` and a ``status``
  (``sources.solarknock.attachments``; off with ``attachments.enabled = false``). Files follow
  their leads: a backfill of ``leads`` (``--resource leads``) also runs ``lead_attachments``
  for the leads it reads (:func:`backfill_followers`).

Every list table syncs the window ``(since, until]`` on ``updated_at`` with
``include_deleted=true``: ``until`` is the server's clock at the start of the run (``GET /org``),
``since`` the previous checkpoint minus ``lookback_seconds``. Checkpoints live in dlt resource
state, so they advance only together with the load package that carries the rows.
Soft-deleted rows are kept with ``deleted_at`` set.
"""

from __future__ import annotations

import copy
import hashlib
import logging
from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime
from typing import Any

import dlt
import orjson
import pendulum
from dlt.common.configuration.inject import with_config
from dlt.sources import DltResource

from sources.common import ApiError, ConfigurationError
from sources.common import accounts as account_columns
from sources.common.arrow import PageConverter
from sources.common.columns import column, known_columns
from sources.solarknock.attachments import AttachmentsConfig, attachment_resources
from sources.solarknock.client import SolarKnockClient, Window, iso, parse_ts
from sources.solarknock.settings import (
    ATTACHMENTS_TABLE,
    DEFAULT_BASE_URL,
    DEFAULT_LOOKBACK_SECONDS,
    DEFAULT_PAGE_SIZE,
    LIST_COLUMN_HINTS,
    LIST_ENDPOINTS,
    ORG_ID_COLUMN,
    SOURCE_NAME,
    TIMESTAMP_COLUMNS,
    ListEndpoint,
)

logger = logging.getLogger("solarsync.solarknock")

RESOURCE_NAMES = ("org", *(e.name for e in LIST_ENDPOINTS))
#: every table the source may load, attachments enabled or not
TABLES = (*RESOURCE_NAMES, ATTACHMENTS_TABLE)
#: the account columns of every row (``org_id`` first in every key)
ACCOUNT_COLUMNS = (ORG_ID_COLUMN, account_columns.COLUMN)


@with_config(sections=("sources", SOURCE_NAME))
def backfill_followers(attachments: AttachmentsConfig = None) -> dict[str, tuple[str, ...]]:
    """Tables a partial backfill runs along with the ones named (``solarsync backfill
    solarknock --resource leads``): ``lead_attachments`` follows ``leads``, so backfilling
    leads stores their missing or changed files (the transformer walks exactly the leads the
    backfill reads). Nothing follows while ``attachments.enabled`` is false."""
    if attachments is not None and not attachments.enabled:
        return {}
    return {"leads": (ATTACHMENTS_TABLE,)}


@dlt.source(name=SOURCE_NAME, max_table_nesting=2)
def solarknock(
    api_key: str = dlt.secrets.value,
    base_url: str = DEFAULT_BASE_URL,
    page_size: int = DEFAULT_PAGE_SIZE,
    lookback_seconds: int = DEFAULT_LOOKBACK_SECONDS,
    start_date: str | None = None,
    endpoints: Mapping[str, str] | None = None,
    max_attempts: int = 5,
    request_timeout: float = 60.0,
    backoff_factor: float = 1.0,
    attachments: AttachmentsConfig = None,
    backfill: bool = False,
    backfill_since: str | None = None,
    backfill_until: str | None = None,
) -> Sequence[DltResource]:
    """SolarKnock tables (see the module docstring).

    Args:
        api_key: the org's manager invite code, with or without ``sk_`` (secret).
        base_url: API root, e.g. a staging server or the sandbox.
        page_size: rows per request (1..1000).
        lookback_seconds: how far before the last checkpoint each run starts reading again,
            so rows committed late or stamped by a skewed clock are never skipped.
        start_date: optional ISO date/time: never read rows updated before it.
        endpoints: path overrides by table name, e.g. ``{"counties": "geo/counties"}``.
        attachments: ``[sources.solarknock.attachments]``: ``enabled``, ``blob_url``,
            ``max_concurrency``, ``max_file_size``, ``allowed_mime_types``, ``purge_removed``.
        backfill: read ``(backfill_since, backfill_until]`` and merge it without reading or
            moving the nightly checkpoints.
    """
    if not api_key or not str(api_key).strip():
        raise ConfigurationError(
            "api_key is empty",
            source=SOURCE_NAME,
            hint="set sources.solarknock.api_key in .dlt/secrets.toml or SOURCES__SOLARKNOCK__API_KEY",
        )
    paths = {e.name: e.path for e in LIST_ENDPOINTS}
    unknown = set(endpoints or {}) - set(paths)
    if unknown:
        raise ConfigurationError(
            f"unknown endpoints {sorted(unknown)}",
            source=SOURCE_NAME,
            hint=f"sources.solarknock.endpoints takes {sorted(paths)}",
        )
    paths.update({k: str(v).strip("/") for k, v in (endpoints or {}).items()})
    client = SolarKnockClient(
        api_key.strip(),
        base_url,
        page_size=page_size,
        row_keys={"/" + paths[e.name]: e.keys for e in LIST_ENDPOINTS},
        clock_path=paths["users"],
        max_attempts=max_attempts,
        timeout=request_timeout,
        backoff_factor=backoff_factor,
    )
    floor = _parse_option("start_date", start_date)
    bounds = (
        (
            _parse_option("backfill_since", backfill_since),
            _parse_option("backfill_until", backfill_until),
        )
        if backfill
        else None
    )
    if bounds and bounds[0] and bounds[1] and bounds[0] >= bounds[1]:
        raise ConfigurationError(
            f"backfill --since {iso(bounds[0])} is not before --until {iso(bounds[1])}",
            source=SOURCE_NAME,
            hint="swap the dates",
        )

    account = account_columns.current(SOURCE_NAME)

    def stamp() -> dict[str, str]:
        return {ORG_ID_COLUMN: client.org_id(account), account_columns.COLUMN: account}

    @dlt.resource(
        name="org",
        write_disposition={"disposition": "merge", "strategy": "delete-insert"},
        primary_key=[ORG_ID_COLUMN],
        # name: analytics.solarknock_orgs labels the offices with it
        columns={
            **TIMESTAMP_COLUMNS,
            "name": column("text"),
            **account_columns.columns(*ACCOUNT_COLUMNS),
        },
    )
    def org() -> Iterator[dict[str, Any]]:
        """The org's row when it changed since the last load (a run that changed nothing loads
        nothing: merged on ``id``, an unchanged row is not loaded again)."""
        row, _ = client.org_and_server_time()
        if row is None:
            return
        digest = hashlib.sha256(
            orjson.dumps(row, option=orjson.OPT_SORT_KEYS, default=str)
        ).hexdigest()
        # in the source's state: the resources' states are the list endpoints' checkpoints
        state = dlt.current.source_state()
        if state.get("org_row_sha256") == digest:
            return
        yield row
        state["org_row_sha256"] = digest

    # dates such as knock_date land as DATE, not text (timestamps are detected by default)
    dlt.current.source_schema().add_type_detection("iso_date")
    resources: list[DltResource] = [org]
    for endpoint in LIST_ENDPOINTS:
        resources.append(
            _list_resource(client, endpoint, paths[endpoint.name], lookback_seconds, floor, bounds)
        )
    resources = [account_columns.stamped(r, stamp) for r in resources]
    if attachments is None or attachments.enabled:
        leads = next(r for r in resources if r.name == "leads")
        files = attachment_resources(
            client,
            leads,
            attachments,
            max_attempts=max_attempts,
            backoff_factor=backoff_factor,
            account=account,
        )
        resources += [account_columns.stamped(r, stamp) for r in files]
    return resources


def _parse_option(name: str, value: str | None) -> pendulum.DateTime | None:
    if value in (None, ""):
        return None
    try:
        return parse_ts(str(value))
    except Exception:
        raise ConfigurationError(
            f"{name}={value!r} is not an ISO 8601 date or timestamp",
            source=SOURCE_NAME,
            hint="use e.g. 2024-01-31 or 2024-01-31T00:00:00Z",
        ) from None


def _list_resource(
    client: SolarKnockClient,
    endpoint: ListEndpoint,
    path: str,
    lookback_seconds: int,
    floor: pendulum.DateTime | None,
    bounds: tuple[pendulum.DateTime | None, pendulum.DateTime | None] | None,
) -> DltResource:
    declared = copy.deepcopy(endpoint.columns)
    # a fresh copy per use: dlt writes into hint dicts
    columns = {
        **copy.deepcopy(LIST_COLUMN_HINTS),
        **declared,
        **account_columns.columns(*ACCOUNT_COLUMNS),
    }

    def rows() -> Iterator[Any]:
        _, server_now = client.org_and_server_time()
        state = dlt.current.resource_state()
        if bounds is not None:  # backfill: the checkpoint is neither read nor moved
            window = Window(since=bounds[0], until=min(bounds[1] or server_now, server_now))
        else:
            window = next_window(state.get("checkpoint"), server_now, lookback_seconds)
        if floor is not None and (window.since is None or window.since < floor):
            window = Window(since=floor, until=window.until)
        key = _stored_key(state, endpoint)
        # the types the table has (earlier pages and runs) win over the declared ones: an
        # existing warehouse keeps its column types
        convert = PageConverter(
            endpoint.name,
            known=lambda: {**declared, **known_columns(endpoint.name)},
            always=("deleted_at",),
        )
        logger.info("solarknock %s: window %s", endpoint.name, window)
        counts = {"rows": 0, "new": 0, "updated": 0, "deleted": 0}
        for page_no, page in client.pages(path, window):
            if page_no == 1 and counts["rows"]:  # the window restarted (INVALID_CURSOR)
                counts = dict.fromkeys(counts, 0)
            if not page:
                continue
            if key is None:
                key = _resolve_key(endpoint, page[0], page_no)
                state["primary_key"] = list(key)
            _check_keys(endpoint, key, page, page_no)
            first_page = counts["rows"] == 0
            _count_changes(counts, page, window.since)
            # Arrow: dlt writes Parquet without its row-by-row normalizer
            table = convert(page, not_null=key)
            if key != endpoint.keys[0] and first_page:
                # the key found in the data differs from the declared one: say so every run
                hints = dlt.mark.make_hints(primary_key=account_columns.keyed(key, ORG_ID_COLUMN))
                yield dlt.mark.with_hints(table, hints)
            else:
                yield table
        logger.info("solarknock %s: %d rows in %s", endpoint.name, counts["rows"], window)
        if bounds is None:
            previous = state.get("checkpoint")
            if previous is None or parse_ts(previous) < window.until:
                state["checkpoint"] = iso(window.until)
            state["last_sync"] = {"until": iso(window.until), **counts}

    return dlt.resource(
        rows,
        name=endpoint.name,
        write_disposition={"disposition": "merge", "strategy": "delete-insert"},
        primary_key=account_columns.keyed(endpoint.keys[0], ORG_ID_COLUMN),
        columns=columns,
    )


def next_window(
    checkpoint: str | None, server_now: pendulum.DateTime, lookback_seconds: int
) -> Window:
    """The incremental window after ``checkpoint``: ``(checkpoint - lookback, server_now]``.

    A server clock that went backwards (another node, a skewed host) never produces an empty
    or inverted window: the window then starts ``lookback`` before ``server_now``.
    """
    if checkpoint is None:
        return Window(since=None, until=server_now)
    lookback = pendulum.duration(seconds=lookback_seconds)
    since = min(parse_ts(checkpoint), server_now) - lookback
    return Window(since=since, until=server_now)


def _count_changes(
    counts: dict[str, int], page: list[dict[str, Any]], since: pendulum.DateTime | None
) -> None:
    """Tally rows as deleted (``deleted_at`` set), new (created inside the window) or updated."""
    counts["rows"] += len(page)
    for row in page:
        if row.get("deleted_at"):
            counts["deleted"] += 1
        elif since is None or _after(row.get("created_at"), since):
            counts["new"] += 1
        else:
            counts["updated"] += 1


def _after(value: Any, moment: datetime) -> bool:
    if not isinstance(value, str):
        return False
    try:
        return datetime.fromisoformat(value) > moment
    except ValueError:
        return False


def _stored_key(state: Mapping[str, Any], endpoint: ListEndpoint) -> tuple[str, ...] | None:
    stored = state.get("primary_key")
    return tuple(stored) if stored else None


def _resolve_key(endpoint: ListEndpoint, row: Mapping[str, Any], page_no: int) -> tuple[str, ...]:
    for candidate in endpoint.keys:
        if all(row.get(col) is not None for col in candidate):
            return candidate
    raise ApiError(
        f"rows have none of the key fields {[list(k) for k in endpoint.keys]} (page {page_no})",
        source=SOURCE_NAME,
        endpoint="/" + endpoint.path,
        hint="nothing was loaded; report the API change",
    )


def _check_keys(
    endpoint: ListEndpoint, key: tuple[str, ...], page: list[dict[str, Any]], page_no: int
) -> None:
    for index, row in enumerate(page):
        for col in key:
            if row.get(col) is None:
                raise ApiError(
                    f"row {index} has no {col!r} (page {page_no})",
                    source=SOURCE_NAME,
                    endpoint="/" + endpoint.path,
                    hint="nothing was loaded and the checkpoint did not move; report the API change",
                )


@with_config(sections=("sources", SOURCE_NAME))
def check(
    api_key: str = dlt.secrets.value,
    base_url: str = DEFAULT_BASE_URL,
    endpoints: Mapping[str, str] | None = None,
) -> list[tuple[str, str]]:
    """Verify the key and every endpoint path with one small request each; loads nothing.

    Returns ``(endpoint, what was found)`` pairs; raises the first error.
    """
    client = SolarKnockClient(api_key.strip(), base_url, page_size=1, max_attempts=2)
    org, server_now = client.org_and_server_time()
    name = (org.get("name") or org.get("id")) if org else None
    found = [("/org", f"org {name!r}, server clock {iso(server_now)}" if org else "not found")]
    paths = {e.name: e.path for e in LIST_ENDPOINTS} | dict(endpoints or {})
    window = Window(since=None, until=server_now)
    for endpoint in LIST_ENDPOINTS:
        path = paths[endpoint.name]
        _, rows = next(client.pages(path, window), (0, []))
        found.append(("/" + path, "reachable" + (", has rows" if rows else ", empty")))
    return found


__all__ = [
    "ACCOUNT_COLUMNS",
    "RESOURCE_NAMES",
    "TABLES",
    "backfill_followers",
    "check",
    "next_window",
    "solarknock",
]
