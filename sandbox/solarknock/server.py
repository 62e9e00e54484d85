"""HTTP side of the SolarKnock sandbox, on ``sandbox.common.server``: request handling (auth,
rate limit, faults, routing, envelopes, attachment streaming) and its ``/__admin`` errors.

Order of checks for an API request: log it -> ``on_request`` callbacks -> path outside the base
-> 404 -> Authorization (401) -> subscription (402) -> rate limit (429) -> write guard (403) ->
injected faults (drop / fail / invalid cursor / malformed) -> serve. Every response carries
``X-RateLimit-*`` and a ``Date`` from the server clock. The API key is never written anywhere.
"""

from __future__ import annotations

import sys
import threading
import time
import traceback
from email.utils import formatdate
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, quote, unquote, urlsplit

import orjson

from sandbox.common.server import SandboxHandler
from sandbox.solarknock.data import ENDPOINTS, KEY_FIELDS, attachment_chunks
from sandbox.solarknock.params import ApiError, encode_cursor, parse_list_params

if TYPE_CHECKING:
    from sandbox.solarknock.sandbox import RequestInfo, SolarKnockSandbox

BASE_PATH = "/api/v1/reporting"
MALFORMED_KINDS = ("json", "no_data", "row_without_id", "html")
HTML_PAGE = (
    b"<!DOCTYPE html>\n<html><head><title>502 Bad Gateway</title></head>"
    b"<body><h1>Bad Gateway</h1><p>The upstream server returned an invalid response.</p>"
    b"<hr><address>edge-proxy</address></body></html>\n"
)


def error_body(code: str, message: str) -> bytes:
    return orjson.dumps({"error": {"code": code, "message": message}})


