"""Several SolarKnock orgs behind one server, as the real API is: every key is scoped to
exactly one org ("there is no ?orgId= parameter on any endpoint, ever"), so the org a request
reads is the one its key belongs to (docs/accounts.md).

Each org is a whole :class:`~sandbox.solarknock.sandbox.SolarKnockSandbox` (its own data,
ground truth, faults, clock, request log and its own 60 req/min limiter) sharing this
server's listener; the key of the request picks it::

    with SolarKnockOrgs({"sk_NORTH": {"seed": 1}, "sk_SOUTH": {"seed": 2}}) as orgs:
        orgs.base_url                      # one base URL for every org
        orgs["sk_NORTH"].truth("knocks")   # that org's truth
        orgs["sk_SOUTH"].set_subscription_expired()   # 402 for that key only
        orgs.revoke("sk_NORTH")            # 401 for that key from now on

Two orgs built from one ``seed`` with different ``org_id`` have the same record ids: what a
warehouse of several orgs must keep apart. A request whose key belongs to no org is answered
``401 INVALID_KEY`` (:attr:`SolarKnockOrgs.refused` lists them); ``/__admin`` serves no org's
data (use the Python objects).
"""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Iterator, Mapping
from datetime import datetime
from typing import Any

from sandbox.common.sandbox import LoopbackSandbox
from sandbox.common.server import Listener
from sandbox.solarknock.data import ENDPOINTS
from sandbox.solarknock.sandbox import SolarKnockSandbox
from sandbox.solarknock.server import BASE_PATH, Handler


def _code(key: str) -> str:
    key = key.strip()
    return key[3:] if key.startswith("sk_") else key


class OrgsHandler(Handler):
    """The SolarKnock handler, serving the org of the request's key."""

    @property
    def sb(self) -> Any:
        headers = getattr(self, "headers", None)
        return self.server.owner.route(headers.get("Authorization") if headers else None)


class SolarKnockOrgs(LoopbackSandbox):
    """Orgs by API key (``{key: SolarKnockSandbox keyword arguments}``) on one listener."""

    def __init__(
        self,
        orgs: Mapping[str, Mapping[str, Any]],
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        anchor: datetime | None = None,
    ) -> None:
        if not orgs:
            raise ValueError("at least one org")
        super().__init__()
        self._http = Listener(OrgsHandler, self, host=host, port=port, name="solarknock-orgs")
        self._orgs: dict[str, SolarKnockSandbox] = {}
        self._revoked: set[str] = set()
        for key, options in orgs.items():
            options = {"anchor": anchor, **options}
            self._orgs[_code(key)] = SolarKnockSandbox(api_key=key, listener=self._http, **options)
        # answers every key that is no org's (or is revoked): 401, as the real API does
        self._nobody = SolarKnockSandbox(
            seed=-1,
            api_key="sk_" + secrets.token_hex(16),
            counts=dict.fromkeys(ENDPOINTS[1:], 1),
            listener=self._http,
        )
        ids = [org.org_id for org in self._orgs.values()]
        if len(set(ids)) != len(ids):
            raise ValueError("two orgs have one org id: give them different seeds or org_id")

    def __repr__(self) -> str:  # never shows a key
        return f"<SolarKnockOrgs {len(self._orgs)} orgs>"

    @property
    def listeners(self) -> tuple[Listener]:
        return (self._http,)

    def start(self) -> SolarKnockOrgs:
        super().start()
        for org in self._orgs.values():
            org._store.rebase_urls(self.base_url)
        return self

    @property
    def base_url(self) -> str:
        return self._http.url(BASE_PATH)

    @property
    def port(self) -> int:
        return self._http.port

    def __getitem__(self, key: str) -> SolarKnockSandbox:
        return self._orgs[_code(key)]

    def __iter__(self) -> Iterator[SolarKnockSandbox]:
        return iter(self._orgs.values())

    def __len__(self) -> int:
        return len(self._orgs)

    def route(self, header: str | None) -> SolarKnockSandbox:
        """The org whose key ``header`` (``Bearer sk_...``) carries; else an org no key
        opens, which answers 401 (its request log: :attr:`refused`)."""
        first = self._nobody
        if not header:
            return first
        scheme, _, token = header.strip().partition(" ")
        code = _code(token)
        if scheme.lower() != "bearer" or not code:
            return first
        for known, org in self._orgs.items():
            if known not in self._revoked and hmac.compare_digest(code.encode(), known.encode()):
                return org
        return first

    def revoke(self, key: str) -> None:
        """From now on the key is refused (401 INVALID_KEY), as a key its org revoked."""
        code = _code(key)
        if code not in self._orgs:
            raise KeyError("no org has this key")
        self._revoked.add(code)

    def restore(self, key: str) -> None:
        self._revoked.discard(_code(key))

    @property
    def refused(self) -> list[Any]:
        """The requests whose key was no org's (answered 401)."""
        return self._nobody.requests

    @property
    def requests(self) -> list[Any]:
        """Every org's requests, in arrival order."""
        return sorted((r for org in self for r in org.requests), key=lambda r: r.mono)

    def stats(self) -> dict[str, Any]:
        return {org.org_id: org.stats() for org in self}


__all__ = ["OrgsHandler", "SolarKnockOrgs"]
