"""An HTTPS Tesla gateway on loopback: self-signed certificate, rate-limited login, firmware
variants, stopped mode and counter glitches. Controlled from Python (tests) or the CLI.

    with TeslaGatewaySandbox(tmp_dir, variant="21.44", password="ABCDE") as gw:
        gw.host            # "127.0.0.1:PORT"
        gw.cert.sha256     # the certificate's fingerprint
        gw.stopped = True  # aggregates/soe/grid_status answer 502 with an empty body
        gw.expire_sessions()
        gw.session_max_requests = 5  # every session expires after 5 requests
        gw.logins          # successful logins so far

/api/status answers without a session (``PUBLIC_PATHS``), like a real gateway: a client
whose login fails still reads it. Every other GET needs a session.
"""

from __future__ import annotations

import base64
import contextlib
import json
import secrets
import socket
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from http.cookies import SimpleCookie
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from sandbox.common.tls import SelfSignedCert
from sandbox.tesla.model import (
    STOPPABLE,
    STOPPED_CAPTURES,
    VARIANTS,
    Meters,
    capture_bytes,
)

#: answered without a session, as real gateways do (firmware, uptime: no customer data)
PUBLIC_PATHS = frozenset({"/api/status"})
LIMIT_BODY = b'{"code":429,"error":"Api Limit reached for this endpoint"}'
UNAUTHORIZED_BODY = b'{"code":401,"error":"bad credentials","message":"Login Error"}'


@dataclass
class Seen:
    method: str
    path: str
    authenticated: bool  # not refused (always true on a public path)


class TeslaGatewaySandbox:
    def __init__(
        self,
        directory: str | Path,
        *,
        variant: str = "21.44",
        password: str = "S4ndb0xPW",
        live: bool = True,
        login_limit: int = 5,
        login_window: float = 300.0,
        port: int = 0,
        zero_at: dict[int, Iterable[tuple[str, str]]] | None = None,
        reset_at: dict[int, Iterable[str]] | None = None,
    ) -> None:
        if variant not in VARIANTS:
            raise ValueError(f"unknown variant {variant!r}; known: {sorted(VARIANTS)}")
        self.directory = Path(directory)
        self.variant = variant
        self.password = password
        self.live = live
        self.login_limit = login_limit
        self.login_window = login_window
        self.retry_after: int | None = None  # seconds, sent with a login 429 when set
        self.stopped = False
        self.always_401 = False  # refuse every session, even a fresh one
        #: a session expires after this many authenticated requests (None: never)
        self.session_max_requests: int | None = None
        self.session_requests: dict[str, int] = {}
        self.faults: dict[str, int] = {}  # path -> HTTP status answered instead of data
        self.login_attempts: list[float] = []
        self.logins = 0
        self.tokens: set[str] = set()
        self.issued: list[str] = []  # every token ever handed out (secret scans)
        self.seen: list[Seen] = []
        self.lock = threading.Lock()
        routes = VARIANTS[variant]
        template = routes.get("/api/meters/aggregates")
        self.meters = (
            Meters(
                json.loads(capture_bytes(template)),
                zero_at={k: set(v) for k, v in (zero_at or {}).items()},
                reset_at={k: set(v) for k, v in (reset_at or {}).items()},
            )
            if template
            else None
        )
        self.cert = SelfSignedCert.create(self.directory, name=f"gateway-{secrets.token_hex(4)}")
        self._port = port
        self.httpd: ThreadingHTTPServer | None = None
        self.connections: set[Any] = set()  # open keep-alive sockets, closed by stop()

    # -- lifecycle --------------------------------------------------------------------------
    def start(self) -> TeslaGatewaySandbox:
        self.httpd = ThreadingHTTPServer(("127.0.0.1", self._port), _handler(self))
        self.httpd.daemon_threads = True
        self.cert.wrap(self.httpd)
        self._port = self.httpd.server_address[1]
        threading.Thread(
            target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        ).start()
        return self

    def stop(self) -> None:
        if self.httpd is not None:
            self.httpd.shutdown()
            self.httpd.server_close()
            self.httpd = None
        for sock in list(self.connections):  # a stopped gateway keeps no connection alive
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        self.connections.clear()

    def __enter__(self) -> TeslaGatewaySandbox:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def replace_certificate(self) -> None:
        """Restart on the same port with a new self-signed certificate (an impostor, or a
        reset gateway)."""
        self.stop()
        self.cert = SelfSignedCert.create(self.directory, name=f"gateway-{secrets.token_hex(4)}")
        self.start()

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self._port}"

    # -- control ----------------------------------------------------------------------------
    def expire_sessions(self) -> None:
        with self.lock:
            self.tokens.clear()

    def requests_to(self, path: str) -> int:
        return sum(1 for s in self.seen if s.path == path)

    # -- serving ----------------------------------------------------------------------------
    def login(self, body: dict[str, Any]) -> tuple[int, bytes, dict[str, str]]:
        now = time.monotonic()
        with self.lock:
            self.login_attempts = [t for t in self.login_attempts if now - t < self.login_window]
            if len(self.login_attempts) >= self.login_limit:
                retry = {"Retry-After": str(self.retry_after)} if self.retry_after else {}
                return 429, LIMIT_BODY, retry
            self.login_attempts.append(now)
            if body.get("username") != "customer" or body.get("password") != self.password:
                return 401, UNAUTHORIZED_BODY, {}
            token = base64.b64encode(secrets.token_bytes(48)).decode()
            self.tokens.add(token)
            self.issued.append(token)
            self.logins += 1
        record = base64.b64encode(json.dumps({"email": body.get("email", "")}).encode()).decode()
        answer = {
            "email": body.get("email", ""),
            "firstname": "Tesla",
            "lastname": "Energy",
            "roles": ["Home_Owner"],
            "token": token,
            "provider": "Basic",
            "loginTime": time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime()),
        }
        cookies = {"Set-Cookie": f"AuthCookie={token}; Path=/; HttpOnly; Secure"}
        cookies["Set-Cookie-2"] = f"UserRecord={record}; Path=/; Secure"
        return 200, json.dumps(answer).encode(), cookies

    def authenticated(self, headers: Any) -> bool:
        if self.always_401:
            return False
        candidates = []
        auth = headers.get("Authorization") or ""
        if auth.startswith("Bearer "):
            candidates.append(auth[len("Bearer ") :])
        jar = SimpleCookie(headers.get("Cookie") or "")
        if "AuthCookie" in jar:
            candidates.append(jar["AuthCookie"].value)
        with self.lock:
            for candidate in candidates:
                if candidate not in self.tokens:
                    continue
                used = self.session_requests.get(candidate, 0) + 1
                self.session_requests[candidate] = used
                if self.session_max_requests is not None and used > self.session_max_requests:
                    self.tokens.discard(candidate)  # expired
                    return False
                return True
            return False

    def get(self, path: str) -> tuple[int, bytes]:
        routes = VARIANTS[self.variant]
        if path in self.faults:
            return self.faults[path], b'{"code":500,"error":"internal error"}'
        if self.stopped and path in STOPPABLE:
            return 502, b""
        if self.stopped and path in STOPPED_CAPTURES and self.variant == "21.44":
            return 200, capture_bytes(STOPPED_CAPTURES[path])
        recipe = routes.get(path)
        if recipe is None:
            return 404, b'{"code":404,"error":"Not Found"}'
        if self.stopped and path == "/api/sitemaster":
            body = json.loads(capture_bytes(recipe))
            body.update(status="StatusDown", running=False)
            return 200, json.dumps(body).encode()
        if path == "/api/meters/aggregates" and self.live and self.meters is not None:
            with self.lock:
                return 200, json.dumps(self.meters.read()).encode()
        return 200, capture_bytes(recipe)


