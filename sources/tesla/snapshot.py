"""One snapshot: every gateway polled once, shared by all the resources of a source call; and
the process-wide gateway clients (a poll loop pins and logs in once)."""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from sources.common import (
    AuthenticationError,
    ConfigurationError,
    SolarsyncError,
    SourceUnavailableError,
    redact,
)
from sources.common.clients import ClientCache
from sources.tesla.client import STOPPED, UNAVAILABLE, EndpointRefused, GatewayClient
from sources.tesla.config import GatewayConfig
from sources.tesla.settings import (
    ENDPOINTS,
    LOGIN_PATH,
    REFUSED_RETRY_SECONDS,
    STATE_FAILED,
    STATE_OK,
    STATE_STOPPED,
    STATE_UNREACHABLE,
)
from sources.tesla.store import GatewayStore

logger = logging.getLogger("solarsync.tesla")

_CLIENTS: ClientCache[GatewayClient] = ClientCache()


def client_for(config: GatewayConfig, directory: Path, **options: Any) -> GatewayClient:
    """The process-wide client of a gateway: a poll loop pins and logs in once."""
    key = (str(directory), config, tuple(sorted(options.items())))

    def make() -> GatewayClient:
        return GatewayClient(config, GatewayStore(directory, config.name, config.host), **options)

    return _CLIENTS.get(key, make)[0]


def reset_clients() -> None:
    """Forget every process-level session (what a new process starts with)."""
    _CLIENTS.clear()


# --------------------------------------------------------------------------- one snapshot
@dataclass
class GatewayPoll:
    """What one gateway answered in one poll."""

    name: str
    state: str = STATE_OK
    error: str | None = None
    bodies: dict[str, Any] = field(default_factory=dict)
    exception: SolarsyncError | None = None

    def body(self, key: str) -> Any:
        value = self.bodies.get(key)
        return None if value in (STOPPED, UNAVAILABLE) else value

    @property
    def answered(self) -> bool:
        return any(v not in (STOPPED, UNAVAILABLE) for v in self.bodies.values())

    @property
    def authenticated(self) -> bool:
        """Data came from an endpoint that needs a session (``/api/status`` answers without
        one: a gateway whose logins fail still answers it)."""
        return any(
            self.bodies.get(e.key, UNAVAILABLE) not in (STOPPED, UNAVAILABLE)
            for e in ENDPOINTS
            if not e.public
        )

    @property
    def failed(self) -> bool:
        """An error, and no data beyond the public status: a failed poll of this gateway."""
        return self.exception is not None and not self.authenticated

    @property
    def unavailable(self) -> list[str]:
        return [k for k, v in self.bodies.items() if v == UNAVAILABLE]


def _ends_the_poll(exc: SolarsyncError) -> bool:
    """Errors after which no other endpoint of the gateway can answer: no connection, the
    login or certificate refused, logins blocked. Others (a 5xx, a bad body or a refusal on
    one endpoint) are recorded and the other endpoints are still read."""
    if isinstance(exc, EndpointRefused):
        return False
    if isinstance(exc, (AuthenticationError, ConfigurationError)):
        return True
    if isinstance(exc, SourceUnavailableError) and exc.status is None:
        return True  # network: nothing answers
    return exc.endpoint == LOGIN_PATH


def poll_gateway(client: GatewayClient) -> GatewayPoll:
    result = GatewayPoll(client.config.name)
    errors: list[SolarsyncError] = []
    client.begin_poll()
    for endpoint in ENDPOINTS:
        try:
            result.bodies[endpoint.key] = client.fetch(endpoint)
        except SolarsyncError as exc:
            errors.append(exc)
            if _ends_the_poll(exc):
                unreachable = isinstance(exc, SourceUnavailableError) and exc.status is None
                result.state = STATE_UNREACHABLE if unreachable else STATE_FAILED
                break
            logger.warning("tesla %s: %s skipped this poll: %s", result.name, endpoint.path, exc)
    refused = [e for e in errors if isinstance(e, EndpointRefused)]
    if refused and not result.authenticated:
        result.state = STATE_FAILED  # a fresh session refused everywhere: an auth problem
    elif refused:
        keys = [e.key for e in ENDPOINTS if any(r.endpoint == e.path for r in refused)]
        client.remember_refused(keys)
        logger.warning(
            "tesla %s: %s refused to a fresh session; skipped for the next %d h",
            result.name, ", ".join(keys), REFUSED_RETRY_SECONDS // 3600,
        )  # fmt: skip
    stopped = [k for k, v in result.bodies.items() if v == STOPPED]
    if stopped and result.state == STATE_OK:
        result.state = STATE_STOPPED
        logger.warning(
            "tesla %s: the site controller is stopped (502 from %s); recorded as "
            "gateway_state 'stopped'",
            client.config.name,
            ", ".join(stopped),
        )
    if errors:
        result.exception = (
            errors[-1] if result.state in (STATE_FAILED, STATE_UNREACHABLE) else errors[0]
        )
        result.error = redact("; ".join(str(e) for e in errors))
        if result.state == STATE_OK and not result.authenticated:
            # every endpoint beyond the public status failed (e.g. 5xx after the retries):
            # a failed poll, recorded as such, not 'ok' with an error beside it
            result.state = STATE_FAILED
    return result


class Snapshot:
    """Every gateway polled once, on first use by any resource; shared by all of them."""

    def __init__(self, clients: Sequence[GatewayClient], polled_at: datetime) -> None:
        self.clients = clients
        self.polled_at = polled_at
        self._lock = threading.Lock()
        self._polls: list[GatewayPoll] | None = None

    def polls(self) -> list[GatewayPoll]:
        with self._lock:
            if self._polls is None:
                self._polls = [poll_gateway(c) for c in self.clients]
            polls = self._polls
        failed = [p for p in polls if p.exception is not None]
        if failed and not any(p.answered for p in polls):
            raise failed[0].exception  # nothing to load: the run fails with the reason
        return polls


# --------------------------------------------------------------------------- the source


__all__ = ["GatewayPoll", "Snapshot", "client_for", "poll_gateway", "reset_clients"]
