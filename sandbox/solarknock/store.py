"""In-memory store of the SolarKnock sandbox: one sorted table per endpoint, paging, late
visibility and mutations. Thread-safe: every public method takes the store's lock.

Each table keeps committed rows as orjson bytes (a page is a join of ready bytes, and 1M
knocks fit in memory), a dict key -> updated_at, the set of soft-deleted keys and a list of
``(updated_at, key)`` kept sorted with ``bisect``: a page costs O(log n + page) whatever the
table size. Keys are strings; compound keys (daily-stats, app-opens) are ``"user_id|date"``.

Late visibility: a mutation made while a visibility delay is set is parked with the monotonic
time at which it commits; until then the previous version (or nothing, for an insert) is what
is served and what ``truth()`` returns. Pending versions are promoted lazily on every access.
"""

from __future__ import annotations

import gc
import heapq
import random
import threading
import time
from bisect import bisect_left, bisect_right, insort
from collections.abc import Callable, Iterable
from operator import itemgetter
from typing import Any

import orjson

from sandbox.solarknock.data import (
    DAY_MS,
    KEY_FIELDS,
    Generator,
    iso_ms,
)
from sandbox.solarknock.pools import (
    APPOINTMENT_STATUSES,
    DISPOSITIONS,
    KNOCK_STATUSES,
    LEAD_STATUSES,
    MIME_TYPES,
)

_UA = itemgetter(0)


def _copy(b: bytes) -> bytes:
    """Exact-size copy of orjson's output: keeping orjson's over-allocated buffers alive costs
    ~4x more time (allocator churn) than this copy when a table holds 10^5..10^6 rows."""
    return bytes(memoryview(b))


Key = str | tuple[str, str]


class Table:
    """Committed (visible) rows of one endpoint, ordered by ``(updated_at, key)``."""

    __slots__ = ("name", "key_fields", "rows", "ua", "deleted", "index")

    def __init__(self, name: str) -> None:
        self.name = name
        self.key_fields = KEY_FIELDS[name]
        self.rows: dict[str, bytes] = {}
        self.ua: dict[str, str] = {}
        self.deleted: set[str] = set()
        self.index: list[tuple[str, str]] = []

    def key_of(self, row: dict) -> str:
        kf = self.key_fields
        if len(kf) == 1:
            return row[kf[0]]
        return "|".join(row[f] for f in kf)

    def load(self, rows: Iterable[dict]) -> None:
        dumps = orjson.dumps
        copy = _copy
        entries = []
        for row in rows:
            key = self.key_of(row)
            ua = row["updated_at"]
            if key in self.rows:
                raise ValueError(f"duplicate key {key!r} in {self.name}")
            self.rows[key] = copy(dumps(row))
            self.ua[key] = ua
            if row["deleted_at"] is not None:
                self.deleted.add(key)
            entries.append((ua, key))
        entries.sort()
        self.index = entries

    def commit(self, row: dict) -> None:
        key = self.key_of(row)
        ua = row["updated_at"]
        old = self.ua.get(key)
        if old is not None:
            i = bisect_left(self.index, (old, key))
            del self.index[i]
        insort(self.index, (ua, key))
        self.rows[key] = _copy(orjson.dumps(row))
        self.ua[key] = ua
        if row.get("deleted_at") is not None:
            self.deleted.add(key)
        else:
            self.deleted.discard(key)