def _handler(gateway: TeslaGatewaySandbox) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: Any) -> None:
            pass

        def setup(self) -> None:
            super().setup()
            # headers and body leave in separate TLS records: without this, Nagle's
            # algorithm and the client's delayed ACK add ~40 ms to every answer
            self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            gateway.connections.add(self.connection)

        def finish(self) -> None:
            gateway.connections.discard(self.connection)
            with contextlib.suppress(OSError):
                super().finish()

        def _send(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
            self.send_response_only(status)
            self.send_header("Date", self.date_time_string())
            self.send_header("Cache-Control", "no-cache, no-store")
            if body:
                self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            for name, value in (headers or {}).items():
                self.send_header("Set-Cookie" if name.startswith("Set-Cookie") else name, value)
            self.end_headers()
            self.wfile.write(body)

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            path = self.path.split("?", 1)[0]
            gateway.seen.append(Seen("POST", path, False))
            if path != "/api/login/Basic":
                self._send(403, b'{"code":403,"error":"read-only sandbox"}')
                return
            try:
                body = json.loads(raw or b"{}")
            except ValueError:
                body = {}
            self._send(*gateway.login(body if isinstance(body, dict) else {}))

        def do_GET(self) -> None:
            path = self.path.split("?", 1)[0]
            ok = path in PUBLIC_PATHS or gateway.authenticated(self.headers)
            gateway.seen.append(Seen("GET", path, ok))
            if not ok:
                self._send(401, UNAUTHORIZED_BODY)
                return
            self._send(*gateway.get(path))

        def do_PUT(self) -> None:
            self._send(403, b'{"code":403,"error":"read-only sandbox"}')

        do_DELETE = do_PATCH = do_PUT

    return Handler