class Faults:
    """One-shot fault queues. Each entry: [remaining, endpoint or None, payload]."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.fail: list[list[Any]] = []
        self.drop: list[list[Any]] = []
        self.malformed: list[list[Any]] = []
        self.invalid_cursor = 0
        self.slow = 0.0
        self.attachment_bps = 0.0  # attachment bytes per second (0: as fast as possible)

    def reset(self) -> None:
        with self._lock:
            self.fail, self.drop, self.malformed = [], [], []
            self.invalid_cursor = 0
            self.slow = 0.0
            self.attachment_bps = 0.0

    def add(self, queue: str, n: int, endpoint: str | None, payload: Any = None) -> None:
        if n > 0:
            with self._lock:
                getattr(self, queue).append([int(n), endpoint, payload])

    def take(self, queue: str, endpoint: str | None, ok: Any = None) -> Any:
        """Consume one matching entry; returns its payload (or True), else None."""
        with self._lock:
            entries = getattr(self, queue)
            for e in entries:
                if e[0] > 0 and (e[1] is None or e[1] == endpoint) and (ok is None or ok(e[2])):
                    e[0] -= 1
                    if e[0] == 0:
                        entries.remove(e)
                    return True if e[2] is None else e[2]
            return None

    def take_invalid_cursor(self) -> bool:
        with self._lock:
            if self.invalid_cursor > 0:
                self.invalid_cursor -= 1
                return True
            return False


def content_disposition(name: str) -> str:
    """``attachment`` with an ASCII-safe fallback name and the exact original in
    ``filename*`` (RFC 6266/5987), so no user text can break or inject a header line."""
    fallback = "".join(c if 0x20 <= ord(c) < 0x7F and c not in '"\\' else "_" for c in name)
    return f"attachment; filename=\"{fallback or 'download'}\"; filename*=UTF-8''{quote(name, safe='')}"


class Handler(SandboxHandler):
    timeout = 120
    server_software = "SolarKnockSandbox/1.0"
    sb: SolarKnockSandbox

    def date_time_string(self, timestamp: float | None = None) -> str:
        return formatdate(self.sb._server_epoch(), usegmt=True)

    def admin_error(self, status: int, message: str) -> bytes:
        return error_body("NOT_FOUND" if status == 404 else "BAD_ADMIN_REQUEST", message)

    # -- dispatch --------------------------------------------------------------

    def handle_request(self, method: str) -> None:
        sb = self.sb
        body = self.read_body()
        url = urlsplit(self.path)
        if self.is_admin(url.path):
            self.serve_admin(method, url.path, body)
            return
        query = {k: v[-1] for k, v in parse_qs(url.query, keep_blank_values=True).items()}
        segments = self._segments(url.path)
        endpoint = self._endpoint(segments)
        info = sb._log_request(method, url.path, endpoint, query, "Authorization" in self.headers)
        t0 = time.monotonic()
        try:
            self._api(method, segments, endpoint, query, info)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True
        except Exception:  # a bug here or in an on_request callback: make it loud
            traceback.print_exc(file=sys.stderr)
            info.status, info.error_code = 500, "INTERNAL_ERROR"
            try:
                _, rl = sb._limiter.hit(consume=False)
                self.send(500, error_body("INTERNAL_ERROR", "Sandbox error (see stderr)."), rl)
            except OSError:
                self.close_connection = True
        finally:
            info.duration = time.monotonic() - t0

    @staticmethod
    def _segments(path: str) -> list[str] | None:
        if path != BASE_PATH and not path.startswith(BASE_PATH + "/"):
            return None
        return [unquote(s) for s in path[len(BASE_PATH) :].strip("/").split("/") if s]

    @staticmethod
    def _endpoint(segments: list[str] | None) -> str | None:
        if not segments:
            return None
        if segments[0] == "attachments" and len(segments) == 3:
            return "attachments"
        if segments[0] in ENDPOINTS and (len(segments) == 1 or segments[0] == "knocks"):
            return segments[0]
        return None

    def _error(
        self, info: RequestInfo, status: int, code: str, message: str, rl: dict[str, str]
    ) -> None:
        info.status, info.error_code = status, code
        self.send(status, error_body(code, message), rl)

    def _api(
        self,
        method: str,
        segments: list[str] | None,
        endpoint: str | None,
        query: dict[str, str],
        info: RequestInfo,
    ) -> None:
        sb = self.sb
        for callback in list(sb._callbacks):
            callback(sb, info)
        faults = sb._faults
        slow = faults.slow
        if slow > 0:
            time.sleep(slow)
        if segments is None:
            _, rl = sb._limiter.hit(consume=False)
            return self._error(info, 404, "NOT_FOUND", "No such route.", rl)
        auth = self.headers.get("Authorization")
        if auth is None:
            _, rl = sb._limiter.hit(consume=False)
            return self._error(info, 401, "UNAUTHENTICATED", "Missing Authorization header.", rl)
        if not sb._key_matches(auth):
            _, rl = sb._limiter.hit(consume=False)
            return self._error(info, 401, "INVALID_KEY", "API key not recognized or expired.", rl)
        if sb._subscription_expired:
            _, rl = sb._limiter.hit(consume=False)
            return self._error(info, 402, "SUBSCRIPTION_EXPIRED", "Subscription is past due.", rl)
        allowed, rl = sb._limiter.hit()
        if not allowed:
            return self._error(info, 429, "RATE_LIMITED", "Rate limit exceeded.", rl)
        if method != "GET":
            is_write = endpoint == "knocks" and (
                (method == "POST" and len(segments) == 1)
                or (method == "PATCH" and len(segments) == 2)
            )
            if is_write:
                return self._error(
                    info, 403, "WRITES_DISABLED", "Writes are disabled for this organization.", rl
                )
            if endpoint is None:
                return self._error(info, 404, "NOT_FOUND", "No such route.", rl)
            return self._error(info, 405, "METHOD_NOT_ALLOWED", "Method not allowed.", rl)
        if endpoint is None or (endpoint == "knocks" and len(segments) != 1):
            return self._error(info, 404, "NOT_FOUND", "No such route.", rl)
        # injected faults
        if faults.take("drop", endpoint):
            info.fault = "drop"
            self.hang_up()
            return None
        failure = faults.take("fail", endpoint)
        if failure:
            info.fault = "fail"
            status, code = failure
            return self._error(info, status, code, "Injected fault.", rl)
        if endpoint == "attachments":
            return self._attachment(segments[1], segments[2], info, rl)
        if query.get("cursor") and faults.take_invalid_cursor():
            info.fault = "invalid_cursor"
            return self._error(
                info, 400, "INVALID_CURSOR", "Cursor is invalid or belongs to another endpoint.", rl
            )
        try:
            parts, rows = self._json_page(endpoint, query)
        except ApiError as e:
            return self._error(info, e.status, e.code, e.message, rl)
        info.row_count = len(rows)
        content_type = "application/json"
        applicable = {"json", "no_data", "html"} | ({"row_without_id"} if rows else set())
        kind = faults.take("malformed", endpoint, ok=lambda k: k in applicable)
        if kind:
            info.fault = f"malformed:{kind}"
        body = self._assemble(endpoint, parts, rows, kind)
        if kind == "html":
            body, content_type = HTML_PAGE, "text/html; charset=utf-8"
        elif kind == "json":
            body = body[: max(1, len(body) // 2)]
        info.status = 200
        self.send(200, body, rl, content_type)
        return None

    # -- JSON endpoints --------------------------------------------------------

    def _json_page(self, endpoint: str, query: dict[str, str]) -> tuple[dict, list[bytes]]:
        """Returns (envelope parts other than data, row bytes)."""
        sb = self.sb
        store = sb._store
        meta = {"org_id": store.gen.org_id, "fetched_at": sb._fetched_at(), "row_count": 0}
        if endpoint == "org":
            org = store.row_bytes("org", store.gen.org_id)
            meta["row_count"] = 1
            return {"meta": meta}, [org] if org else []
        p = parse_list_params(endpoint, query)
        rows, last, has_more = store.page(
            endpoint,
            after=p.after,
            since=p.since,
            until=p.until,
            limit=p.limit,
            include_deleted=p.include_deleted,
            predicate=p.predicate,
        )
        meta["row_count"] = len(rows)
        next_cursor = encode_cursor(endpoint, last) if has_more and last else None
        return {
            "pagination": {"next_cursor": next_cursor, "has_more": has_more},
            "meta": meta,
        }, rows

    def _assemble(self, endpoint: str, parts: dict, rows: list[bytes], kind: Any) -> bytes:
        if kind == "row_without_id" and rows:
            rows = list(rows)
            i = len(rows) // 2
            row = orjson.loads(rows[i])
            for f in KEY_FIELDS[endpoint]:
                row.pop(f, None)
            rows[i] = orjson.dumps(row)
        tail = b"".join(b',"' + k.encode() + b'":' + orjson.dumps(v) for k, v in parts.items())
        if kind == "no_data":
            return b"{" + tail[1:] + b"}"
        if endpoint == "org":
            return b'{"data":' + (rows[0] if rows else b"null") + tail + b"}"
        return b'{"data":[' + b",".join(rows) + b"]" + tail + b"}"

    # -- attachments -----------------------------------------------------------

    def _attachment(
        self, lead_id: str, file_id: str, info: RequestInfo, rl: dict[str, str]
    ) -> None:
        sb = self.sb
        meta = sb._store.attachment(lead_id, file_id)
        if meta is None:
            return self._error(info, 404, "NOT_FOUND", "Attachment not found.", rl)
        kind = sb._faults.take("malformed", "attachments", ok=lambda k: k in ("json", "html"))
        if kind == "html":
            info.fault, info.status = "malformed:html", 200
            return self.send(200, HTML_PAGE, rl, "text/html; charset=utf-8")
        size = int(meta.get("size") or 0)
        mime = meta.get("mimeType") or "application/octet-stream"
        self.send_response(200)
        self.send_header("Content-Type", mime)
        self.send_header("Content-Length", str(size))
        self.send_header("Content-Disposition", content_disposition(meta.get("fileName") or ""))
        for k, v in rl.items():
            self.send_header(k, v)
        self.end_headers()
        info.status = 200
        cut = size // 2 if kind == "json" else size  # "json" on a file = truncated download
        if kind:
            info.fault = "malformed:truncated"
        sent = 0
        for chunk in attachment_chunks(lead_id, file_id, mime, size):
            if sent + len(chunk) > cut:
                chunk = chunk[: cut - sent]
            if chunk:
                self.wfile.write(chunk)
                if sb._faults.attachment_bps > 0:
                    time.sleep(len(chunk) / sb._faults.attachment_bps)
            sent += len(chunk)
            if sent >= cut:
                break
        if sent < size:
            self.hang_up()
        return None
