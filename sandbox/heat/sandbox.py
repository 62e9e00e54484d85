"""``HeatSandbox``: the public face of the HEAT stand-in: lifecycle, ground truth, the switches
a test flips between runs (schedules, clearing, sites offline or missing, new asset kinds and
fields, health down, revoked key) and a request log. Reference: shared/apis/heat.md.

    with HeatSandbox(seed=0, api_key="agk_x.ags_y", sites=5) as sb:
        sb.base_url                        # http://127.0.0.1:<port>  (the server root)
        sb.set_schedule(site, "grid", "upperLimitkW", [{"startAt": ..., "endAt": ..., "value": 40}])
        sb.clear_schedule(site, "bess", "activePowerkW"); sb.clear_schedules(site)
        sb.set_online(site, False); sb.hide_site(site); sb.add_asset(site, "hydrogen", {...})
        sb.set_entry_field("priority", "high")  # a new field on every schedule entry
        sb.set_health(503); sb.revoke_key(); sb.fail_next(3, 500, endpoint="detail")
"""

from __future__ import annotations

import copy
import hmac
import threading
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

from sandbox.common.sandbox import LoopbackSandbox
from sandbox.common.server import Listener
from sandbox.heat.data import Generator, default_anchor, iso
from sandbox.heat.server import Handler


@dataclass
class RequestInfo:
    """One request as the sandbox saw it; never the key (``auth_present`` only)."""

    method: str
    path: str
    endpoint: str | None  # "health", "list", "detail" or None
    site_id: str | None
    auth_present: bool
    status: int | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


