"""SolarKnock constants: paths, keys, page size. No logic here."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sources.common.columns import typed

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


#: the documented fields the ``analytics`` views read (warehouse/views/solarknock.sql), typed:
#: each column exists from the table's first load on, even while the API sends no value, and
#: a value of another kind (an object where a number is documented, text where a number is)
#: goes to a variant column ``<name>__v_<type>`` instead of retyping the column. Fields not
#: listed here keep the type of their first value.
USER_COLUMNS = typed(id="text", name="text")
KNOCK_COLUMNS = typed(
    id="text",
    user_id="text",
    lead_id="text",
    appointment_id="text",
    homeowner_name="text",
    address="text",
    lat="double",
    lng="double",
    status="text",
    disposition="text",
    notes="text",
    follow_up_date="date",
    county_fips="text",
    knock_date="date",
    actions_taken="json",
)
LEAD_COLUMNS = typed(
    id="text",
    user_id="text",
    name="text",
    email="text",
    phone="text",
    address="text",
    monthly_bill="double",
    roof_type="text",
    interest_level="text",
    status="text",
    score="bigint",
    notes="text",
    system_size_kw="double",
    # a number, or (the vendor leaves the shape open) an object: that lands here
    savings_projection="double",
    savings_projection__v_json="json",
    actions_taken="json",
    attachments="json",
)
DAILY_STAT_COLUMNS = typed(
    user_id="text",
    date="date",
    knock_count="bigint",
    leads="bigint",
    appointments_set="bigint",
    deals_closed="bigint",
    hours_worked="double",
    knock_timestamps="json",
)

LIST_ENDPOINTS: tuple[ListEndpoint, ...] = (
    ListEndpoint("users", "users", columns=USER_COLUMNS),
    ListEndpoint("knocks", "knocks", columns=KNOCK_COLUMNS),
    ListEndpoint("leads", "leads", columns=LEAD_COLUMNS),
    ListEndpoint("appointments", "appointments"),
    ListEndpoint(
        "daily_stats",
        "daily-stats",
        keys=(("user_id", "date"), ("id",)),
        columns=DAILY_STAT_COLUMNS,
    ),
    ListEndpoint("app_opens", "app-opens", keys=(("user_id", "date"), ("user_id", "day"), ("id",))),
    ListEndpoint("counties", "counties", keys=(("county_fips",), ("fips",), ("id",))),
)

#: the account columns on every row (sources.common.accounts, docs/accounts.md): the org of the
#: key, first in every key (two orgs' ids may collide), and the configured account's name
ORG_ID_COLUMN = "org_id"

#: fields of /org that are secrets (invite codes are API keys): never loaded
ORG_SECRET_FIELDS = ("invite_codes", "invite_code", "api_keys")
