"""SolarAssistant source (dataset ``solarassistant``): the cloud API's account, sites and
members, and metric snapshots of every site through the cloud proxy.

Every row carries ``account`` (the configured account: docs/accounts.md) and every key starts
with it: a site shared between two accounts is kept once per account, each account's tables
equal what its token sees (the analytics views show such a site once). What was a ``replace``
before accounts replaces the account's own rows only (a merge by ``account``).

Tables (key; write disposition):

* ``users``: the current user (``account, id``; replaced per account).
* ``sites``: every site of the account, the list row merged with the site's details
  (``owner__*``, ``organization__*`` and any extra field the API gives) (``account, id``;
  replaced per account).
* ``site_members``: who has access to each site and with which role (``account, site_id,
  user_id``; merge by account and site): each site whose members were listed (``GET
  /sites/:id/users``, else the ``users`` of the site's details) replaces its rows, so a removed
  member disappears; a site whose members could not be read keeps its rows; a site that left
  the account loses them.
* ``organizations``: the organizations the sites belong to (``account, id``; merge).
* ``org_users``: the organization's users, ``offset``/``limit`` paging (``account, id``;
  replaced per account). An account without an organization gets an error from the API: the
  table is skipped with a warning, the run goes on.
* ``metrics``: one row per ``account, site_id, topic, polled_at`` (append): ``device``, ``group``,
  ``name``, ``unit``, ``number``, and the value as ``value_number`` (numbers, booleans as 1/0,
  numeric strings), ``value_text`` (always, as the API sent it) and ``value_type``
  (``number``/``string``/``boolean``/``null``/``json``). ``polled_at`` is the instant the poll
  started (UTC), the same for every row of a poll: the API's rows carry no timestamp.
* ``metric_polls``: one row per ``account, site_id, polled_at`` (append): ``status`` ``ok``/``offline``/
  ``error``, ``reason``, ``http_status``, ``metric_count``, ``authorized`` (a new site token was
  obtained), ``duration_ms``, ``timezone`` (the site's configured time zone, for daily views).
  Offline sites never fail the run, nor does a failing site while another site answers; a poll
  in which no site could be read and at least one failed with an error (not offline) is a
  failed poll: its rows are loaded, and ``last_sync.errors`` in the resource state tells the
  load step to report the source as failed (exit 1).

One call of :func:`solarassistant` is one poll. Site tokens (7-day life) are reused from
process memory until shortly before they expire, and renewed once on a 401; neither they nor
the site keys are ever logged, loaded or put in dlt state.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import dlt
import pendulum
from dlt.common.configuration.inject import with_config
from dlt.sources import DltResource

from sources.common import ConfigurationError, SolarsyncError, accounts, redact, stats_for
from sources.common.clients import ClientCache
from sources.solarassistant.client import SolarAssistantClient, forget_site_tokens
from sources.solarassistant.metrics import poll_errors, poll_sites
from sources.solarassistant.options import select, selectors, zones
from sources.solarassistant.settings import (
    DEFAULT_BASE_URL,
    DEFAULT_CONCURRENCY,
    DEFAULT_PAGE_SIZE,
    DEFAULT_PROXY_BACKOFF,
    DEFAULT_PROXY_MAX_ATTEMPTS,
    DEFAULT_PROXY_TIMEOUT,
    METRIC_POLLS_COLUMNS,
    METRICS_COLUMNS,
    NO_ORGANIZATION,
    SITE_MEMBERS_COLUMNS,
    SOURCE_NAME,
)

logger = logging.getLogger("solarsync.solarassistant")

RESOURCE_NAMES = (
    "users",
    "sites",
    "site_members",
    "organizations",
    "org_users",
    "metrics",
    "metric_polls",
)
T = TypeVar("T")
#: a table replaced per account: the account's rows go, the new ones come
PER_ACCOUNT: dict[str, Any] = {
    "write_disposition": {"disposition": "merge", "strategy": "delete-insert"},
    "merge_key": accounts.COLUMN,
}

#: clients by their settings: the polls of one process share sessions (and TLS connections)
_CLIENTS: ClientCache[SolarAssistantClient] = ClientCache()


@dlt.source(name=SOURCE_NAME)
def solarassistant(
    api_token: str = dlt.secrets.value,
    base_url: str = DEFAULT_BASE_URL,
    sites: Any = None,
    topics: Any = None,
    concurrency: int = DEFAULT_CONCURRENCY,
    page_size: int = DEFAULT_PAGE_SIZE,
    max_attempts: int = 5,
    request_timeout: float = 60.0,
    backoff_factor: float = 1.0,
    proxy_timeout: float = DEFAULT_PROXY_TIMEOUT,
    proxy_max_attempts: int = DEFAULT_PROXY_MAX_ATTEMPTS,
    proxy_backoff_factor: float = DEFAULT_PROXY_BACKOFF,
    timezone: str | None = None,
    site_timezones: Any = None,
) -> Sequence[DltResource]:
    """SolarAssistant tables (see the module docstring).

    Args:
        api_token: the API token from the user details page (secret).
        base_url: the cloud API root (default the vendor's; e.g. the sandbox).
        sites: which sites to poll for metrics: ids or names, a list or a comma-separated
            string; empty or ``"all"``: every site. The cloud tables always cover every site.
        topics: metric topic filter: a glob (``total/*``) or a list of globs; default all.
        concurrency: sites polled (and site details read) at a time.
        page_size: ``limit`` of ``GET /users`` requests.
        proxy_timeout, proxy_max_attempts, proxy_backoff_factor: per site and poll; an
            offline site costs at most ``proxy_max_attempts`` proxy requests.
        timezone: the IANA time zone of every site (e.g. ``Europe/Berlin``) for the daily
            energy views; default none (UTC).
        site_timezones: per site id or name, its IANA time zone (over ``timezone``): a
            mapping, or a JSON object in the env var.
    """
    token = str(api_token or "").strip()
    if not token:
        raise ConfigurationError(
            "api_token is empty",
            source=SOURCE_NAME,
            hint="set sources.solarassistant.api_token in .dlt/secrets.toml or "
            "SOURCES__SOLARASSISTANT__API_TOKEN",
        )
    if concurrency < 1 or page_size < 1:
        raise ConfigurationError(
            f"concurrency={concurrency} and page_size={page_size} must be at least 1",
            source=SOURCE_NAME,
            hint="fix sources.solarassistant.concurrency / page_size",
        )
    zone_of, zoned = zones(timezone, site_timezones)
    polled_at = _now()  # one instant for every row of this poll
    client = _client(
        token,
        base_url,
        page_size=page_size,
        concurrency=concurrency,
        max_attempts=max_attempts,
        timeout=request_timeout,
        backoff_factor=backoff_factor,
        proxy_timeout=proxy_timeout,
        proxy_max_attempts=proxy_max_attempts,
        proxy_backoff_factor=proxy_backoff_factor,
    )
    wanted = selectors(sites)
    topic_globs = selectors(topics) or [None]

    site_list = _once(client.sites)

    def fetch_all(fetch: Callable[[int], T], what: str) -> Callable[[], dict[int, T | None]]:
        """Per site, concurrently, once per poll: None for a site whose request failed."""

        def run() -> dict[int, T | None]:
            ids = [int(s["id"]) for s in site_list()]

            def one(site_id: int) -> T | None:
                try:
                    return fetch(site_id)
                except SolarsyncError as exc:
                    if exc.status == 401:
                        raise  # the token itself: fail the run
                    logger.warning("solarassistant site %s: %s failed: %s", site_id, what, exc)
                    return None

            if not ids:
                return {}
            with ThreadPoolExecutor(max_workers=min(concurrency, len(ids))) as pool:
                return dict(zip(ids, pool.map(one, ids), strict=True))

        return _once(run)

    details = fetch_all(client.site, "reading its details")
    members = fetch_all(client.site_members, "listing its members")
    selected = _once(lambda: select(site_list(), wanted))
    poll = _once(lambda: poll_sites(client, selected(), topic_globs, concurrency, polled_at))

    account = accounts.current(SOURCE_NAME)
    key = accounts.keyed
    stamp = accounts.columns(accounts.COLUMN)

    @dlt.resource(name="users", primary_key=key("id"), columns=stamp, **PER_ACCOUNT)
    def users() -> Iterator[dict[str, Any]]:
        yield _compact(client.user())

    @dlt.resource(name="sites", primary_key=key("id"), columns=stamp, **PER_ACCOUNT)
    def sites_() -> Iterator[list[dict[str, Any]]]:
        found = details()
        yield [_site_row(row, found.get(int(row["id"]))) for row in site_list()]

    @dlt.resource(
        name="site_members",
        write_disposition={"disposition": "merge", "strategy": "delete-insert"},
        primary_key=key(("site_id", "user_id")),
        merge_key=key("site_id"),
        columns={**SITE_MEMBERS_COLUMNS, **stamp},
    )
    def site_members() -> Iterator[list[dict[str, Any]]]:
        state = dlt.current.resource_state()
        listed = members()
        previous = {int(i) for i in state.get("site_ids", [])}
        kept, rows = set(), []
        for site_id, found in listed.items():
            if found is None:  # the members endpoint failed: the details list them too
                found = _detail_members(details().get(site_id))
            if found is None:  # both failed: the site's rows stay as they are
                if site_id in previous:
                    kept.add(site_id)
                continue
            for member in found:
                rows.append(_member_row(site_id, member))
            if found:
                kept.add(site_id)
        # sites that left the account, or have no member left: remove their rows
        for site_id in sorted(previous - kept):
            rows.append({"site_id": site_id, "user_id": 0, "_removed": True})
        state["site_ids"] = sorted(kept)
        yield rows

    @dlt.resource(
        name="organizations", write_disposition="merge", primary_key=key("id"), columns=stamp
    )
    def organizations() -> Iterator[list[dict[str, Any]]]:
        orgs: dict[Any, dict[str, Any]] = {}
        for detail in details().values():
            org = (detail or {}).get("organization")
            if isinstance(org, dict) and org.get("id") is not None:
                orgs[org["id"]] = org
        yield list(orgs.values())

    @dlt.resource(name="org_users", primary_key=key("id"), columns=stamp, **PER_ACCOUNT)
    def org_users() -> Iterator[list[dict[str, Any]]]:
        pages = 0
        try:
            for page in client.org_users():
                pages += 1
                yield [_compact(row) for row in page]
        except SolarsyncError as exc:
            refused = exc.code == NO_ORGANIZATION or (
                exc.status is not None and 400 <= exc.status < 500 and exc.status != 429
            )
            if pages or not refused:
                raise
            # the API's own answer, without the generic hint of its status (a 401 here does
            # not mean the token is wrong: /user and /sites just accepted it)
            answer = " ".join(
                str(part) for part in (exc.status, exc.code, redact(exc.detail)) if part
            )
            logger.warning(
                "solarassistant org_users skipped: GET /users is given only to accounts with a "
                "registered organization, and this account was refused (%s); the run goes on",
                answer,
            )

    @dlt.resource(
        name="metrics",
        write_disposition="append",
        primary_key=key(("site_id", "topic", "polled_at")),
        columns={**METRICS_COLUMNS, **stamp},
    )
    def metrics() -> Iterator[Any]:
        for result in poll():
            if result.table is not None and result.table.num_rows:
                yield result.table

    @dlt.resource(
        name="metric_polls",
        write_disposition="append",
        primary_key=key(("site_id", "polled_at")),
        columns={**METRIC_POLLS_COLUMNS, **stamp},
    )
    def metric_polls() -> Iterator[list[dict[str, Any]]]:
        results = poll()
        counts = {s: sum(r.status == s for r in results) for s in ("ok", "offline", "error")}
        logger.info(
            "solarassistant poll at %s: %d sites, %s",
            polled_at.isoformat(),
            len(results),
            ", ".join(f"{n} {s}" for s, n in counts.items()),
        )
        known = {str(v) for s in site_list() for v in (s["id"], s.get("name"))}
        if zoned - known:
            logger.warning(
                "solarassistant: sources.solarassistant.site_timezones names %s, not sites of "
                "this account",
                sorted(zoned - known),
            )
        errors = poll_errors(results)
        if wanted and not selected():
            errors.append(
                str(
                    ConfigurationError(
                        f"sources.solarassistant.sites names {wanted}: none is a site of this "
                        "account, so no site was polled",
                        source=SOURCE_NAME,
                        hint="use ids or names of the solarassistant.sites table (or 'all')",
                    )
                )
            )
        # read by the load step after the load: a poll whose rows loaded may still have failed
        # (never secrets: reasons are redacted). Set every poll, so none keeps an old error.
        dlt.current.resource_state("metric_polls")["last_sync"] = {"errors": errors}
        yield [{**r.record(polled_at), "timezone": zone_of(r)} for r in results]

    return [
        accounts.stamped(resource, {accounts.COLUMN: account})
        for resource in (
            users,
            sites_,
            site_members,
            organizations,
            org_users,
            metrics,
            metric_polls,
        )
    ]


# --------------------------------------------------------------------------- helpers
def _now() -> pendulum.DateTime:
    """The instant of a poll (UTC); tests replace it to date polls."""
    return pendulum.now("UTC")


def _once(fn: Callable[[], T]) -> Callable[[], T]:
    """``fn`` evaluated on first use and shared by the resources of one poll."""
    lock, box = threading.Lock(), []

    def get() -> T:
        with lock:
            if not box:
                box.append(fn())
            return box[0]

    return get


def _client(token: str, base_url: str, **options: Any) -> SolarAssistantClient:
    key = (token, base_url, tuple(sorted(options.items())))
    client, new = _CLIENTS.get(key, lambda: SolarAssistantClient(token, base_url, **options))
    if not new:  # the CLI resets request counters per run: count into the current ones
        client.use_stats(stats_for(SOURCE_NAME))
    return client


def _site_row(row: dict[str, Any], detail: dict[str, Any] | None) -> dict[str, Any]:
    """The list row with the details over it; the member list goes to ``site_members``."""
    merged = {**row, **(detail or {})}
    merged.pop("users", None)
    # a null (e.g. no organization) is the same as an absent field: no untyped column
    return {k: v for k, v in merged.items() if v is not None}


def _detail_members(detail: dict[str, Any] | None) -> list[dict[str, Any]] | None:
    users = (detail or {}).get("users")
    if isinstance(users, list) and all(isinstance(u, dict) and "id" in u for u in users):
        return users
    return None


def _member_row(site_id: int, member: dict[str, Any]) -> dict[str, Any]:
    out = {"site_id": site_id, "user_id": member["id"]}
    out.update((k, v) for k, v in member.items() if k != "id")
    return _compact(out)


def _compact(row: dict[str, Any]) -> dict[str, Any]:
    """A null is the same as an absent field: a field null in every row would otherwise make
    dlt warn about a column it cannot type."""
    return {k: v for k, v in row.items() if v is not None}


def reset_caches() -> None:
    """Forget the clients and site tokens this process keeps between polls (tests)."""
    _CLIENTS.clear()
    forget_site_tokens()


@with_config(sections=("sources", SOURCE_NAME))
def check(
    api_token: str = dlt.secrets.value,
    base_url: str = DEFAULT_BASE_URL,
    sites: Any = None,
    proxy_timeout: float = DEFAULT_PROXY_TIMEOUT,
) -> list[tuple[str, str]]:
    """The token, the site list, the org users endpoint and one site's metrics through the
    proxy; loads nothing. Returns ``(endpoint, what was found)``; raises the first error."""
    client = SolarAssistantClient(
        str(api_token).strip(), base_url, max_attempts=2, proxy_timeout=proxy_timeout
    )
    user = client.user()
    found = [("/user", f"user {user.get('id')}")]
    site_list = client.sites()
    found.append(("/sites", f"{len(site_list)} site(s)"))
    try:
        next(client.org_users(), None)
        found.append(("/users", "reachable (organization account)"))
    except SolarsyncError as exc:
        found.append(("/users", f"not available ({exc.status}): org_users will be skipped"))
    selected = select(site_list, selectors(sites))
    if selected:
        (result,) = poll_sites(client, selected[:1], [None], 1)
        what = f"{result.status}, {len(result.rows)} metrics"
        found.append(
            (
                f"proxy site {result.site_id}",
                what + (f" ({result.reason})" if result.reason else ""),
            )
        )
    return found


__all__ = ["RESOURCE_NAMES", "check", "reset_caches", "solarassistant"]