class HeatSandbox(LoopbackSandbox):
    """A HEAT Cloud Public API on 127.0.0.1 with seeded sites (``port=0``: a free port)."""

    ADMIN_ACTIONS = frozenset(
        {
            "set_schedule",
            "clear_schedule",
            "clear_schedules",
            "set_online",
            "hide_site",
            "show_site",
            "vanish_on_detail",
            "list_without_schedules",
            "add_site",
            "add_asset",
            "set_asset_field",
            "set_site_field",
            "set_entry_field",
            "set_health",
            "revoke_key",
            "fail_next",
            "fail_site_detail",
            "slow",
            "reset_faults",
        }
    )

    def __init__(
        self,
        seed: int = 0,
        api_key: str = "agk_sandbox.ags_SANDBOXSECRET",
        sites: int = 3,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        anchor: datetime | None = None,
    ) -> None:
        if not api_key:
            raise ValueError("api_key must be non-empty")
        super().__init__()
        self._key = api_key
        self._http = Listener(Handler, self, host=host, port=port, name="heat-sandbox")
        self._gen = Generator(seed, anchor or default_anchor())
        self._lock = threading.RLock()
        self._sites: dict[str, dict[str, Any]] = {s["siteId"]: s for s in self._gen.sites(sites)}
        self._hidden: set[str] = set()
        self._vanished: set[str] = set()
        self._unscheduled: set[str] = set()  # listed without their schedules
        self.health_status: int | str = 204  # or 503, or "timeout"
        self.health_delay = 0.0  # seconds /health stalls when health_status == "timeout"
        self.revoked = False
        self.delay = 0.0  # seconds every API request (not /health) takes
        self.in_flight = self.max_in_flight = 0  # API requests being served at once
        self._faults: list[list[Any]] = []  # [remaining, status, endpoint or None]
        self.broken_details: dict[str, int] = {}  # site id -> status of its every detail

    def __repr__(self) -> str:
        return f"<HeatSandbox {self.base_url if self.running else 'not started'}>"

    # -- lifecycle --------------------------------------------------------------------------
    @property
    def listeners(self) -> tuple[Listener]:
        return (self._http,)

    @property
    def base_url(self) -> str:
        return self._http.url()

    @property
    def admin_url(self) -> str:
        return self._http.url("/__admin")

    def key_matches(self, header: str | None) -> bool:
        scheme, _, token = (header or "").strip().partition(" ")
        return scheme.lower() == "bearer" and hmac.compare_digest(
            token.strip().encode(), self._key.encode()
        )

    # -- ground truth -----------------------------------------------------------------------
    @property
    def site_ids(self) -> list[str]:
        with self._lock:
            return list(self._sites)

    def listed(self) -> list[dict[str, Any]]:
        """``GET .../sites``: the visible sites without their assets (and without their
        schedules for sites set by :meth:`list_without_schedules`)."""
        with self._lock:
            return [
                {
                    k: copy.deepcopy(v)
                    for k, v in s.items()
                    if k != "assets" and not (k == "schedules" and sid in self._unscheduled)
                }
                for sid, s in self._sites.items()
                if sid not in self._hidden
            ]

    def detail(self, site_id: str) -> dict[str, Any] | None:
        """``GET .../sites/{id}``; None = 404."""
        with self._lock:
            if site_id not in self._sites or site_id in self._hidden | self._vanished:
                return None
            return copy.deepcopy(self._sites[site_id])

    def truth(self) -> dict[str, dict[str, Any]]:
        """Every visible site with its assets, by id."""
        with self._lock:
            return {s["siteId"]: s for s in map(self.detail, self._sites) if s is not None}

    # -- mutations --------------------------------------------------------------------------
    def _site(self, site_id: str) -> dict[str, Any]:
        if site_id not in self._sites:
            raise KeyError(f"no site {site_id}")
        return self._sites[site_id]

    def set_schedule(
        self, site_id: str, asset: str, type: str, entries: list[dict[str, Any]]
    ) -> None:
        """Replace (or add) the schedule ``(asset, type)``; ``entries=[]`` clears it."""
        with self._lock:
            schedules = self._site(site_id).setdefault("schedules", [])
            for schedule in schedules:
                if schedule["asset"] == asset and schedule["type"] == type:
                    schedule["entries"] = copy.deepcopy(entries)
                    return
            schedules.append({"asset": asset, "type": type, "entries": copy.deepcopy(entries)})

    def clear_schedule(self, site_id: str, asset: str, type: str) -> None:
        self.set_schedule(site_id, asset, type, [])

    def clear_schedules(self, site_id: str) -> None:
        with self._lock:
            self._site(site_id)["schedules"] = []

    def set_online(self, site_id: str, online: bool, reported_at: str | None = None) -> None:
        with self._lock:
            site = self._site(site_id)
            site["isOnline"] = bool(online)
            site["reportedAt"] = reported_at or iso(datetime.now(UTC))

    def hide_site(self, site_id: str) -> None:
        """Leave the site out of the list and 404 its detail (e.g. the access group lost it)."""
        with self._lock:
            self._site(site_id)
            self._hidden.add(site_id)

    def show_site(self, site_id: str) -> None:
        with self._lock:
            self._hidden.discard(site_id)
            self._vanished.discard(site_id)

    def vanish_on_detail(self, site_id: str) -> None:
        """Still listed, but its detail answers 404 (deleted between list and detail)."""
        with self._lock:
            self._site(site_id)
            self._vanished.add(site_id)

    def list_without_schedules(self, site_id: str, omit: bool = True) -> None:
        """The list leaves the site's ``schedules`` field out; its detail still has it."""
        with self._lock:
            self._site(site_id)
            (self._unscheduled.add if omit else self._unscheduled.discard)(site_id)

    def add_site(self) -> str:
        with self._lock:
            site = self._gen.site(len(self._sites))
            self._sites[site["siteId"]] = site
            return site["siteId"]

    def add_asset(self, site_id: str, kind: str, fields: dict[str, Any]) -> None:
        with self._lock:
            self._site(site_id).setdefault("assets", {})[kind] = {
                "id": f"x-{kind}",
                "type": kind,
                **fields,
            }

    def set_asset_field(self, site_id: str, kind: str, name: str, value: Any) -> None:
        with self._lock:
            self._site(site_id)["assets"][kind][name] = value

    def set_site_field(self, site_id: str, name: str, value: Any) -> None:
        with self._lock:
            self._site(site_id)[name] = value

    def set_entry_field(self, name: str, value: Any, site_id: str | None = None) -> None:
        """Set ``name`` on every schedule entry (of one site, or of every site): e.g. a field
        the API starts sending with unchanged entries."""
        with self._lock:
            sites = [self._site(site_id)] if site_id else list(self._sites.values())
            for site in sites:
                for schedule in site.get("schedules") or ():
                    for entry in schedule["entries"]:
                        entry[name] = copy.deepcopy(value)

    # -- faults -----------------------------------------------------------------------------
    def set_health(self, status: int | str = 204, delay: float = 0.0) -> None:
        """``204`` healthy, ``503`` down, ``"timeout"``: /health stalls ``delay`` seconds."""
        self.health_status, self.health_delay = status, float(delay)

    def revoke_key(self, revoked: bool = True) -> None:
        self.revoked = bool(revoked)

    def fail_next(self, n: int, status: int = 500, endpoint: str | None = None) -> None:
        """The next ``n`` API requests (``endpoint``: "list", "detail" or any) fail."""
        with self._lock:
            self._faults.append([int(n), int(status), endpoint])

    def slow(self, seconds: float) -> None:
        self.delay = max(0.0, float(seconds))

    def enter(self) -> None:
        with self._lock:
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)

    def leave(self) -> None:
        with self._lock:
            self.in_flight -= 1

    def fail_site_detail(self, site_id: str, status: int = 500) -> None:
        """Every detail request of this site answers ``status`` (until ``reset_faults``)."""
        with self._lock:
            self.broken_details[site_id] = int(status)

    def take_fault(self, endpoint: str) -> int | None:
        with self._lock:
            for fault in self._faults:
                if fault[0] > 0 and fault[2] in (None, endpoint):
                    fault[0] -= 1
                    if fault[0] == 0:
                        self._faults.remove(fault)
                    return fault[1]
        return None

    def reset_faults(self) -> None:
        with self._lock:
            self._faults.clear()
            self.broken_details.clear()
        self.health_status, self.health_delay, self.revoked, self.delay = 204, 0.0, False, 0.0

    # -- request log ------------------------------------------------------------------------
    def log_request(
        self,
        method: str,
        path: str,
        endpoint: str | None,
        site_id: str | None,
        auth_present: bool,
    ) -> RequestInfo:
        return self._log.record(RequestInfo(method, path, endpoint, site_id, auth_present))

    def stats(self) -> dict[str, Any]:
        return {
            **super().stats(),
            "sites": len(self._sites),
            "hidden": sorted(self._hidden),
            "max_in_flight": self.max_in_flight,
        }

    def admin_view(self, parts: list[str]) -> Any:
        """``GET /__admin/truth`` (every visible site, by id), and the shared views."""
        if parts == ["truth"]:
            return self.truth()
        return super().admin_view(parts)
