"""The HTTP scaffolding every sandbox stands on: a threaded loopback server that knows its
open connections, a request handler with the plumbing (keep-alive, body reading, replies with
Content-Length, dropped connections, the ``/__admin`` API) and a :class:`Listener` that runs
one server on a daemon thread, over HTTPS when given a certificate (``sandbox.common.tls``).

A sandbox writes only what is its own::

    class Handler(SandboxHandler):
        def handle_request(self, method: str) -> None:    # routes, auth, faults, bodies
            self.send(200, b'{"ok": true}')

    listener = Listener(Handler, owner=my_sandbox, name="heat-sandbox").start()
    listener.url("/api")    # http://127.0.0.1:<port>/api; handlers reach the owner as self.sb
    listener.stop()         # also closes kept-alive connections: a stopped server answers nothing
"""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Iterable, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import unquote

import orjson

from sandbox.common.tls import SelfSignedCert

ADMIN_PREFIX = "/__admin"
MAX_BODY = 10 << 20  # request bodies beyond this are not read (the connection is closed)
Headers = Mapping[str, str] | Iterable[tuple[str, str]]


class _NotFound:
    def __repr__(self) -> str:
        return "NOT_FOUND"


#: what :meth:`AdminApi.admin_view` returns for a route it does not know
NOT_FOUND: Any = _NotFound()


class LoopbackServer(ThreadingHTTPServer):
    """A ``ThreadingHTTPServer`` that tracks its open connections (``close_connections``) and
    carries the sandbox its handlers serve (``owner``)."""

    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(self, address: tuple[str, int], handler: type[SandboxHandler], owner: Any) -> None:
        self.owner = owner
        self.connections: set[socket.socket] = set()
        self.connections_lock = threading.Lock()
        super().__init__(address, handler)

    def close_connections(self) -> None:
        """Shut every open connection down (kept-alive ones included)."""
        with self.connections_lock:
            connections = list(self.connections)
        for connection in connections:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)


