"""SolarKnock constants: paths, keys, page size. No logic here."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

SOURCE_NAME = "solarknock"
DEFAULT_BASE_URL = "https://app.solarknock.com/api/v1/reporting"
DEFAULT_PAGE_SIZE = 1000  # the API's maximum
MAX_PAGE_SIZE = 1000
DEFAULT_LOOKBACK_SECONDS = 600  # re-read the last 10 minutes before the checkpoint
ORG_PATH = "org"
ATTACHMENTS_PATH = "attachments"
ATTACHMENTS_TABLE = "lead_attachments"  # one row per (lead_id, file_id)
ATTACHMENT_RETRIES_RESOURCE = "lead_attachment_retries"  # earlier failures, same table
DEFAULT_BLOB_DIR = "blobs"  # outside a solarsync run: next to the DuckDB file (runtime.py)
DEFAULT_DOWNLOAD_CONCURRENCY = 4
DOWNLOAD_CHUNK_SIZE = 1 << 20  # bytes per read while streaming a file
MAX_ATTACHMENT_RETRY_RUNS = 10  # a file failing this many runs waits for its lead to change

# hints for what the user should do, by API error code or HTTP status
ERROR_HINTS: dict[int | str, str] = {
    "UNAUTHENTICATED": "set sources.solarknock.api_key in .dlt/secrets.toml "
    "(or SOURCES__SOLARKNOCK__API_KEY)",
    "INVALID_KEY": "the key was not recognised: rotate it (the org's manager invite code) in "
    ".dlt/secrets.toml [sources.solarknock] api_key or SOURCES__SOLARKNOCK__API_KEY",
    401: "check sources.solarknock.api_key in .dlt/secrets.toml",
    402: "the organisation's SolarKnock subscription has expired: renew it, then rerun",
    "SUBSCRIPTION_EXPIRED": "the organisation's SolarKnock subscription has expired: "
    "renew it, then rerun",
    403: "the key lacks read access to this endpoint: check the org's API settings",
    404: "the endpoint path is wrong for this server: check sources.solarknock.base_url "
    "and sources.solarknock.endpoints",
    "INVALID_PARAM": "a request parameter was rejected: check start_date, page_size and "
    "backfill dates",
    "INVALID_CURSOR": "the API rejected its own cursor twice; rerun later",
    "network": "check sources.solarknock.base_url and the network, then rerun "
    "(nothing was lost: the checkpoint did not move)",
    "malformed": "nothing from this run was loaded and the checkpoint did not move; "
    "rerun later, and report the API change if it persists",
}

#: columns every list table has, typed even before a value shows up
TIMESTAMP_COLUMNS: dict[str, dict[str, Any]] = {
    "created_at": {"data_type": "timestamp", "nullable": True},
    "updated_at": {"data_type": "timestamp", "nullable": True},
    "deleted_at": {"data_type": "timestamp", "nullable": True},
}
#: hints of every list table beyond what its Arrow pages say (they type ``*_at`` columns, an
#: all-null ``deleted_at`` included): the newest version of a key wins within a load
LIST_COLUMN_HINTS: dict[str, dict[str, Any]] = {"updated_at": {"dedup_sort": "desc"}}


@dataclass(frozen=True)
class ListEndpoint:
    """One incremental list endpoint = one table."""

    name: str  # resource and table name
    path: str  # default path under the base URL (configurable)
    #: primary-key candidates, in order: the first one whole in the first row is used and kept
    keys: tuple[tuple[str, ...], ...] = (("id",),)
    columns: dict[str, dict[str, Any]] = field(default_factory=dict)


LIST_ENDPOINTS: tuple[ListEndpoint, ...] = (
    ListEndpoint("users", "users"),
    ListEndpoint("knocks", "knocks"),
    ListEndpoint("leads", "leads"),
    ListEndpoint("appointments", "appointments"),
    ListEndpoint("daily_stats", "daily-stats", keys=(("user_id", "date"), ("id",))),
    ListEndpoint("app_opens", "app-opens", keys=(("user_id", "date"), ("user_id", "day"), ("id",))),
    ListEndpoint("counties", "counties", keys=(("county_fips",), ("fips",), ("id",))),
)

#: fields of /org that are secrets (invite codes are API keys): never loaded
ORG_SECRET_FIELDS = ("invite_codes", "invite_code", "api_keys")