class Store:
    def __init__(self, gen: Generator) -> None:
        self.gen = gen
        self.lock = threading.RLock()
        self.tables: dict[str, Table] = {}
        self._pending: list[tuple[float, int, str, str, dict]] = []
        self._pending_latest: dict[tuple[str, str], dict] = {}
        self._seq = 0
        self.rng = random.Random(f"solarknock:{gen.seed}:mutations")
        gc_was_enabled = gc.isenabled()
        gc.disable()  # millions of short-lived dicts: cyclic GC passes only cost time here
        try:
            for name, rows in gen.tables():
                t = Table(name)
                t.load(rows)
                self.tables[name] = t
        finally:
            if gc_was_enabled:
                gc.enable()

    # -- keys ------------------------------------------------------------------

    def internal_key(self, endpoint: str, key: Any) -> str:
        kf = KEY_FIELDS[endpoint]
        if isinstance(key, dict):
            return "|".join(str(key[f]) for f in kf)
        if isinstance(key, list | tuple):
            if len(key) != len(kf):
                raise ValueError(f"{endpoint} keys have {len(kf)} parts: {kf}")
            return "|".join(str(k) for k in key)
        return str(key)

    @staticmethod
    def public_key(endpoint: str, key: str) -> Key:
        if len(KEY_FIELDS[endpoint]) == 1:
            return key
        a, b = key.split("|", 1)
        return (a, b)

    # -- visibility ------------------------------------------------------------

    def promote(self) -> None:
        """Commit every parked version whose visibility time has come."""
        pending = self._pending
        if not pending:
            return
        now = time.monotonic()
        with self.lock:
            while pending and pending[0][0] <= now:
                _, _, endpoint, key, row = heapq.heappop(pending)
                self.tables[endpoint].commit(row)
                if self._pending_latest.get((endpoint, key)) is row:
                    del self._pending_latest[(endpoint, key)]

    def latest(self, endpoint: str, key: str) -> dict | None:
        """Newest version of a row, committed or parked (what a mutation builds on)."""
        with self.lock:
            self.promote()
            row = self._pending_latest.get((endpoint, key))
            if row is not None:
                return dict(row)
            b = self.tables[endpoint].rows.get(key)
            return None if b is None else orjson.loads(b)

    def exists(self, endpoint: str, key: str) -> bool:
        return key in self.tables[endpoint].rows or (endpoint, key) in self._pending_latest

    def write(self, endpoint: str, row: dict, delay: float = 0.0) -> None:
        with self.lock:
            self.promote()
            t = self.tables[endpoint]
            if delay <= 0:
                t.commit(row)
                return
            key = t.key_of(row)
            self._seq += 1
            heapq.heappush(self._pending, (time.monotonic() + delay, self._seq, endpoint, key, row))
            self._pending_latest[(endpoint, key)] = row

    def pending_count(self) -> int:
        with self.lock:
            self.promote()
            return len(self._pending)

    def rewrite(self, endpoint: str, fn: Callable[[dict], dict]) -> None:
        """Every committed row of ``endpoint`` replaced by ``fn(row)`` (keys kept)."""
        with self.lock:
            self.promote()
            t = self.tables[endpoint]
            rows = [fn(orjson.loads(t.rows[k])) for _, k in t.index]
            fresh = Table(endpoint)
            fresh.load(rows)
            self.tables[endpoint] = fresh

    # -- reads -----------------------------------------------------------------

    def truth(self, endpoint: str) -> list[dict]:
        with self.lock:
            self.promote()
            t = self.tables[endpoint]
            loads, rows = orjson.loads, t.rows
            gc_was_enabled = gc.isenabled()
            gc.disable()  # building 10^5+ dicts: cyclic GC passes would dominate
            try:
                return [loads(rows[k]) for _, k in t.index]
            finally:
                if gc_was_enabled:
                    gc.enable()

    def row_bytes(self, endpoint: str, key: str) -> bytes | None:
        with self.lock:
            self.promote()
            return self.tables[endpoint].rows.get(key)

    def page(
        self,
        endpoint: str,
        *,
        after: tuple[str, str] | None = None,
        since: str | None = None,
        until: str | None = None,
        limit: int = 500,
        include_deleted: bool = False,
        predicate: Callable[[dict], bool] | None = None,
    ) -> tuple[list[bytes], tuple[str, str] | None, bool]:
        """Rows with ``(updated_at, key) > after``, ``since < updated_at <= until``, ordered.

        Returns ``(row bytes, (updated_at, key) of the last row, has_more)``.
        """
        with self.lock:
            self.promote()
            t = self.tables[endpoint]
            idx = t.index
            lo = 0 if since is None else bisect_right(idx, since, key=_UA)
            if after is not None:
                lo = max(lo, bisect_right(idx, after))
            hi = len(idx) if until is None else bisect_right(idx, until, key=_UA)
            rows = t.rows
            if lo >= hi:
                return [], None, False
            if include_deleted and predicate is None:
                sel = idx[lo : min(hi, lo + limit)]
                has_more = lo + limit < hi
            else:
                sel = []
                deleted = t.deleted
                loads = orjson.loads
                has_more = False
                i = lo
                while i < hi:
                    ent = idx[i]
                    i += 1
                    k = ent[1]
                    if not include_deleted and k in deleted:
                        continue
                    if predicate is not None and not predicate(loads(rows[k])):
                        continue
                    if len(sel) == limit:
                        has_more = True
                        break
                    sel.append(ent)
            return [rows[k] for _, k in sel], (sel[-1] if sel else None), has_more

    # -- mutations -------------------------------------------------------------

    def _pick(self, endpoint: str, n: int, ids: Iterable[Any] | None) -> list[str]:
        t = self.tables[endpoint]
        if ids is not None:
            keys = [self.internal_key(endpoint, i) for i in ids]
            for k in keys:
                if not self.exists(endpoint, k):
                    raise KeyError(f"{endpoint}: no row with key {self.public_key(endpoint, k)!r}")
            return keys
        idx, deleted, rng = t.index, t.deleted, self.rng
        live = len(idx) - len(deleted)
        n = max(0, min(n, live))
        chosen: list[str] = []
        seen: set[str] = set()
        tries = 0
        while len(chosen) < n and tries < 20 * n + 100:
            tries += 1
            k = idx[rng.randrange(len(idx))][1]
            if k not in deleted and k not in seen:
                seen.add(k)
                chosen.append(k)
        if len(chosen) < n:  # dense deletions: fall back to a full scan
            rest = [k for _, k in idx if k not in deleted and k not in seen]
            chosen += rng.sample(rest, min(n - len(chosen), len(rest)))
        return chosen

    def _changed(self, endpoint: str, row: dict, now_iso: str) -> dict:
        rng, gen = self.rng, self.gen

        def other(values: tuple, current: Any) -> Any:
            return rng.choice([v for v in values if v != current])

        if endpoint == "knocks":
            row["status"] = other(KNOCK_STATUSES, row.get("status"))
            row["disposition"] = rng.choice(DISPOSITIONS)
            row["notes"] = gen._notes(rng)
            row["actions_taken"] = gen._actions(rng)
        elif endpoint == "leads":
            row["status"] = other(LEAD_STATUSES, row.get("status"))
            row["score"] = rng.randrange(101)
            row["notes"] = gen._notes(rng)
            row["interest_level"] = rng.choice(("hot", "warm", "cold"))
        elif endpoint == "appointments":
            row["status"] = other(APPOINTMENT_STATUSES, row.get("status"))
            slot = rng.randrange(16, 40)
            row["time"] = f"{slot // 2:02d}:{30 * (slot % 2):02d}"
        elif endpoint == "users":
            row["last_login_at"] = now_iso
            if row.get("is_closer"):
                row["available_to_close"] = not row.get("available_to_close")
        elif endpoint == "daily-stats":
            row["knock_count"] = int(row.get("knock_count") or 0) + 1
            row["knock_timestamps"] = [*row.get("knock_timestamps", []), now_iso]
            row["hours_worked"] = round(float(row.get("hours_worked") or 0) + 0.25, 2)
        elif endpoint == "app-opens":
            row["open_count"] = int(row.get("open_count") or 0) + 1
            row["last_opened_at"] = now_iso
        elif endpoint == "counties":
            row["knock_count"] = int(row.get("knock_count") or 0) + 1
            row["renter_data_available"] = not row.get("renter_data_available")
        elif endpoint == "org":
            row["member_count"] = int(row.get("member_count") or 0) + 1
        row["updated_at"] = now_iso
        return row

    def update(
        self, endpoint: str, n: int, ids: Iterable[Any] | None, now_ms: int, delay: float
    ) -> list[Key]:
        now_iso = iso_ms(now_ms)
        with self.lock:
            self.promote()
            keys = self._pick(endpoint, n, ids)
            for k in keys:
                self.write(
                    endpoint, self._changed(endpoint, self.latest(endpoint, k), now_iso), delay
                )
            return [self.public_key(endpoint, k) for k in keys]

    def soft_delete(
        self, endpoint: str, n: int, ids: Iterable[Any] | None, now_ms: int, delay: float
    ) -> list[Key]:
        if endpoint == "org":
            raise ValueError("the org cannot be deleted")
        now_iso = iso_ms(now_ms)
        with self.lock:
            self.promote()
            keys = self._pick(endpoint, n, ids)
            for k in keys:
                row = self.latest(endpoint, k)
                row["deleted_at"] = row["updated_at"] = now_iso
                self.write(endpoint, row, delay)
            return [self.public_key(endpoint, k) for k in keys]

    def insert(self, endpoint: str, n: int, now_ms: int, delay: float) -> list[Key]:
        if endpoint == "org":
            raise ValueError("there is exactly one org")
        out = []
        with self.lock:
            self.promote()
            for _ in range(n):
                row = self._new_row(endpoint, now_ms)
                row["deleted_at"] = None
                self.write(endpoint, row, delay)
                out.append(self.public_key(endpoint, self.tables[endpoint].key_of(row)))
        return out

    def _new_row(self, endpoint: str, now_ms: int) -> dict:
        rng, gen = self.rng, self.gen
        if endpoint == "users":
            uid = gen.new_id(rng)
            row = gen.user_row(rng, uid, now_ms, now_ms, len(gen.user_ids))
            gen.user_ids.append(uid)
            if row["is_closer"]:
                gen.closer_ids.append(uid)
            return row
        if endpoint == "knocks":
            return gen.knock_row(rng, gen.new_id(rng), now_ms, now_ms)
        if endpoint == "leads":
            return gen.lead_row(rng, gen.new_id(rng), now_ms, now_ms)
        if endpoint == "appointments":
            lead = rng.choice(gen.lead_ids) if gen.lead_ids else None
            knock = gen.lead_knock.get(lead) if lead else None
            return gen.appointment_row(rng, gen.new_id(rng), now_ms, now_ms, lead, knock)
        if endpoint in ("daily-stats", "app-opens"):
            build = gen.daily_stat_row if endpoint == "daily-stats" else gen.app_open_row
            day_start = now_ms - now_ms % DAY_MS
            users = list(gen.user_ids)
            for _ in range(3650):
                rng.shuffle(users)
                day = iso_ms(day_start)[:10]
                for uid in users:
                    if not self.exists(endpoint, f"{uid}|{day}"):
                        return build(rng, uid, day_start, now_ms, now_ms)
                day_start -= DAY_MS
            raise ValueError(f"no free (user, date) left for {endpoint}")
        if endpoint == "counties":
            while True:
                fips = f"{rng.randrange(1, 57):02d}{rng.randrange(1, 999):03d}"
                if not self.exists("counties", fips):
                    county = (fips, f"County {fips[2:]}", "ZZ", 35.0, -100.0)
                    gen.counties.append(county)
                    return gen.county_row(rng, county, now_ms, now_ms)
        raise ValueError(f"unknown endpoint {endpoint!r}")

    # -- attachments -----------------------------------------------------------

    def attachment(self, lead_id: str, file_id: str) -> dict | None:
        """Metadata of a visible lead's attachment (None if unknown)."""
        b = self.row_bytes("leads", lead_id)
        if b is None:
            return None
        for att in orjson.loads(b).get("attachments") or []:
            if att.get("id") == file_id:
                return att
        return None

    def set_attachments(
        self, lead_id: str, attachments: list[dict], now_ms: int, delay: float
    ) -> list[dict]:
        gen, rng = self.gen, self.rng
        with self.lock:
            row = self.latest("leads", lead_id)
            if row is None:
                raise KeyError(f"leads: no row with key {lead_id!r}")
            now_iso = iso_ms(now_ms)
            out = []
            for a in attachments:
                name = a.get("fileName", "file.bin")
                ext = name.rsplit(".", 1)[-1].lower() if "." in (name or "") else ""
                out.append(
                    gen.attachment_meta(
                        lead_id,
                        a.get("id") or gen.new_id(rng),
                        name,
                        a.get("mimeType") or MIME_TYPES.get(ext, "application/octet-stream"),
                        int(a.get("size", 1024)),
                        a.get("uploadedAt") or now_iso,
                        a.get("uploadedBy", row.get("user_id")),
                    )
                )
            row["attachments"] = out
            row["updated_at"] = now_iso
            self.write("leads", row, delay)
            return out

    def set_attachment_size(
        self, lead_id: str, file_id: str, size: int, now_ms: int, delay: float, touch: bool
    ) -> dict:
        with self.lock:
            row = self.latest("leads", lead_id)
            if row is None:
                raise KeyError(f"leads: no row with key {lead_id!r}")
            for att in row.get("attachments") or []:
                if att.get("id") == file_id:
                    att["size"] = int(size)
                    if touch:
                        row["updated_at"] = iso_ms(now_ms)
                    self.write("leads", row, delay if touch else 0.0)
                    return att
            raise KeyError(f"lead {lead_id!r} has no attachment {file_id!r}")

    def rebase_urls(self, new_base: str) -> None:
        """Point every download_url at ``new_base`` (the port is known only once bound)."""
        with self.lock:
            old = self.gen.url_base
            if old == new_base:
                return
            self.gen.url_base = new_base
            old_b = f'"{old}/attachments/'.encode()
            new_b = f'"{new_base}/attachments/'.encode()
            rows = self.tables["leads"].rows
            for k, b in rows.items():
                if old_b in b:
                    rows[k] = b.replace(old_b, new_b)
            for (endpoint, _), row in self._pending_latest.items():
                if endpoint == "leads":
                    for att in row.get("attachments") or []:
                        url = att.get("download_url") or ""
                        if url.startswith(old + "/"):
                            att["download_url"] = new_base + url[len(old) :]
            for item in self._pending:
                if item[2] == "leads" and item[4] is not self._pending_latest.get(
                    ("leads", item[3])
                ):
                    for att in item[4].get("attachments") or []:
                        url = att.get("download_url") or ""
                        if url.startswith(old + "/"):
                            att["download_url"] = new_base + url[len(old) :]
