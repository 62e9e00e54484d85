"""The public sandbox class: state, truth, mutations, faults, request log."""

from __future__ import annotations

import contextlib
import fnmatch
import re
import secrets
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from sandbox.common.sandbox import LoopbackSandbox
from sandbox.common.server import Listener
from sandbox.common.tls import SelfSignedCert
from sandbox.solarassistant.data import MetricDef, generate
from sandbox.solarassistant.server import API, CloudHandler, ProxyHandler

SEVEN_DAYS = 7 * 24 * 3600


@dataclass(frozen=True)
class RequestInfo:
    server: str  # "cloud" | "proxy"
    method: str
    path: str
    query: dict[str, str]


class SolarAssistantSandbox(LoopbackSandbox):
    """A SolarAssistant account on loopback: cloud API over HTTP, proxy over HTTPS.

    ``offline``: site ids whose proxy requests fail (mode ``"502"``, ``"504"``, ``"timeout"``
    or ``"drop"``, see :meth:`set_offline`). ``max_limit`` caps ``GET /users?limit=``.
    ``has_org=False``: ``GET /users`` answers 403 as for an account without organization.
    """

    def __init__(
        self,
        *,
        seed: int = 0,
        api_token: str = "sa_SANDBOXAPITOKEN",
        sites: int = 6,
        org_users: int = 45,
        has_org: bool = True,
        offline: dict[int, str] | None = None,
        token_ttl: float = SEVEN_DAYS,
        max_limit: int = 50,
        proxy_latency: float = 0.0,
        offline_sleep: float = 2.0,
        host: str = "127.0.0.1",
        cloud_port: int = 0,
        proxy_port: int = 0,
        cert_dir: str | None = None,
        cert: SelfSignedCert | None = None,
    ) -> None:
        """``cert``: the proxy serves this certificate (e.g. another sandbox's, so one CA
        bundle trusts both: two accounts' proxies) instead of a new one per start."""
        super().__init__()
        self._given_cert = cert
        self.api_token = api_token
        self.account, self.sites, self.people, self.orgs, self._org_users_rows = generate(
            seed, sites, org_users
        )
        self.has_org = has_org
        self.token_ttl = token_ttl
        self.max_limit = max_limit
        self.proxy_latency = proxy_latency
        self.offline_sleep = offline_sleep
        self.host = host
        self._cloud = Listener(CloudHandler, self, host=host, port=cloud_port, name="cloud")
        self._proxy = Listener(ProxyHandler, self, host=host, port=proxy_port, name="proxy")
        self._cert_dir = cert_dir
        self._offline: dict[int, str] = dict(offline or {})
        #: (site id, topic) -> the value served instead of the generated one
        self._values: dict[tuple[int, str], Any] = {}
        self._tick = 0
        self._tokens: dict[str, tuple[int, float]] = {}  # token -> (site id, expires at)
        self._lock = threading.RLock()
        self._faults: list[list[Any]] = []  # [server, path regex, status|"drop", remaining]
        self.writes: list[tuple[str, str]] = []
        self.authorize_calls: dict[int, int] = {}
        self._in_flight_now = 0
        self.max_in_flight = 0
        self.cert: SelfSignedCert | None = None

    # -- lifecycle ----------------------------------------------------------------------------
    @property
    def listeners(self) -> tuple[Listener, Listener]:
        return (self._cloud, self._proxy)

    def start(self) -> SolarAssistantSandbox:
        if not self._proxy.running:  # a new certificate for every start of the proxy
            cert_dir = self._cert_dir or tempfile.mkdtemp(prefix="sa-sandbox-")
            self.cert = self._proxy.cert = self._given_cert or SelfSignedCert.create(
                cert_dir, name="solarassistant-proxy"
            )
        return super().start()

    @property
    def base_url(self) -> str:
        return self._cloud.url(API)

    @property
    def proxy_host(self) -> str:
        return self._proxy.address

    @property
    def ca_bundle(self) -> str:
        assert self.cert is not None
        return str(self.cert.cert_path)

    # -- truth --------------------------------------------------------------------------------
    def _site(self, site_id: int) -> Any:
        return next((s for s in self.sites if s.id == site_id), None)

    def truth(self, table: str) -> list[dict[str, Any]]:
        """What the API serves now, in the API's shapes (``site_members``: one row per
        site and member with ``site_id``; ``organizations``: those of the sites)."""
        with self._lock:
            if table == "users":
                return [dict(self.account)]
            if table == "sites":
                return [
                    {
                        "id": s.id,
                        "name": s.name,
                        "proxy": s.proxy,
                        "last_seen_at": s.last_seen_at,
                        **s.extras,
                    }
                    for s in self.sites
                ]
            if table == "site_members":
                return [
                    {"site_id": s.id, **m} for s in self.sites for m in self.members_truth(s.id)
                ]
            if table == "organizations":
                ids = sorted({s.organization_id for s in self.sites} - {None})
                return [dict(self.orgs[i]) for i in ids]
            if table == "org_users":
                return [dict(u) for u in self._org_users_rows] if self.has_org else []
        raise KeyError(table)

    def site_detail(self, site_id: int) -> dict[str, Any] | None:
        with self._lock:
            site = self._site(site_id)
            if site is None:
                return None
            owner = self.people[site.owner_id]
            return {
                "id": site.id,
                "name": site.name,
                "proxy": site.proxy,
                "last_seen_at": site.last_seen_at,
                "owner": {k: owner[k] for k in ("id", "email", "first_name", "last_name")},
                "organization": dict(self.orgs[site.organization_id])
                if site.organization_id
                else None,
                "users": self.members_truth(site_id),
            }

    def members_truth(self, site_id: int) -> list[dict[str, Any]]:
        with self._lock:
            site = self._site(site_id)
            out = []
            for uid, role in sorted(site.members.items()):
                person = self.people[uid]
                out.append(
                    {k: person[k] for k in ("id", "email", "first_name", "last_name")}
                    | {"role": role}
                )
            return out

    def metrics_truth(self, site_id: int, topic: str | None = None) -> list[dict[str, Any]]:
        """The rows ``GET /api/v1/metrics`` returns now (``topic``: the ``?topic=`` glob)."""
        with self._lock:
            site, tick, values = self._site(site_id), self._tick, dict(self._values)
        rows = []
        for m in site.metrics:
            if topic and not fnmatch.fnmatchcase(m.topic, topic):
                continue
            row: dict[str, Any] = {
                "topic": m.topic,
                "group": m.group,
                "name": m.name,
                "value": values.get((site_id, m.topic), m.value(site_id, tick)),
                "unit": m.unit,
            }
            if m.device is not None:
                row |= {"device": m.device, "number": m.number}
            rows.append(row)
        return rows

    def offline_mode(self, site_id: int) -> str | None:
        with self._lock:
            return self._offline.get(site_id)

    def site_tokens(self) -> list[str]:
        """Every site token issued so far (secrets: tests grep outputs for them)."""
        with self._lock:
            return list(self._tokens)

    def site_keys(self) -> list[str]:
        return [s.site_key for s in self.sites]

    # -- mutations ----------------------------------------------------------------------------
    def tick(self) -> None:
        """Every metric value moves on."""
        with self._lock:
            self._tick += 1

    def set_offline(self, site_id: int, mode: str | None = "502") -> None:
        with self._lock:
            if mode is None:
                self._offline.pop(site_id, None)
            else:
                self._offline[site_id] = mode

    def expire_tokens(self) -> None:
        """Every site token issued so far is expired: the proxy answers 401."""
        with self._lock:
            self._tokens = {t: (s, 0.0) for t, (s, _) in self._tokens.items()}

    def remove_member(self, site_id: int, user_id: int) -> None:
        with self._lock:
            del self._site(site_id).members[user_id]

    def set_member(self, site_id: int, user_id: int, role: str) -> None:
        with self._lock:
            self._site(site_id).members[user_id] = role

    def set_value(self, site_id: int, topic: str, value: Any, unit: str | None = None) -> None:
        """Serve ``value`` for the site's ``topic`` from now on (a scripted reading, e.g. an
        energy counter or a huge integer); a new topic is added (group Status, ``unit``)."""
        with self._lock:
            site = self._site(site_id)
            if not any(m.topic == topic for m in site.metrics):
                name = topic.split("/", 1)[-1].replace("_", " ").capitalize()
                site.metrics = [*site.metrics, MetricDef(topic, "Status", name, unit, "float")]
            self._values[(site_id, topic)] = value

    def remove_topic(self, site_id: int, topic: str) -> None:
        """The site stops sending ``topic`` (e.g. a battery was removed)."""
        with self._lock:
            site = self._site(site_id)
            site.metrics = [m for m in site.metrics if m.topic != topic]
            self._values.pop((site_id, topic), None)

    def remove_site(self, site_id: int) -> None:
        with self._lock:
            self.sites = [s for s in self.sites if s.id != site_id]

    def set_has_org(self, value: bool) -> None:
        with self._lock:
            self.has_org = value

    def fail(self, server: str, path_regex: str, status: int | str, times: int = 1) -> None:
        """The next ``times`` requests to ``server`` whose path matches answer ``status``
        (or ``"drop"``: the connection closes without an answer). ``times=-1``: always."""
        with self._lock:
            self._faults.append([server, re.compile(path_regex), status, times])

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()

    # -- observations -------------------------------------------------------------------------
    def count(self, server: str | None = None, path_regex: str = "", method: str = "") -> int:
        where = re.compile(path_regex).search
        return len(
            self._log.matching(lambda r: where(r.path), server=server, method=method or None)
        )

    def clear_requests(self) -> None:
        """Forget the requests, the authorize calls and the concurrency seen so far."""
        super().clear_requests()
        with self._lock:
            self.authorize_calls.clear()
            self.max_in_flight = 0

    def stats(self) -> dict[str, Any]:
        with self._lock:
            return {
                "requests": len(self._log),
                "authorize_calls": dict(self.authorize_calls),
                "writes": list(self.writes),
                "max_in_flight": self.max_in_flight,
                "offline": dict(self._offline),
                "tick": self._tick,
            }

    # -- used by the handlers -----------------------------------------------------------------
    def _record(self, server: str, method: str, path: str, query: dict[str, str]) -> None:
        self._log.record(RequestInfo(server, method, path, query))

    def _write_attempt(self, method: str, path: str) -> None:
        with self._lock:
            self.writes.append((method, path))

    def _take_fault(self, server: str, path: str) -> int | str | None:
        with self._lock:
            for fault in self._faults:
                if fault[0] == server and fault[1].search(path) and fault[3] != 0:
                    fault[3] -= 1
                    return fault[2]
        return None

    def _authorize(self, site_id: int) -> tuple[int, dict[str, Any]]:
        with self._lock:
            site = self._site(site_id)
            if site is None:
                return 404, {"error": "Site not found"}
            self.authorize_calls[site_id] = self.authorize_calls.get(site_id, 0) + 1
            token = "eyJ" + secrets.token_urlsafe(24)
            self._tokens[token] = (site_id, time.time() + self.token_ttl)
            return 200, {
                "host": self.proxy_host,
                "site_id": site_id,
                "site_name": site.name,
                "site_key": site.site_key,
                "token": token,
            }

    def _check_site_access(self, token: str, site_id: str, site_key: str) -> int | None:
        with self._lock:
            issued = self._tokens.get(token)
            if issued is None or str(issued[0]) != site_id or issued[1] < time.time():
                return 401
            site = self._site(issued[0])
            if site is None or site.site_key != site_key:
                return 403
        return None

    def _org_users(self, query: dict[str, str]) -> tuple[int, Any]:
        with self._lock:
            if not self.has_org:
                return 403, {"error": "This endpoint requires a registered organization"}
            try:
                offset = int(query.get("offset", 0))
                limit = min(int(query.get("limit", 20)), self.max_limit)
            except ValueError:
                return 422, {"errors": {"offset": ["must be an integer"]}}
            return 200, [dict(u) for u in self._org_users_rows[offset : offset + limit]]

    @contextlib.contextmanager
    def _in_flight(self) -> Iterator[None]:
        with self._lock:
            self._in_flight_now += 1
            self.max_in_flight = max(self.max_in_flight, self._in_flight_now)
        try:
            yield
        finally:
            with self._lock:
                self._in_flight_now -= 1
