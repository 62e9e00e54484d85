"""HTTP for the SolarAssistant sandbox, on ``sandbox.common.server``: the cloud API (plain
HTTP on loopback) and the proxy (HTTPS with a self-signed certificate). Both read and change
the state of one :class:`~sandbox.solarassistant.sandbox.SolarAssistantSandbox`."""

from __future__ import annotations

import json
import re
import time
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlsplit

from sandbox.common.server import SandboxHandler

if TYPE_CHECKING:
    from sandbox.solarassistant.sandbox import SolarAssistantSandbox

API = "/api/v1"
_SITE = re.compile(rf"^{API}/sites/(\d+)(/users|/authorize)?$")


class _Base(SandboxHandler):
    server_kind = ""
    sb: SolarAssistantSandbox

    def send_json(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
        # json, not orjson: integers beyond 64 bits and NaN are sent as Python writes them
        self.send(status, json.dumps(body).encode(), headers, "application/json; charset=utf-8")

    def handle_request(self, method: str) -> None:
        self.read_body()
        parts = urlsplit(self.path)
        query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        self.sb._record(self.server_kind, method, parts.path, query)
        fault = self.sb._take_fault(self.server_kind, parts.path)
        if fault is not None:
            if fault == "drop":
                self.hang_up()
            else:
                self.send_json(fault, {"error": f"injected fault {fault}"})
            return
        self.route(method, parts.path, query)

    def route(self, method: str, path: str, query: dict[str, str]) -> None:
        raise NotImplementedError


class CloudHandler(_Base):
    server_kind = "cloud"

    def route(self, method: str, path: str, query: dict[str, str]) -> None:
        sb = self.sb
        if path.startswith("/__admin/"):
            return self.admin(method, path.removeprefix("/__admin/"), query)
        if self.headers.get("Authorization") != f"Bearer {sb.api_token}":
            return self.send_json(401, {"error": "Unauthorized"})
        match = _SITE.match(path)
        if method == "POST" and match and match.group(2) == "/authorize":
            found = sb._authorize(int(match.group(1)))
            return self.send_json(*found)
        if method != "GET":
            sb._write_attempt(method, path)
            return self.send_json(405, {"error": "the sandbox is read-only except authorize"})
        if path == f"{API}/user":
            return self.send_json(200, sb.truth("users")[0])
        if path == f"{API}/sites":
            return self.send_json(200, sb.truth("sites"))
        if path == f"{API}/users":
            return self.send_json(*sb._org_users(query))
        if match and match.group(2) is None:
            detail = sb.site_detail(int(match.group(1)))
            return self.send_json(200 if detail else 404, detail or {"error": "Site not found"})
        if match and match.group(2) == "/users":
            site_id = int(match.group(1))
            if sb.site_detail(site_id) is None:
                return self.send_json(404, {"error": "Site not found"})
            return self.send_json(200, sb.members_truth(site_id))
        return self.send_json(404, {"error": "Not found"})

    def admin(self, method: str, action: str, query: dict[str, str]) -> None:
        sb = self.sb
        if method == "GET" and action.startswith("truth/"):
            name = action.removeprefix("truth/")
            if name.startswith("metrics/"):
                return self.send_json(200, sb.metrics_truth(int(name.split("/", 1)[1])))
            return self.send_json(200, sb.truth(name))
        if method == "GET" and action == "stats":
            return self.send_json(200, sb.stats())
        if method == "POST" and action == "tick":
            sb.tick()
        elif method == "POST" and action == "offline":
            sb.set_offline(int(query["site"]), query.get("mode") or None)
        elif method == "POST" and action == "expire_tokens":
            sb.expire_tokens()
        elif method == "POST" and action == "remove_member":
            sb.remove_member(int(query["site"]), int(query["user"]))
        elif method == "POST" and action == "value":
            sb.set_value(
                int(query["site"]), query["topic"], json.loads(query["value"]), query.get("unit")
            )
        elif method == "POST" and action == "remove_topic":
            sb.remove_topic(int(query["site"]), query["topic"])
        else:
            return self.send_json(404, {"error": f"unknown admin action {action}"})
        return self.send_json(200, {"ok": True})


class ProxyHandler(_Base):
    server_kind = "proxy"

    def route(self, method: str, path: str, query: dict[str, str]) -> None:
        sb = self.sb
        if method != "GET":
            sb._write_attempt(method, path)
            return self.send_json(405, {"error": "read-only sandbox"})
        if path not in (f"{API}/metrics", f"{API}/system"):
            return self.send_json(404, {"error": "Not found"})
        auth = self.headers.get("Authorization") or ""
        site_id = self.headers.get("Site-Id") or ""
        verdict = sb._check_site_access(
            auth.removeprefix("Bearer "), site_id, self.headers.get("Site-Key") or ""
        )
        if verdict is not None:
            return self.send_json(
                verdict, {"error": "Unauthorized" if verdict == 401 else "Forbidden"}
            )
        with sb._in_flight():
            if sb.proxy_latency:
                time.sleep(sb.proxy_latency)
            offline = sb.offline_mode(int(site_id))
            if offline == "drop":
                return self.hang_up()
            if offline == "timeout":
                time.sleep(sb.offline_sleep)
                return self.send_json(504, {"error": "Gateway Timeout"})
            if offline is not None:
                status = int(offline) if offline.isdigit() else 502
                return self.send_json(status, {"error": "Site offline"})
            if path.endswith("/system"):
                return self.send_json(404, {"error": "Not found"})
            return self.send_json(200, sb.metrics_truth(int(site_id), query.get("topic")))
