"""HEAT constants: paths, versions, hints, column declarations. No logic here."""

from __future__ import annotations

from typing import Any

from sources.common.columns import column

SOURCE_NAME = "heat"
HEALTH_PATH = "health"  # under the base URL, no version, no auth
SITES_PATH = "api/{version}/public/sites"  # the list; a site is SITES_PATH/<siteId>
DEFAULT_API_VERSION = "v1"
KNOWN_API_VERSIONS = ("v0", "v1")
DEFAULT_CONCURRENCY = 4  # per-site detail calls in flight
MAX_CONCURRENCY = 32
DEFAULT_HEALTH_TIMEOUT = 10.0  # seconds; a slower /health counts as "unavailable"
HEALTH_ATTEMPTS = 2

API_KEY_ENV = "SOURCES__HEAT__API_KEY"
# hints for what the user should do, by API error code or HTTP status
ERROR_HINTS: dict[int | str, str] = {
    401: "the API key was rejected (revoked or expired): create a new key in the access group "
    f"and set {API_KEY_ENV} (or api_key under [sources.heat] in .dlt/secrets.toml)",
    403: "the key's access group may not read this: check the group's permissions in HEAT",
    404: "no such endpoint: check sources.heat.base_url (the server root, e.g. "
    "https://host) and sources.heat.api_version (v1 or v0)",
    "network": "check sources.heat.base_url and the network, then rerun (nothing was loaded)",
    "malformed": "nothing from this run was loaded; rerun later, and report the API change if "
    "it persists",
}

# --------------------------------------------------------------------------- columns
#: units glued to the end of a camelCase word: ``activePowerkW`` -> ``active_power_kw``
#: (dlt alone would make it ``active_powerk_w``)
UNIT_SUFFIXES = ("kWh", "kW", "MWh", "MW", "Wh", "kVA", "kVAr", "Pcnt")
#: API field -> column, where a plain snake_case conversion is not the name analysts expect
RENAMED_FIELDS: dict[str, str] = {
    "siteId": "site_id",
    "siteName": "site_name",
    "isOnline": "is_online",
    "reportedAt": "reported_at",
    "startAt": "start_at",
    "endAt": "end_at",
}
#: fields of an asset that describe it rather than measure it: kept in ``assets`` only; every
#: other field (known or new) is a reading and also lands in ``asset_readings``
ASSET_STATIC_FIELDS = ("id", "type", "availableStorageCapacitykWh")
ASSET_STATIC_PREFIXES = ("rated",)
#: asset fields that become other columns (``type`` is the kind the API reports)
ASSET_RENAMED_FIELDS = {"id": "asset_id", "type": "asset_type"}
#: columns the source computes; an API field of the same name never overwrites them
OWN_COLUMNS = ("site_id", "asset_kind", "snapshot_at", "last_seen_at", "entry_hash")


SITE_COLUMNS: dict[str, dict[str, Any]] = {
    "site_id": column("text", False),
    "site_name": column("text"),
    "is_online": column("bool"),
    "reported_at": column("timestamp"),
    "last_seen_at": column("timestamp", False),
}
SNAPSHOT_COLUMNS: dict[str, dict[str, Any]] = {
    "snapshot_at": column("timestamp", False),
    "sites_listed": column("bigint", False),
}
STATUS_COLUMNS: dict[str, dict[str, Any]] = {
    "site_id": column("text", False),
    "snapshot_at": column("timestamp", False),
    "is_online": column("bool"),
    "reported_at": column("timestamp"),
}
#: schedule rows: the key columns stay nullable because each site present in a snapshot also
#: sends one marker row (all NULL but site_id) that scopes the scd2 merge to that site
SCHEDULE_COLUMNS: dict[str, dict[str, Any]] = {
    "site_id": column("text", False),
    "asset": column("text"),
    "type": column("text"),
    "start_at": column("timestamp"),
    "end_at": column("timestamp"),
    "value": column("double"),
    "entry_hash": column("text", False),
    # tables written before entry_hash have dlt's own row hash here: it is not the version now
    "_dlt_id": {"name": "_dlt_id", "x-row-version": False},
}
#: the documented asset fields are declared (analytics.heat_assets_current reads them): they
#: exist, typed, on an account without a battery too
ASSET_COLUMNS: dict[str, dict[str, Any]] = {
    "site_id": column("text", False),
    "asset_kind": column("text", False),
    "asset_id": column("text"),
    "asset_type": column("text"),
    "last_seen_at": column("timestamp", False),
    "rated_power_upper_limit_kw": column("double"),
    "rated_power_lower_limit_kw": column("double"),
    "active_power_kw": column("double"),
    "available_storage_capacity_kwh": column("double"),
    "soc": column("double"),
}
READING_COLUMNS: dict[str, dict[str, Any]] = {
    "site_id": column("text", False),
    "asset_kind": column("text", False),
    "snapshot_at": column("timestamp", False),
}

#: scd2 on schedule_entries: a row version is the hash of these entry fields (columns), in this
#: order; any other field (a schedule's or an entry's, e.g. one the API adds later) is stored on
#: the versions written from then on but never makes a version by itself
ENTRY_HASH_FIELDS = ("site_id", "asset", "type", "start_at", "end_at", "value")
ENTRY_HASH_COLUMN = "entry_hash"
#: the rule above, recorded in the resource state once the warehouse's rows all carry it
ENTRY_HASH_VERSION = 1
#: only sites with a marker row in the load can have rows retired, so a site missing from a
#: snapshot keeps its schedule, and a site present with no entries has them all retired
SCHEDULE_MARKER_FILTER = "asset IS NOT NULL"
#: ... of the account loading (a package holds one account's snapshot: docs/accounts.md)
SCHEDULE_SCOPE = (
    "{table}.account IN (SELECT account FROM {staging_table}) "
    "AND {table}.site_id IN (SELECT site_id FROM {staging_table})"
)
SCHEDULE_WRITE_DISPOSITION: dict[str, Any] = {
    "disposition": "merge",
    "strategy": "scd2",
    "row_version_column_name": ENTRY_HASH_COLUMN,
    # marker rows scope the merge to the sites of this snapshot, then drop out
    "source_filter": SCHEDULE_MARKER_FILTER,
    "destination_scope": SCHEDULE_SCOPE,
}
