"""HTTP side of the HEAT sandbox: routing, auth, faults, JSON bodies and ``/__admin``.

Routes: ``GET /health`` (no auth: 204, 503, or a stall), ``GET /api/{v0|v1}/public/sites``,
``GET /api/{v0|v1}/public/sites/{siteId}``. Every other API request needs
``Authorization: Bearer <key>`` (401 otherwise, and always once the key is revoked). Writes
are refused (405): the pipeline is read-only. The key is never logged.
"""

from __future__ import annotations

import re
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlsplit

import orjson

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


class HeatHTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], sb: HeatSandbox) -> None:
        self.sb = sb
        self.connections: set[socket.socket] = set()
        self.connections_lock = threading.Lock()
        super().__init__(address, Handler)

    def close_connections(self) -> None:
        with self.connections_lock:
            conns = list(self.connections)
        for conn in conns:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: HeatHTTPServer

    def version_string(self) -> str:
        return "HeatSandbox/1.0"

    def setup(self) -> None:
        super().setup()
        with self.server.connections_lock:
            self.server.connections.add(self.connection)

    def finish(self) -> None:
        try:
            super().finish()
        except OSError:
            pass
        with self.server.connections_lock:
            self.server.connections.discard(self.connection)

    def log_message(self, format: str, *args: Any) -> None:
        """Silent: the sandbox keeps its own log, without headers."""

    def _write(self, status: int, body: bytes = b"") -> None:
        self.send_response(status)
        if body:
            self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if body:
            self.wfile.write(body)

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def do_PUT(self) -> None:
        self._dispatch("PUT")

    def do_DELETE(self) -> None:
        self._dispatch("DELETE")

    def _dispatch(self, method: str) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        path = urlsplit(self.path).path
        try:
            if path.startswith("/__admin"):
                self._admin(method, path, body)
            else:
                self._api(method, path)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True

    def _api(self, method: str, path: str) -> None:
        from sandbox.heat.sandbox import RequestInfo

        sb = self.server.sb
        route = _ROUTE.match(path)
        site_id = unquote(route.group(2)) if route and route.group(2) else None
        endpoint = (
            "health" if path == "/health" else ("detail" if site_id else "list") if route else None
        )
        info = sb.log_request(
            RequestInfo(method, path, endpoint, site_id, "Authorization" in self.headers)
        )

        def reply(status: int, payload: bytes = b"") -> None:
            info.status = status
            self._write(status, payload)

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

    def _admin(self, method: str, path: str, body: bytes) -> None:
        sb = self.server.sb
        parts = [unquote(p) for p in path.strip("/").split("/")[1:]]
        try:
            if method == "GET" and parts == ["truth"]:
                result: Any = sb.truth()
            elif method == "GET" and parts == ["requests"]:
                result = [r.as_dict() for r in sb.requests]
            elif method == "GET" and parts == ["stats"]:
                result = sb.stats()
            elif method == "POST" and len(parts) == 1 and parts[0] in sb.ADMIN_ACTIONS:
                kwargs = orjson.loads(body) if body.strip() else {}
                if not isinstance(kwargs, dict):
                    raise ValueError("body must be a JSON object of keyword arguments")
                result = {"result": getattr(sb, parts[0])(**kwargs)}
            else:
                return self._write(404, error_body(404, "Unknown admin route"))
        except (TypeError, ValueError, KeyError, orjson.JSONDecodeError) as exc:
            return self._write(400, error_body(400, str(exc)))
        return self._write(200, orjson.dumps(result))
