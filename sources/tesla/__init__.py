"""Tesla Energy Gateway (Powerwall) local API source (dataset ``tesla``).

One call of :func:`tesla` is one snapshot of every configured gateway, stamped with one
``polled_at`` (UTC, taken at call time). Tables (key; write disposition):

* ``meter_readings``: one row per meter per poll (``gateway, meter, polled_at``; merge): every
  field of ``/api/meters/aggregates``, including the cumulative ``energy_exported`` /
  ``energy_imported`` counters (Wh) and ``last_communication_time``; meters beyond
  site/battery/load/solar and unknown fields land as rows and columns.
* ``battery_soe`` (``/api/system_status/soe``), ``grid_status``
  (``/api/system_status/grid_status``), ``sitemaster`` (``/api/sitemaster``): one row per
  poll (``gateway, polled_at``; merge).
* ``gateway_status``: one row per gateway per poll (``gateway, polled_at``; merge): firmware
  ``version``, ``up_time_seconds`` (seconds), the rest of ``/api/status``, and how the poll
  went: ``gateway_state`` (ok, stopped, unreachable, failed), ``error``,
  ``unavailable_endpoints`` (404 on this firmware), and the site's ``timezone`` (site_info).
* ``site_info``: current, one row per gateway (``gateway``; merge): flat and nested
  ``grid_code`` shapes land in the same columns.
* ``powerwalls``: current, one row per device (``gateway, position``; merge, older rows of the
  gateway replaced).
* ``grid_faults``: one row per fault, deduplicated across polls (``gateway, fault_id``; merge).

A gateway that gave no data beyond its public ``/api/status`` in a poll (login refused or
rate limited, unreachable, every other endpoint failing) failed that poll: ``gateway_status``
records ``last_sync.errors`` in its resource state (one line per such gateway, naming it, the
endpoint and what to do), which makes the run exit 1 and ``solarsync poll`` count the poll as
failed; the rows that were read load all the same.

No cursor: every poll is a snapshot. Sessions, recorded certificate fingerprints and login
back-offs live in ``<dlt data dir>/solarsync/tesla/`` (``sources.tesla.store``), never in dlt
state or the warehouse. The analytics views (``warehouse/views/tesla.sql``) turn the counters
into energy per interval and per day.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import dlt
from dlt.common.configuration.inject import with_config
from dlt.common.typing import TSecretStrValue, TSecretValue
from dlt.sources import DltResource

from sources.common import redact
from sources.common.columns import column, typed
from sources.tesla import rows
from sources.tesla.config import gateway_configs, is_configured
from sources.tesla.settings import (
    DEFAULT_BACKOFF_FACTOR,
    DEFAULT_LOGIN_BACKOFF_SECONDS,
    DEFAULT_MAX_ATTEMPTS,
    DEFAULT_TIMEOUT,
    ENDPOINTS,
    SOURCE_NAME,
    STATE_FAILED,
    STATE_UNREACHABLE,
    STATUS_FIELD_TYPES,
    TABLES,
)
from sources.tesla.snapshot import GatewayPoll, Snapshot, client_for, reset_clients
from sources.tesla.store import default_directory

logger = logging.getLogger("solarsync.tesla")

RESOURCE_NAMES = TABLES


def _poll() -> dict[str, Any]:
    return {"polled_at": column("timestamp", False)}


def _current() -> dict[str, Any]:  # the newest poll of a key wins within a load
    return column("timestamp", False, dedup_sort="desc")


def utcnow() -> datetime:
    """The poll instant (tests replace it to spread polls over days)."""
    return datetime.now(UTC)


@dlt.source(name=SOURCE_NAME, max_table_nesting=0)
def tesla(
    host: str | None = None,
    password: TSecretStrValue | None = None,
    email: str | None = None,
    name: str | None = None,
    fingerprint: str | None = None,
    gateways: TSecretValue = None,  # secret: entries carry passwords (kept out of dlt's trace)
    login_backoff_seconds: float = DEFAULT_LOGIN_BACKOFF_SECONDS,
    max_attempts: int = DEFAULT_MAX_ATTEMPTS,
    backoff_factor: float = DEFAULT_BACKOFF_FACTOR,
    request_timeout: float = DEFAULT_TIMEOUT,
    state_dir: str | None = None,
) -> Sequence[DltResource]:
    """Tesla gateway tables (see the module docstring).

    Args:
        host: the gateway's address (``192.168.91.1``, ``teg``, ``host:port``); HTTPS always.
        password: the customer password (secret).
        email: the email given at login (optional; the gateway ignores it on most firmware).
        name: the gateway's name in every table (default: the host).
        fingerprint: the certificate's SHA-256 (``AB:CD:...``). Without it the certificate is
            trusted on first use and recorded; a different one later is refused.
        gateways: several gateways: a list of tables with ``name, host, password`` and
            optionally ``email, fingerprint`` (``[[sources.tesla.gateways]]`` in
            .dlt/secrets.toml, or JSON in SOURCES__TESLA__GATEWAYS).
        login_backoff_seconds: after a login answered 429, no login before this many seconds.
        state_dir: where sessions and fingerprints are kept (default: the dlt data dir).
    """
    configs = gateway_configs(
        host=host, password=password, email=email, name=name, fingerprint=fingerprint,
        gateways=gateways,
    )  # fmt: skip
    directory = Path(state_dir) if state_dir else default_directory()
    clients = [
        client_for(
            config, directory, login_backoff_seconds=float(login_backoff_seconds),
            max_attempts=int(max_attempts), backoff_factor=float(backoff_factor),
            timeout=float(request_timeout),
        )
        for config in configs
    ]  # fmt: skip
    snapshot = Snapshot(clients, utcnow())
    at = snapshot.polled_at

    def each(key: str, make: Callable[[str, datetime, Any], Any]) -> Callable[[], Iterator[Any]]:
        def gen() -> Iterator[Any]:
            for poll in snapshot.polls():
                body = poll.body(key)
                if body is None:
                    continue
                made = make(poll.name, at, body)
                if isinstance(made, dict):
                    yield made
                elif made is not None:
                    yield from made

        return gen

    def status_rows() -> Iterator[dict[str, Any]]:
        polls = snapshot.polls()
        for poll in polls:
            if poll.state in (STATE_FAILED, STATE_UNREACHABLE):
                logger.error("tesla %s: %s: %s", poll.name, poll.state, poll.error)
            yield rows.gateway_status_row(
                poll.name, at, poll.body("status"), state=poll.state, error=poll.error,
                unavailable=poll.unavailable, site_info=poll.body("site_info"),
            )  # fmt: skip
        # written on every poll (no stale verdict): a gateway that gave no data beyond the
        # public /api/status failed this poll; the load step and the poll loop count it (exit 1)
        dlt.current.resource_state()["last_sync"] = poll_verdict(polls)

    per_poll = {"write_disposition": "merge", "primary_key": ["gateway", "polled_at"]}
    return [
        dlt.resource(
            each("aggregates", rows.meter_rows), name="meter_readings",
            write_disposition="merge", primary_key=["gateway", "meter", "polled_at"],
            columns={**_poll(), "last_communication_time": column("timestamp"),
                     **typed(energy_exported="double", energy_imported="double")},
        ),
        dlt.resource(each("soe", rows.soe_row), name="battery_soe", columns=_poll(), **per_poll),
        dlt.resource(
            each("grid_status", rows.grid_status_row), name="grid_status", columns=_poll(),
            **per_poll,
        ),
        dlt.resource(
            each("site_info", rows.site_info_row), name="site_info", write_disposition="merge",
            primary_key="gateway",
            # timezone always exists (analytics.tesla_energy_daily_local reads it)
            columns={"polled_at": _current(), **typed(timezone="text")},
        ),
        dlt.resource(
            status_rows, name="gateway_status",
            columns={**_poll(), "start_time": column("timestamp"),
                     # timezone always exists: analytics.tesla_energy_daily_local reads it
                     **typed(error="text", unavailable_endpoints="text", timezone="text",
                             **STATUS_FIELD_TYPES)},
            **per_poll,
        ),
        dlt.resource(
            each("powerwalls", rows.powerwall_rows), name="powerwalls",
            write_disposition="merge", primary_key=["gateway", "position"], merge_key="gateway",
            columns={"polled_at": _current()},
        ),
        dlt.resource(
            each("grid_faults", rows.grid_fault_rows), name="grid_faults",
            write_disposition="merge", primary_key=["gateway", "fault_id"],
            columns={"last_seen_at": _current(), "fault_at": column("timestamp")},
        ),
        dlt.resource(
            each("sitemaster", rows.sitemaster_row), name="sitemaster", columns=_poll(), **per_poll
        ),
    ]  # fmt: skip


def poll_verdict(polls: Sequence[GatewayPoll]) -> dict[str, list[str]]:
    """``last_sync`` of ``gateway_status``: ``errors``, one per gateway whose poll failed (an
    error and no data beyond the public status), and ``warnings``, one per gateway whose poll
    ended early on an error after some data came (that data is loaded)."""
    errors, warnings = [], []
    for poll in polls:
        if poll.exception is None:
            continue
        if poll.failed:
            errors.append(
                f"gateway {poll.name!r} gave no data this poll (gateway_state "
                f"'{poll.state}'): {redact(str(poll.exception))}"
            )
        elif poll.state in (STATE_FAILED, STATE_UNREACHABLE):
            warnings.append(
                f"gateway {poll.name!r}: the poll stopped early (gateway_state "
                f"'{poll.state}'); what answered is loaded: {redact(str(poll.exception))}"
            )
    return {"errors": errors, "warnings": warnings}


@with_config(sections=("sources", SOURCE_NAME))
def check(
    host: str | None = None,
    password: TSecretStrValue | None = None,
    email: str | None = None,
    name: str | None = None,
    fingerprint: str | None = None,
    gateways: TSecretValue = None,  # secret: entries carry passwords (kept out of dlt's trace)
    request_timeout: float = DEFAULT_TIMEOUT,
    login_backoff_seconds: float = DEFAULT_LOGIN_BACKOFF_SECONDS,
    state_dir: str | None = None,
) -> list[tuple[str, str]]:
    """Pin, log in (or reuse the recorded session) and read ``/api/status`` of every gateway.

    Loads nothing. Returns ``(gateway, what was found)`` pairs; raises the first error.
    """
    from sources.common.tls import pretty

    configs = gateway_configs(
        host=host, password=password, email=email, name=name, fingerprint=fingerprint,
        gateways=gateways,
    )  # fmt: skip
    directory = Path(state_dir) if state_dir else default_directory()
    found = []
    for config in configs:
        client = client_for(
            config, directory, login_backoff_seconds=float(login_backoff_seconds),
            max_attempts=2, backoff_factor=DEFAULT_BACKOFF_FACTOR, timeout=float(request_timeout),
        )  # fmt: skip
        logins = client.logins
        status = client.fetch(ENDPOINTS[0])
        version = status.get("version") if isinstance(status, dict) else None
        found.append(
            (
                config.name,
                f"firmware {version or 'unknown'}, certificate {pretty(client.fingerprint or '')}"
                f", {'logged in' if client.logins > logins else 'recorded session reused'}",
            )
        )
    return found


__all__ = [
    "RESOURCE_NAMES",
    "check",
    "gateway_configs",
    "is_configured",
    "poll_verdict",
    "reset_clients",
    "tesla",
]
