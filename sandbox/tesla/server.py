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
import json
import secrets
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from http.cookies import SimpleCookie
from pathlib import Path
from typing import Any

from sandbox.common.sandbox import LoopbackSandbox
from sandbox.common.server import Listener, SandboxHandler
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
LOGIN_PATH = "/api/login/Basic"
LIMIT_BODY = b'{"code":429,"error":"Api Limit reached for this endpoint"}'
READ_ONLY_BODY = b'{"code":403,"error":"read-only sandbox"}'
UNAUTHORIZED_BODY = b'{"code":401,"error":"bad credentials","message":"Login Error"}'


@dataclass
class Seen:
    method: str
    path: str
    authenticated: bool  # not refused (always true on a public path)


class TeslaGatewaySandbox(LoopbackSandbox):
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
        super().__init__()
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
        self.seen = self._log  # every request, in order (a list tests may clear)
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
        self._https = Listener(Handler, self, port=port, name="tesla-gateway")
        self.cert = self._new_certificate()

    # -- lifecycle --------------------------------------------------------------------------
    @property
    def listeners(self) -> tuple[Listener]:
        return (self._https,)

    def _new_certificate(self) -> SelfSignedCert:
        cert = SelfSignedCert.create(self.directory, name=f"gateway-{secrets.token_hex(4)}")
        self._https.cert = cert
        return cert

    def replace_certificate(self) -> None:
        """Restart on the same port with a new self-signed certificate (an impostor, or a
        reset gateway)."""
        self.stop()
        self.cert = self._new_certificate()
        self.start()

    @property
    def host(self) -> str:
        return self._https.address

    # -- control ----------------------------------------------------------------------------
    def expire_sessions(self) -> None:
        with self.lock:
            self.tokens.clear()

    def requests_to(self, path: str) -> int:
        return len(self._log.matching(path=path))

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


class Handler(SandboxHandler):
    sb: TeslaGatewaySandbox

    def handle_request(self, method: str) -> None:
        gateway = self.sb
        raw = self.read_body()
        path = self.path.split("?", 1)[0]
        if method == "GET":
            ok = path in PUBLIC_PATHS or gateway.authenticated(self.headers)
            gateway.seen.record(Seen("GET", path, ok))
            if not ok:
                return self._send(401, UNAUTHORIZED_BODY)
            return self._send(*gateway.get(path))
        if method != "POST":
            return self._send(403, READ_ONLY_BODY)
        gateway.seen.record(Seen("POST", path, False))
        if path != LOGIN_PATH:
            return self._send(403, READ_ONLY_BODY)
        try:
            body = json.loads(raw or b"{}")
        except ValueError:
            body = {}
        return self._send(*gateway.login(body if isinstance(body, dict) else {}))

    def _send(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
        # "Set-Cookie-2": a second Set-Cookie header (a dict cannot hold the name twice)
        pairs = [("Cache-Control", "no-cache, no-store")] + [
            ("Set-Cookie" if name.startswith("Set-Cookie") else name, value)
            for name, value in (headers or {}).items()
        ]
        self.send(status, body, pairs)
