"""SolarAssistant constants: paths, defaults, column hints. No logic here."""

from __future__ import annotations

from typing import Any

from sources.common.columns import column, typed

SOURCE_NAME = "solarassistant"
DEFAULT_BASE_URL = "https://solar-assistant.io/api/v1"
API_ROOT = "/api/v1"  # added to a base_url given as a bare host

# cloud API paths (under base_url)
USER_PATH = "user"
SITES_PATH = "sites"
SITE_PATH = "sites/{site_id}"
SITE_MEMBERS_PATH = "sites/{site_id}/users"
AUTHORIZE_PATH = "sites/{site_id}/authorize"
ORG_USERS_PATH = "users"
NO_ORGANIZATION = "NO_ORGANIZATION"  # error code: GET /users refused for lack of an organization

# proxy path (under https://<host from authorize>)
METRICS_PATH = "/api/v1/metrics"

DEFAULT_PAGE_SIZE = 100  # org users per request; the offset advances by rows received
DEFAULT_CONCURRENCY = 16  # sites handled at a time (cloud details and metric polls)
DEFAULT_PROXY_TIMEOUT = 15.0  # seconds to wait for a site's answer through the proxy
DEFAULT_PROXY_MAX_ATTEMPTS = 2  # an offline site costs at most this many proxy calls per poll
DEFAULT_PROXY_BACKOFF = 0.5

#: the vendor's stated lifetime of a site token, and how long before its end we renew it
SITE_TOKEN_LIFETIME_S = 7 * 24 * 3600
SITE_TOKEN_RENEW_MARGIN_S = 3600

#: proxy answers that mean "the site is not connected" rather than "something is wrong"
OFFLINE_STATUSES = frozenset({408, 502, 503, 504, 520, 521, 522, 523, 524})
OFFLINE_WORDS = ("offline", "not connected", "unreachable", "disconnected", "timed out")

#: metric row fields copied as they are (``value`` is split into typed columns)
METRIC_FIELDS = ("device", "group", "name", "unit", "number")

# hints for what the user should do, by HTTP status or failure kind
ERROR_HINTS: dict[int | str, str] = {
    401: "the API token was rejected: generate a new one on your SolarAssistant user page and "
    "set sources.solarassistant.api_token in .dlt/secrets.toml (or "
    "SOURCES__SOLARASSISTANT__API_TOKEN)",
    403: "the API token lacks access to this endpoint or site",
    404: "not found: check sources.solarassistant.base_url (and the site ids in "
    "sources.solarassistant.sites)",
    "network": "check sources.solarassistant.base_url and the network, then rerun "
    "(nothing was lost)",
    "malformed": "nothing from this run was loaded; rerun later, and report the API change if it "
    "persists",
}

_OFFLINE_HINT = "the site is offline or its proxy did not answer; the next poll tries again"
#: the same for the proxy, where most failures are the site's, not the account's
PROXY_HINTS: dict[int | str, str] = {
    **{status: _OFFLINE_HINT for status in OFFLINE_STATUSES},
    "network": _OFFLINE_HINT,
    401: "the proxy rejected the site token twice (after authorizing again)",
    403: "the proxy refused the site key: the site may have been re-registered",
    404: "the site's device has no such endpoint (older firmware?)",
    "malformed": "this site's poll is recorded as an error and the other sites are loaded; "
    "the next poll tries again (report the device's answer if it persists)",
}

#: typed columns of the tables built by code (the cloud tables are inferred by dlt)
METRICS_COLUMNS: dict[str, dict[str, Any]] = {
    "site_id": column("bigint", False),
    "topic": column("text", False),
    "polled_at": column("timestamp", False),
    **typed(
        device="text",
        group="text",
        name="text",
        unit="text",
        number="bigint",
        value_number="double",
        value_text="text",
        value_type="text",
    ),
}
METRIC_POLLS_COLUMNS: dict[str, dict[str, Any]] = {
    "site_id": column("bigint", False),
    "polled_at": column("timestamp", False),
    **typed(site_name="text"),
    "status": column("text", False),
    **typed(
        reason="text",
        http_status="bigint",
        metric_count="bigint",
        authorized="bool",
        duration_ms="bigint",
        timezone="text",
    ),
}
SITE_MEMBERS_COLUMNS: dict[str, dict[str, Any]] = {
    "site_id": column("bigint", False),
    "user_id": column("bigint", False),
    **typed(role="text"),
    # set only on the markers that remove every member of a site that left the account;
    # such rows are deleted, never stored
    "_removed": {"data_type": "bool", "hard_delete": True},
}
