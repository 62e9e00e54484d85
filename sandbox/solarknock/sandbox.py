"""``SolarKnockSandbox``: the public face of the SolarKnock stand-in (lifecycle, ground truth,
mutations, faults, clock, rate limit, request log). See the package docstring and
``/work/shared/apis/solarknock.md`` for the behaviour it reproduces.
"""

from __future__ import annotations

import hmac
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sandbox.common.sandbox import LoopbackSandbox
from sandbox.common.server import Listener
from sandbox.solarknock.data import (
    DEFAULT_COUNTS,
    ENDPOINTS,
    KEY_FIELDS,
    Generator,
    attachment_bytes,
    attachment_sha256,
    default_anchor_ms,
    ms_of,
)
from sandbox.solarknock.ratelimit import RateLimiter
from sandbox.solarknock.server import BASE_PATH, MALFORMED_KINDS, Faults, Handler
from sandbox.solarknock.store import Key, Store

REDACTED = "[REDACTED]"


@dataclass
class RequestInfo:
    """One API request as the sandbox saw it. Never holds the API key: ``auth_present`` only
    says whether an Authorization header was sent, and query values that contain the key are
    replaced by ``[REDACTED]``."""

    mono: float  # time.monotonic() at arrival
    server_time: datetime  # server clock (with skew) at arrival
    method: str
    path: str
    endpoint: str | None  # "knocks", "org", "attachments", ... None for unknown routes
    query: dict[str, str]
    auth_present: bool
    status: int | None = None  # None: connection dropped (fault) or still in flight
    error_code: str | None = None
    row_count: int | None = None
    fault: str | None = None  # "drop", "fail", "invalid_cursor", "malformed:<kind>"
    duration: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["server_time"] = self.server_time.isoformat().replace("+00:00", "Z")
        return d


def _normalize(endpoint: str) -> str:
    name = endpoint.replace("_", "-")
    if name not in ENDPOINTS:
        raise ValueError(f"unknown endpoint {endpoint!r}; expected one of {ENDPOINTS}")
    return name