class SandboxHandler(BaseHTTPRequestHandler):
    """HTTP/1.1 keep-alive plumbing; subclasses implement :meth:`handle_request`.

    Nothing is logged by ``http.server`` (a request line may carry a secret): each sandbox
    keeps its own request log. ``server_software`` set: replies carry ``Server`` (and the
    ``Date`` of :meth:`date_time_string`, which a sandbox may skew); unset: ``Date`` only.
    """

    protocol_version = "HTTP/1.1"
    server: LoopbackServer
    server_software: str | None = None

    @property
    def sb(self) -> Any:
        """The sandbox this request is served for."""
        return self.server.owner

    # -- connection bookkeeping ------------------------------------------------------------
    def setup(self) -> None:
        super().setup()
        # headers and body leave in separate writes (TLS records): without this, Nagle's
        # algorithm and the client's delayed ACK add ~40 ms to every answer
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        with self.server.connections_lock:
            self.server.connections.add(self.connection)

    def finish(self) -> None:
        with contextlib.suppress(OSError):
            super().finish()
        with self.server.connections_lock:
            self.server.connections.discard(self.connection)

    def log_message(self, format: str, *args: Any) -> None:
        """Silent: the request line could carry a secret; the sandbox keeps its own log."""

    def version_string(self) -> str:
        return self.server_software or super().version_string()

    # -- dispatch --------------------------------------------------------------------------
    def _dispatch(self) -> None:
        try:
            self.handle_request(self.command)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _dispatch  # HEAD: 501 (no API serves it)

    def handle_request(self, method: str) -> None:
        raise NotImplementedError

    # -- reading and replying --------------------------------------------------------------
    def read_body(self) -> bytes:
        """The request body; empty (and the connection closed after the reply) when it is
        chunked or larger than ``MAX_BODY``, so a stream we cannot parse is never resynced."""
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            self.close_connection = True
            return b""
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            length = MAX_BODY + 1
        if length > MAX_BODY:
            self.close_connection = True
            return b""
        return self.rfile.read(length) if length > 0 else b""

    def send(
        self,
        status: int,
        body: bytes = b"",
        headers: Headers | None = None,
        content_type: str = "application/json",
    ) -> None:
        """A whole reply: status, ``Content-Type`` (when there is a body), ``Content-Length``,
        then ``headers`` (a mapping, or pairs when a name repeats, e.g. ``Set-Cookie``)."""
        if self.server_software:
            self.send_response(status)
        else:
            self.send_response_only(status)
            self.send_header("Date", self.date_time_string())
        if body:
            self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        pairs = headers.items() if isinstance(headers, Mapping) else headers or ()
        for name, value in pairs:
            self.send_header(name, value)
        self.end_headers()
        if body:
            self.wfile.write(body)

    def hang_up(self) -> None:
        """Close the connection at once, whatever was (not) sent: a dropped connection."""
        self.close_connection = True
        with contextlib.suppress(OSError):
            self.connection.shutdown(socket.SHUT_RDWR)

    # -- /__admin --------------------------------------------------------------------------
    @staticmethod
    def is_admin(path: str) -> bool:
        return path == ADMIN_PREFIX or path.startswith(ADMIN_PREFIX + "/")

    def admin_error(self, status: int, message: str) -> bytes:
        """The error body of a failed admin call, in the sandbox's error shape."""
        return orjson.dumps({"error": message})

    def serve_admin(self, method: str, path: str, body: bytes) -> None:
        """``GET /__admin/<view>`` (see :meth:`AdminApi.admin_view`) and
        ``POST /__admin/<action>`` with a JSON object of keyword arguments, for the methods
        named in the sandbox's ``ADMIN_ACTIONS``; the answer is ``{"result": ...}``."""
        sb = self.sb
        parts = [unquote(p) for p in path.strip("/").split("/")[1:]]
        try:
            if method == "GET":
                result = sb.admin_view(parts)
            elif method == "POST" and len(parts) == 1 and parts[0] in sb.ADMIN_ACTIONS:
                kwargs = orjson.loads(body) if body.strip() else {}
                if not isinstance(kwargs, dict):
                    raise ValueError("body must be a JSON object of keyword arguments")
                result = {"result": getattr(sb, parts[0])(**kwargs)}
            else:
                result = NOT_FOUND
        except (TypeError, ValueError, KeyError, orjson.JSONDecodeError) as exc:
            self.send(400, self.admin_error(400, str(exc)))
            return
        if result is NOT_FOUND:
            self.send(404, self.admin_error(404, "Unknown admin route."))
            return
        self.send(200, orjson.dumps(result, option=orjson.OPT_NON_STR_KEYS))


class Listener:
    """One :class:`LoopbackServer` on a daemon thread. ``port=0`` picks a free port, kept
    across :meth:`stop` / :meth:`start` (a restart listens where clients expect it);
    ``cert`` serves HTTPS."""

    def __init__(
        self,
        handler: type[SandboxHandler],
        owner: Any,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        cert: SelfSignedCert | None = None,
        name: str = "sandbox",
    ) -> None:
        self.handler, self.owner = handler, owner
        self.host, self.port = host, port
        self.cert = cert
        self.name = name
        self._server: LoopbackServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def running(self) -> bool:
        return self._server is not None

    @property
    def address(self) -> str:
        """``host:port``."""
        return f"{self.host}:{self.port}"

    def url(self, path: str = "") -> str:
        scheme = "https" if self.cert is not None else "http"
        return f"{scheme}://{self.address}{path}"

    def start(self) -> Listener:
        if self._server is not None:
            return self
        server = LoopbackServer((self.host, self.port), self.handler, self.owner)
        if self.cert is not None:
            self.cert.wrap(server)
        self.port = server.server_address[1]
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"{self.name}-{self.port}",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is None:
            return
        server.shutdown()
        server.close_connections()
        server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
