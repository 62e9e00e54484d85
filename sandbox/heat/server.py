"""HTTP side of the HEAT sandbox, on ``sandbox.common.server``: routing, auth, faults, JSON
bodies and the error body.

Routes: ``GET /health`` (no auth: 204, 503, or a stall), ``GET /api/{v0|v1}/public/sites``,
``GET /api/{v0|v1}/public/sites/{siteId}``. Every other API request needs
``Authorization: Bearer <key>`` (401 otherwise, and always once the key is revoked). Writes
are refused (405): the pipeline is read-only. The key is never logged.
"""

from __future__ import annotations

import re
import time
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlsplit

import orjson

from sandbox.common.server import SandboxHandler

if TYPE_CHECKING:
    from sandbox.heat.sandbox import HeatSandbox

_ROUTE = re.compile(r"^/api/(v0|v1)/public/sites(?:/([^/]+))?/?$")
_MESSAGES = {
    400: ("bad_request", "Bad request"),
    401: ("unauthorized", "Invalid or missing API key"),
    404: ("not_found", "Not found"),
    405: ("method_not_allowed", "Method not allowed"),
    429: ("rate_limited", "Too many requests"),
    500: ("internal_server_error", "An unexpected error occurred"),
    502: ("bad_gateway", "Bad gateway"),
    503: ("service_unavailable", "Service unavailable"),
}


def error_body(status: int, message: str | None = None) -> bytes:
    code, default = _MESSAGES.get(status, ("error", "Error"))
    return orjson.dumps({"error": code, "message": message or default})


class Handler(SandboxHandler):
    server_software = "HeatSandbox/1.0"
    sb: HeatSandbox

    def admin_error(self, status: int, message: str) -> bytes:
        return error_body(status, message)

    def handle_request(self, method: str) -> None:
        body = self.read_body()
        path = urlsplit(self.path).path
        if self.is_admin(path):
            self.serve_admin(method, path, body)
        else:
            self._api(method, path)

    def _api(self, method: str, path: str) -> None:
        sb = self.sb
        route = _ROUTE.match(path)
        site_id = unquote(route.group(2)) if route and route.group(2) else None
        endpoint = (
            "health" if path == "/health" else ("detail" if site_id else "list") if route else None
        )
        info = sb.log_request(method, path, endpoint, site_id, "Authorization" in self.headers)

        def reply(status: int, payload: bytes = b"") -> None:
            info.status = status
            self.send(status, payload)

        if endpoint == "health":
            if sb.health_status == "timeout":
                time.sleep(sb.health_delay)
                return reply(204)
            status = int(sb.health_status)
            return reply(status, b"" if status == 204 else error_body(status))
        if endpoint is None:
            return reply(404, error_body(404))
        sb.enter()
        try:
            if sb.delay:
                time.sleep(sb.delay)
            self._serve(sb, endpoint, method, site_id, reply)
        finally:
            sb.leave()
        return None

    def _serve(
        self, sb: HeatSandbox, endpoint: str, method: str, site_id: str | None, reply: Any
    ) -> None:
        if not sb.key_matches(self.headers.get("Authorization")) or sb.revoked:
            message = "API key revoked or expired" if sb.revoked else None
            return reply(401, error_body(401, message))
        if method != "GET":
            return reply(405, error_body(405))
        fault = sb.take_fault(endpoint)
        if fault:
            return reply(fault, error_body(fault))
        broken = sb.broken_details.get(site_id or "") if endpoint == "detail" else None
        if broken:
            return reply(broken, error_body(broken))
        if endpoint == "list":
            return reply(200, orjson.dumps({"sites": sb.listed()}))
        detail = sb.detail(site_id or "")
        if detail is None:
            return reply(404, error_body(404, "Site not found"))
        return reply(200, orjson.dumps(detail))