class SolarKnockSandbox(LoopbackSandbox):
    """A SolarKnock Reporting API on 127.0.0.1 with deterministic data (see module docs).

    ``counts`` overrides the per-endpoint row counts of ``DEFAULT_COUNTS`` (keys are endpoint
    names; ``daily_stats`` spelling accepted). ``anchor`` (aware datetime) fixes the instant
    generated data ends; default: today's UTC midnight. ``port=0`` picks a free port.
    """

    BASE_PATH = BASE_PATH
    ADMIN_ACTIONS = frozenset(
        {
            "update",
            "insert",
            "soft_delete",
            "set_attachments",
            "set_attachment_size",
            "fail_next",
            "drop_next",
            "malformed_next",
            "invalid_cursor_next",
            "slow",
            "throttle_attachments",
            "set_clock_skew",
            "set_visibility_delay",
            "set_rate_limit",
            "set_subscription_expired",
            "reset_faults",
        }
    )

    def __init__(
        self,
        seed: int = 0,
        api_key: str = "sk_TESTKEY",
        counts: dict[str, int] | None = None,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        anchor: datetime | None = None,
        org_id: str | None = None,
        listener: Listener | None = None,
    ) -> None:
        """``org_id``: the org's id instead of the seed's (two orgs with one seed have the
        same record ids); ``listener``: a server shared with other orgs
        (:class:`~sandbox.solarknock.orgs.SolarKnockOrgs`) instead of one of its own."""
        merged = dict(DEFAULT_COUNTS)
        for name, n in (counts or {}).items():
            name = _normalize(name)
            if name == "org":
                raise ValueError("there is exactly one org")
            merged[name] = int(n)
        if merged["users"] < 1:
            raise ValueError("at least one user is needed")
        super().__init__()
        self.seed = seed
        self._code = api_key[3:] if api_key.startswith("sk_") else api_key
        if not self._code:
            raise ValueError("api_key must be non-empty")
        self._http = listener or Listener(
            Handler, self, host=host, port=port, name="solarknock-sandbox"
        )
        anchor_ms = default_anchor_ms() if anchor is None else ms_of(anchor.astimezone(UTC))
        self._store = Store(Generator(seed, merged, anchor_ms, org_id=org_id))
        self.counts = merged
        self._skew = 0.0
        self._visibility_delay = 0.0
        self._subscription_expired = False
        self._faults = Faults()
        self._limiter = RateLimiter(self._server_epoch)
        self._callbacks: list[Callable[[SolarKnockSandbox, RequestInfo], Any]] = []

    def __repr__(self) -> str:  # never shows the key
        where = self.base_url if self.running else "not started"
        return f"<SolarKnockSandbox seed={self.seed} {where}>"

    # -- lifecycle -------------------------------------------------------------

    @property
    def listeners(self) -> tuple[Listener]:
        return (self._http,)

    def start(self) -> SolarKnockSandbox:
        super().start()
        self._store.rebase_urls(self.base_url)
        return self

    @property
    def port(self) -> int:
        return self._http.port

    @property
    def base_url(self) -> str:
        return self._http.url(BASE_PATH)

    @property
    def admin_url(self) -> str:
        return self._http.url("/__admin")

    @property
    def org_id(self) -> str:
        return self._store.gen.org_id

    def url(self, endpoint: str) -> str:
        return f"{self.base_url}/{_normalize(endpoint)}"

    # -- auth / clock ----------------------------------------------------------

    def _key_matches(self, header: str) -> bool:
        scheme, _, token = header.strip().partition(" ")
        if scheme.lower() != "bearer":
            return False
        token = token.strip()
        if token.startswith("sk_"):
            token = token[3:]
        return bool(token) and hmac.compare_digest(token.encode(), self._code.encode())

    def _server_epoch(self) -> float:
        return time.time() + self._skew

    def _now_ms(self) -> int:
        return int(self._server_epoch() * 1000)

    def now(self) -> datetime:
        """The server's clock: real UTC now + skew (aware, UTC)."""
        return datetime.now(UTC) + timedelta(seconds=self._skew)

    def _fetched_at(self) -> str:
        return datetime.fromtimestamp(int(self._server_epoch()), UTC).strftime("%Y-%m-%dT%H:%M:%SZ")

    # -- ground truth ----------------------------------------------------------

    def truth(self, endpoint: str) -> list[dict]:
        """Every visible committed row (soft-deleted included), as served, in API order."""
        return self._store.truth(_normalize(endpoint))

    def truth_keys(self, endpoint: str, include_deleted: bool = True) -> list[Key]:
        name = _normalize(endpoint)
        kf = KEY_FIELDS[name]
        return [
            r[kf[0]] if len(kf) == 1 else tuple(r[f] for f in kf)
            for r in self.truth(name)
            if include_deleted or r.get("deleted_at") is None
        ]

    def pending_count(self) -> int:
        """Mutations parked by a visibility delay and not yet visible."""
        return self._store.pending_count()

    # -- mutations -------------------------------------------------------------

    def rewrite(self, endpoint: str, fn: Callable[[dict], dict]) -> None:
        """Serve ``fn(row)`` instead of every row of ``endpoint`` from now on (``truth()``
        too), e.g. the shapes the vendor's docs leave open: a field under another name, reps
        who share a name, an outlier date. ``fn`` must keep the row's key fields."""
        self._store.rewrite(_normalize(endpoint), fn)

    def update(self, endpoint: str, n: int = 1, ids: Iterable[Any] | None = None) -> list[Key]:
        return self._store.update(
            _normalize(endpoint), n, ids, self._now_ms(), self._visibility_delay
        )

    def insert(self, endpoint: str, n: int = 1) -> list[Key]:
        return self._store.insert(_normalize(endpoint), n, self._now_ms(), self._visibility_delay)

    def soft_delete(self, endpoint: str, n: int = 1, ids: Iterable[Any] | None = None) -> list[Key]:
        return self._store.soft_delete(
            _normalize(endpoint), n, ids, self._now_ms(), self._visibility_delay
        )

    def set_attachments(self, lead_id: str, attachments: list[dict]) -> list[dict]:
        """Replace a lead's attachments (missing id/mimeType/size/uploadedAt/uploadedBy are
        filled in, download_url is always computed); bumps the lead's updated_at."""
        return self._store.set_attachments(
            lead_id, attachments, self._now_ms(), self._visibility_delay
        )

    def set_attachment_size(
        self, lead_id: str, file_id: str, size: int, touch: bool = True
    ) -> dict:
        """Change one file's size (served bytes follow). ``touch`` bumps the lead's updated_at."""
        return self._store.set_attachment_size(
            lead_id, file_id, size, self._now_ms(), self._visibility_delay, touch
        )

    def _attachment_meta(self, lead_id: str, file_id: str) -> dict:
        meta = self._store.attachment(lead_id, file_id)
        if meta is None:
            raise KeyError(f"no visible attachment {lead_id}/{file_id}")
        return meta

    def attachment_bytes(self, lead_id: str, file_id: str) -> bytes:
        """The exact bytes the server streams for this file (keep to small files)."""
        m = self._attachment_meta(lead_id, file_id)
        return attachment_bytes(lead_id, file_id, m["mimeType"], m["size"])

    def attachment_sha256(self, lead_id: str, file_id: str) -> str:
        m = self._attachment_meta(lead_id, file_id)
        return attachment_sha256(lead_id, file_id, m["mimeType"], m["size"])

    # -- faults ----------------------------------------------------------------

    def fail_next(
        self, n: int, status: int = 500, endpoint: str | None = None, code: str = "INTERNAL_ERROR"
    ) -> None:
        self._faults.add("fail", n, self._fault_endpoint(endpoint), (int(status), code))

    def drop_next(self, n: int, endpoint: str | None = None) -> None:
        self._faults.add("drop", n, self._fault_endpoint(endpoint))

    def malformed_next(self, n: int, kind: str = "json", endpoint: str | None = None) -> None:
        if kind not in MALFORMED_KINDS:
            raise ValueError(f"kind must be one of {MALFORMED_KINDS}")
        self._faults.add("malformed", n, self._fault_endpoint(endpoint), kind)

    def invalid_cursor_next(self, n: int) -> None:
        with self._faults._lock:
            self._faults.invalid_cursor += max(0, int(n))

    def slow(self, seconds: float) -> None:
        self._faults.slow = max(0.0, float(seconds))

    def throttle_attachments(self, bytes_per_second: float | None) -> None:
        """Stream attachment bodies at about this rate (None/0: full speed), e.g. to kill a
        client mid-download."""
        self._faults.attachment_bps = max(0.0, float(bytes_per_second or 0))

    @staticmethod
    def _fault_endpoint(endpoint: str | None) -> str | None:
        if endpoint is None or endpoint == "attachments":
            return endpoint
        return _normalize(endpoint)

    def set_clock_skew(self, seconds: float) -> None:
        self._skew = float(seconds)

    def set_visibility_delay(self, seconds: float) -> None:
        self._visibility_delay = max(0.0, float(seconds))

    def set_rate_limit(
        self,
        per_minute: int | None,
        burst: int | None = None,
        reset_style: str = "epoch",
        window: float = 60.0,
    ) -> None:
        """``per_minute`` requests per ``window`` seconds (tests use short windows)."""
        self._limiter.configure(per_minute, burst, reset_style, window)

    def set_subscription_expired(self, expired: bool = True) -> None:
        self._subscription_expired = bool(expired)

    def reset_faults(self) -> None:
        """Back to a healthy server: clears queued faults, slowness, clock skew, visibility
        delay (already parked rows still commit on time), rate limit and expiry."""
        self._faults.reset()
        self._skew = 0.0
        self._visibility_delay = 0.0
        self._subscription_expired = False
        self._limiter.configure(None)

    def on_request(self, callback: Callable[[SolarKnockSandbox, RequestInfo], Any] | None) -> None:
        """Call ``callback(sb, info)`` before serving each API request (``None`` removes all)."""
        if callback is None:
            self._callbacks.clear()
        else:
            self._callbacks.append(callback)

    # -- request log -----------------------------------------------------------

    def _log_request(
        self,
        method: str,
        path: str,
        endpoint: str | None,
        query: dict[str, str],
        auth_present: bool,
    ) -> RequestInfo:
        code = self._code
        if code in path:
            path = path.replace("sk_" + code, REDACTED).replace(code, REDACTED)
        clean = {k: (REDACTED if code in v or code in k else v) for k, v in query.items()}
        info = RequestInfo(
            mono=time.monotonic(),
            server_time=self.now(),
            method=method,
            path=path,
            endpoint=endpoint,
            query=clean,
            auth_present=auth_present,
        )
        return self._log.record(info)

    def max_requests_in_window(
        self, seconds: float = 60, endpoint: str | None = None, status: int | None = None
    ) -> int:
        """Most requests (optionally of one endpoint/status) that arrived within any sliding
        window of ``seconds`` (half-open, like the limiter's)."""
        times = sorted(r.mono for r in self._log.matching(endpoint=endpoint, status=status))
        best = i = 0
        for j, t in enumerate(times):
            while t - times[i] >= seconds:
                i += 1
            best = max(best, j - i + 1)
        return best

    def stats(self) -> dict[str, Any]:
        return {
            **super().stats(),
            "max_in_60s": self.max_requests_in_window(60),
            "pending_rows": self.pending_count(),
            "now": self.now().isoformat().replace("+00:00", "Z"),
            "rows": {name: len(self._store.tables[name].rows) for name in ENDPOINTS},
        }

    def admin_view(self, parts: list[str]) -> Any:
        """``GET /__admin/truth/<endpoint>``, ``/now``, and the shared views."""
        if len(parts) == 2 and parts[0] == "truth":
            return self.truth(parts[1])
        if parts == ["now"]:
            return {"now": self.now().isoformat().replace("+00:00", "Z")}
        return super().admin_view(parts)
