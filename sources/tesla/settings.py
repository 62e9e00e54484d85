"""Tesla gateway constants: endpoints, tables, login and back-off defaults. No logic here."""

from __future__ import annotations

from dataclasses import dataclass

SOURCE_NAME = "tesla"
LOGIN_PATH = "/api/login/Basic"
LOGIN_USERNAME = "customer"  # the local API's only non-installer user
AUTH_COOKIES = ("AuthCookie", "UserRecord")
DEFAULT_PORT = 443

#: a login answered 429 blocks further logins (this process and later runs) for this long;
#: the gateway's own lock-out lasts minutes to hours, hammering it only prolongs it
DEFAULT_LOGIN_BACKOFF_SECONDS = 900
#: an endpoint refused (401/403) to a fresh session while others answer is skipped this long
#: by every run, so newer firmware that restricts it does not cost a login per run
REFUSED_RETRY_SECONDS = 6 * 3600
#: logins after a 401/403 within one poll (a session expiring after a few requests); beyond
#: this the poll stops and the next run tries again
MAX_RELOGINS_PER_POLL = 2
DEFAULT_MAX_ATTEMPTS = 3  # per data request: 1 try + 2 retries (5xx other than 502, network)
DEFAULT_BACKOFF_FACTOR = 0.5
DEFAULT_TIMEOUT = 10.0
#: HTTP statuses retried by the shared client. 502 is not: it is how a gateway whose site
#: controller is stopped answers, and it lasts until someone starts the system again
RETRY_STATUSES = (429, 500, 503, 504)

#: gateway_state values (gateway_status.gateway_state)
STATE_OK = "ok"
STATE_STOPPED = "stopped"  # site controller stopped: aggregates/soe/grid_status answer 502
STATE_UNREACHABLE = "unreachable"
STATE_FAILED = "failed"  # auth, certificate, login back-off, no data beyond the status


@dataclass(frozen=True)
class Endpoint:
    """One GET endpoint of the gateway and the table its rows land in."""

    key: str  # name used in logs and in the snapshot
    path: str
    #: answers 502 with an empty body while the site controller is stopped
    stoppable: bool = False
    #: answers without a session (a body from it is no sign that the login works)
    public: bool = False


ENDPOINTS: tuple[Endpoint, ...] = (
    Endpoint("status", "/api/status", public=True),
    Endpoint("sitemaster", "/api/sitemaster"),
    Endpoint("aggregates", "/api/meters/aggregates", stoppable=True),
    Endpoint("soe", "/api/system_status/soe", stoppable=True),
    Endpoint("grid_status", "/api/system_status/grid_status", stoppable=True),
    Endpoint("site_info", "/api/site_info"),
    Endpoint("powerwalls", "/api/powerwalls"),
    Endpoint("grid_faults", "/api/system_status/grid_faults"),
)

TABLES = (
    "meter_readings",
    "battery_soe",
    "grid_status",
    "site_info",
    "gateway_status",
    "powerwalls",
    "grid_faults",
    "sitemaster",
)

#: ``/api/status`` fields analytics.tesla_gateway_states reads (dlt data types): declared, so
#: they exist on firmware that has no /api/status (Powerwall 3) and before a gateway first
#: sends one (``followers``: a list of DINs, JSON in the raw table)
STATUS_FIELD_TYPES: dict[str, str] = {
    "version": "text",
    "git_hash": "text",
    "din": "text",
    "device_type": "text",
    "teg_type": "text",
    "sync_type": "text",
    "up_time_seconds": "double",
    "is_new": "bool",
    "commission_count": "bigint",
    "leader": "text",
    "followers": "json",
    "cellular_disabled": "bool",
}

CONFIG_HINT = (
    "set SOURCES__TESLA__HOST and SOURCES__TESLA__PASSWORD (one gateway), or "
    "[[sources.tesla.gateways]] tables with name, host, password in .dlt/secrets.toml"
)
