"""Deterministic SolarKnock data: a seeded generator of every endpoint's rows (as plain dicts,
exactly as the API serves them) and the bytes of lead attachments.

Same seed, counts and anchor -> the same rows, byte for byte. Timestamps are ISO 8601 UTC with
milliseconds and ``Z``, spread over ~2 years before ``anchor_ms`` (default: today's UTC
midnight, so all generated rows are older than the server's "now"). Groups of rows share an
``updated_at`` on purpose (one "bulk import" group in knocks is larger than the max page) so
that clients must break ties by key. Text fields mix plain values with awkward ones: unicode,
emoji, quotes, newlines, commas, SQL-ish text, very long text, empty strings and nulls. Fields
whose shape the vendor leaves open come in several shapes within one page (a lead's
``savings_projection``: a number, an object, a numeric string; ``monthly_bill``: a number or
a numeric string).
"""

from __future__ import annotations

import hashlib
import random
import string
import zlib
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, date, datetime, timedelta
from typing import TypeVar

from sandbox.solarknock.pools import (
    APPOINTMENT_STATUSES,
    APPOINTMENT_TYPES,
    AWKWARD_NAMES,
    COUNTIES,
    DISPOSITIONS,
    DOMAINS,
    FILE_NAMES,
    FIRST_NAMES,
    HOSTILE_FILE_NAMES,
    KNOCK_STATUSES,
    LAST_NAMES,
    LEAD_STATUSES,
    LONG_NOTE,
    MIME_TYPES,
    NOTES,
    ROOF_TYPES,
    STREETS,
    USER_ROLES,
    USER_STATUSES,
)

T = TypeVar("T")

ENDPOINTS = (
    "org",
    "users",
    "knocks",
    "leads",
    "appointments",
    "daily-stats",
    "app-opens",
    "counties",
)
LIST_ENDPOINTS = ENDPOINTS[1:]
KEY_FIELDS: dict[str, tuple[str, ...]] = {
    "org": ("id",),
    "users": ("id",),
    "knocks": ("id",),
    "leads": ("id",),
    "appointments": ("id",),
    "daily-stats": ("user_id", "date"),
    "app-opens": ("user_id", "date"),
    "counties": ("county_fips",),
}
DEFAULT_COUNTS = {
    "users": 25,
    "knocks": 2000,
    "leads": 400,
    "appointments": 150,
    "daily-stats": 1000,
    "app-opens": 800,
    "counties": 30,
}
URL_PLACEHOLDER = "http://127.0.0.1:0/api/v1/reporting"

DAY_MS = 86_400_000
SPAN_MS = 730 * DAY_MS
_EPOCH_DATE = date(1970, 1, 1)
_day_cache: dict[int, str] = {}


# ---------------------------------------------------------------- time helpers


def iso_ms(ms: int) -> str:
    """Epoch milliseconds -> ``YYYY-MM-DDTHH:MM:SS.mmmZ`` (fast: the date part is cached)."""
    day, rem = divmod(ms, DAY_MS)
    d = _day_cache.get(day)
    if d is None:
        d = _day_cache[day] = (_EPOCH_DATE + timedelta(days=day)).isoformat()
    s, msr = divmod(rem, 1000)
    h, s = divmod(s, 3600)
    m, s = divmod(s, 60)
    return f"{d}T{h:02d}:{m:02d}:{s:02d}.{msr:03d}Z"


def ms_of(dt: datetime) -> int:
    """Aware datetime -> epoch milliseconds (floored)."""
    delta = dt - datetime(1970, 1, 1, tzinfo=UTC)
    return (delta.days * 86_400 + delta.seconds) * 1000 + delta.microseconds // 1000


def parse_iso(value: str) -> datetime:
    """Parse ISO 8601 (``Z`` or offset, with or without fractions; naive = UTC) -> aware UTC.

    Raises ValueError on anything else (e.g. a ``+`` offset that became a space because the
    client did not URL-encode it).
    """
    v = value.strip()
    if not v or v != value or len(v) < 10:
        raise ValueError(f"not an ISO 8601 timestamp: {value!r}")
    dt = datetime.fromisoformat(v)
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return dt.astimezone(UTC)


#: generated data ends at least this long before the real clock, so a server whose clock runs
#: behind (tests skew it by up to 10 minutes) never serves rows stamped in its own future
ANCHOR_MARGIN = timedelta(hours=1)


def default_anchor_ms() -> int:
    """The last UTC midnight at least :data:`ANCHOR_MARGIN` ago: generated data ends before it."""
    now = datetime.now(UTC) - ANCHOR_MARGIN
    return ms_of(datetime(now.year, now.month, now.day, tzinfo=UTC))


# ---------------------------------------------------------------- attachment bytes

_MAGIC = {
    "application/pdf": b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n",
    "image/png": b"\x89PNG\r\n\x1a\n",
    "image/jpeg": b"\xff\xd8\xff\xe0\x00\x10JFIF\x00",
    "image/heic": b"\x00\x00\x00\x18ftypheic",
}


def attachment_chunks(
    lead_id: str, file_id: str, mime_type: str, size: int, chunk_size: int = 1 << 16
) -> Iterator[bytes]:
    """The file's bytes, generated on the fly: a magic header for the mime type, then 64 KiB
    blocks of seeded random bytes, each block starting with its big-endian block number (so a
    client that reorders or repeats chunks is caught). Never holds more than one block."""
    base = random.Random(f"attachment:{lead_id}/{file_id}").randbytes(chunk_size)
    tail = base[8:]
    remaining = max(0, int(size))
    head = _MAGIC.get(mime_type, b"")[:remaining]
    if head:
        yield head
        remaining -= len(head)
    j = 0
    while remaining > 0:
        block = j.to_bytes(8, "big") + tail
        piece = block if remaining >= len(block) else block[:remaining]
        yield piece
        remaining -= len(piece)
        j += 1


def attachment_bytes(lead_id: str, file_id: str, mime_type: str, size: int) -> bytes:
    return b"".join(attachment_chunks(lead_id, file_id, mime_type, size))


def attachment_sha256(lead_id: str, file_id: str, mime_type: str, size: int) -> str:
    h = hashlib.sha256()
    for chunk in attachment_chunks(lead_id, file_id, mime_type, size):
        h.update(chunk)
    return h.hexdigest()


def _below(rng: random.Random, n: int) -> int:
    """Uniform int in [0, n): ~10x faster than randrange, and just as deterministic."""
    return int(rng.random() * n)


def _between(rng: random.Random, a: int, b: int) -> int:
    return a + int(rng.random() * (b - a))


def _pick(rng: random.Random, seq: Sequence[T]) -> T:
    return seq[int(rng.random() * len(seq))]


def uuid_like(rng: random.Random) -> str:
    h = f"{rng.getrandbits(128):032x}"
    return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-{h[16:20]}-{h[20:]}"


def _token(
    rng: random.Random, n: int, alphabet: str = string.ascii_uppercase + string.digits
) -> str:
    return "".join(rng.choices(alphabet, k=n))


# ---------------------------------------------------------------- open shapes
# The vendor documents "monthly bill" and "savings projection" without their shapes: some
# leads send them the awkward way (the form is chosen by the lead's id, so the seeded values
# themselves stay as they were).


def _form(lead_id: str) -> int:
    return zlib.crc32(lead_id.encode()) % 12


def _bill_form(lead_id: str, bill: float | None) -> float | str | None:
    """A number, or for one lead in twelve a numeric string (``"123.45"``)."""
    return f"{bill:.2f}" if bill is not None and _form(lead_id) == 0 else bill


def _projection_form(lead_id: str, projection: float | None) -> float | str | dict | None:
    """A number; for a third of the leads an object of undocumented fields; for one in twelve
    a numeric string."""
    if projection is None:
        return None
    form = _form(lead_id)
    if form in (1, 4, 7, 10):
        return {
            "annual": round(projection / 25, 2),
            "lifetime": projection,
            "years": 25,
            "currency": "USD",
        }
    if form == 2:
        return f"{projection:.2f}"
    return projection


# ---------------------------------------------------------------- generator


class Generator:
    """Builds every endpoint's rows from ``seed``; also builds single rows for ``insert``.

    ``tables()`` yields ``(endpoint, iterator of row dicts)`` in dependency order; consume each
    iterator before asking for the next table (counties count the knocks generated before).
    """

    def __init__(
        self, seed: int, counts: dict[str, int], anchor_ms: int, url_base: str = URL_PLACEHOLDER
    ) -> None:
        self.seed = seed
        self.counts = counts
        self.anchor_ms = anchor_ms
        self.url_base = url_base
        r = self.rng("org")
        self.org_id = uuid_like(r)
        self.user_ids: list[str] = []
        self.closer_ids: list[str] = []
        self.counties: list[tuple[str, str, str, float, float]] = list(
            COUNTIES[: counts["counties"]]
        )
        self._county_knocks: dict[str, int] = {}
        self.lead_ids: list[str] = []
        self.knock_ids: list[str] = []
        self._ids_seen: set[str] = set()
        r = self.rng("extra-counties")
        used = {c[0] for c in self.counties}
        while len(self.counties) < counts["counties"]:
            fips = f"{_between(r, 1, 57):02d}{r.randrange(1, 840, 2):03d}"
            if fips not in used:
                used.add(fips)
                self.counties.append(
                    (fips, f"County {fips[2:]}", "ZZ", r.uniform(26, 47), r.uniform(-122, -71))
                )

    def rng(self, name: str) -> random.Random:
        return random.Random(f"solarknock:{self.seed}:{name}")

    def new_id(self, rng: random.Random) -> str:
        while True:
            i = uuid_like(rng)
            if i not in self._ids_seen:
                self._ids_seen.add(i)
                return i

    # -- helpers -------------------------------------------------------------

    def _times(self, rng: random.Random, batches: list[int]) -> tuple[int, int]:
        anchor = self.anchor_ms
        created = anchor - 1 - _below(rng, SPAN_MS)
        r = rng.random()
        if r < 0.45:
            return created, created
        if r < 0.9:
            return created, created + _below(rng, anchor - created)
        updated = _pick(rng, batches)
        if created > updated:
            created = updated - _below(rng, 30 * DAY_MS)
        return created, updated

    def _batches(self, rng: random.Random, n: int) -> list[int]:
        return [self.anchor_ms - 1 - _below(rng, SPAN_MS) for _ in range(max(3, n // 150))]

    @staticmethod
    def _person(rng: random.Random) -> str | None:
        if rng.random() < 0.06:
            return _pick(rng, AWKWARD_NAMES)
        return f"{_pick(rng, FIRST_NAMES)} {_pick(rng, LAST_NAMES)}"

    @staticmethod
    def _notes(rng: random.Random) -> str | None:
        r = rng.random()
        if r < 0.25:
            return None
        if r < 0.252:
            return LONG_NOTE
        return _pick(rng, NOTES)

    def _address(self, rng: random.Random, county: tuple) -> str | None:
        r = rng.random()
        if r < 0.01:
            return None
        if r < 0.02:
            return ""
        unit = f", Apt #{_between(rng, 1, 40)}{'AB'[_below(rng, 2)]}" if r < 0.1 else ""
        street = _pick(rng, STREETS)
        city = county[1].replace(" County", "")
        return f"{_between(rng, 1, 99999)} {street}{unit}, {city}, {county[2]} {_between(rng, 10000, 99999)}"

    def _email(self, rng: random.Random, name: str | None) -> str | None:
        r = rng.random()
        if r < 0.03:
            return None
        if r < 0.05:
            return ""
        if r < 0.07:
            return "zoë.müller@exämple.com"
        base = "".join(c for c in (name or "owner").lower() if c.isascii() and c.isalnum())
        local = (base or "owner")[:20] + str(_below(rng, 1000))
        if r < 0.12:
            local = local.upper()
        return f"{local}@{_pick(rng, DOMAINS)}"

    @staticmethod
    def _phone(rng: random.Random) -> str | None:
        a, b, c = _between(rng, 200, 999), _between(rng, 200, 999), _below(rng, 10000)
        k = _below(rng, 8)
        if k == 0:
            return None
        if k == 1:
            return ""
        return (
            f"({a}) {b}-{c:04d}",
            f"+1 {a} {b} {c:04d}",
            f"{a}.{b}.{c:04d}",
            f"{a}{b}{c:04d}",
            f"{a}-{b}-{c:04d} ext. 12",
            f"+1-{a}-{b}-{c:04d}",
        )[k - 2]

    @staticmethod
    def _actions(rng: random.Random, lead: bool = False) -> list[str]:
        r = rng.random()
        if r < 0.55:
            return []
        if r < 0.75:
            return ["price_estimate"]
        if r < 0.82:
            return ["proposal_given"]
        if lead and r < 0.9:
            return ["price_estimate", "qualified"]
        return ["price_estimate", "proposal_given"]

    def _deleted(self, rng: random.Random, updated_iso: str) -> str | None:
        return updated_iso if rng.random() < 0.015 else None

    # -- rows ------------------------------------------------------------------

    def org_row(self) -> dict:
        r = self.rng("org-row")
        created = self.anchor_ms - SPAN_MS - 5 * DAY_MS
        updated = self.anchor_ms - 1 - _below(r, 30 * DAY_MS)
        return {
            "id": self.org_id,
            "name": "Bright Horizon Solar — Door Crew",
            "tier": "pro",
            "subscription_status": "active",
            "member_count": self.counts["users"],
            # They look like keys (and in the real API they are): secrets. They are NOT the
            # sandbox's own api_key, which no response ever echoes.
            "invite_codes": [f"BH{role}{_between(r, 10, 99)}" for role in ("MGR", "REP", "CLS")]
            + [f"sk_{_token(r, 10)}"],
            "created_at": iso_ms(created),
            "updated_at": iso_ms(updated),
            "deleted_at": None,
        }

    def user_row(self, rng: random.Random, uid: str, created: int, updated: int, i: int) -> dict:
        role = "owner" if i == 0 else _pick(rng, USER_ROLES[1:])
        is_closer = role in ("owner", "manager", "closer") or rng.random() < 0.1
        name = self._person(rng)
        upd = iso_ms(updated)
        hi = max(self.anchor_ms, updated + 1)
        last_login = None if rng.random() < 0.1 else iso_ms(_between(rng, updated, hi))
        return {
            "id": uid,
            "name": name,
            "email": self._email(rng, name),
            "role": role,
            "is_closer": is_closer,
            "available_to_close": is_closer and rng.random() < 0.8,
            "profile_picture_url": None
            if rng.random() < 0.3
            else f"https://cdn.solarknock.example/avatars/{uid}.jpg",
            "badge_photo_url": None
            if rng.random() < 0.5
            else f"https://cdn.solarknock.example/badges/{uid}.png?v={_below(rng, 9)}",
            "created_at": iso_ms(created),
            "last_login_at": last_login,
            "status": "active" if rng.random() < 0.8 else USER_STATUSES[1 + _below(rng, 2)],
            "joined_at": iso_ms(created + _below(rng, 3 * DAY_MS)),
            "default_org_id": self.org_id,
            "updated_at": upd,
            "deleted_at": None if i == 0 else self._deleted(rng, upd),
        }

    def users(self) -> Iterator[dict]:
        rng = self.rng("users")
        batches = self._batches(rng, self.counts["users"])
        for i in range(self.counts["users"]):
            uid = self.new_id(rng)
            self.user_ids.append(uid)
            created, updated = self._times(rng, batches)
            row = self.user_row(rng, uid, created, updated, i)
            if row["is_closer"]:
                self.closer_ids.append(uid)
            yield row
        if not self.closer_ids and self.user_ids:
            self.closer_ids.append(self.user_ids[0])

    def knock_row(
        self,
        rng: random.Random,
        kid: str,
        created: int,
        updated: int,
        lead_id: str | None = None,
        appointment_id: str | None = None,
    ) -> dict:
        county = _pick(rng, self.counties)
        cre = iso_ms(created)
        upd = cre if updated == created else iso_ms(updated)
        knock_date = cre[:10]
        follow = None
        if rng.random() < 0.3:
            follow = (
                date.fromisoformat(knock_date) + timedelta(days=_between(rng, 1, 22))
            ).isoformat()
        status = "appointment_set" if appointment_id else ("lead" if lead_id else None)
        if status is None:
            status = _pick(rng, KNOCK_STATUSES)
        return {
            "id": kid,
            "user_id": _pick(rng, self.user_ids),
            "lead_id": lead_id,
            "appointment_id": appointment_id,
            "homeowner_name": self._person(rng),
            "address": self._address(rng, county),
            "lat": round(county[3] + rng.uniform(-0.3, 0.3), 6),
            "lng": round(county[4] + rng.uniform(-0.3, 0.3), 6),
            "status": status,
            "disposition": None if rng.random() < 0.2 else _pick(rng, DISPOSITIONS),
            "notes": self._notes(rng),
            "follow_up_date": follow,
            "county_fips": county[0],
            "knock_date": knock_date,
            "actions_taken": self._actions(rng),
            "created_at": cre,
            "updated_at": upd,
            "deleted_at": self._deleted(rng, upd),
        }

    def plan_links(self) -> None:
        """Ids of leads/knocks/appointments and which knock each lead/appointment came from."""
        rng = self.rng("links")
        n_k, n_l, n_a = self.counts["knocks"], self.counts["leads"], self.counts["appointments"]
        self.lead_ids = [self.new_id(rng) for _ in range(n_l)]
        self.knock_ids = [self.new_id(rng) for _ in range(n_k)]
        self.appt_ids = [self.new_id(rng) for _ in range(n_a)]
        self.lead_knock: dict[str, str] = {}
        if n_k:
            positions = rng.sample(range(n_k), min(n_k, n_l))
            for lead_id, pos in zip(self.lead_ids, positions, strict=False):
                self.lead_knock[lead_id] = self.knock_ids[pos]
        self.appt_lead: dict[str, str | None] = {}
        leads_for_appts = rng.sample(self.lead_ids, min(n_a, n_l)) if n_l else []
        for i, aid in enumerate(self.appt_ids):
            self.appt_lead[aid] = leads_for_appts[i] if i < len(leads_for_appts) else None
        self.knock_lead = {k: lead for lead, k in self.lead_knock.items()}
        self.knock_appt = {}
        for aid, lead in self.appt_lead.items():
            if lead is not None and lead in self.lead_knock:
                self.knock_appt[self.lead_knock[lead]] = aid

    def knocks(self) -> Iterator[dict]:
        rng = self.rng("knocks")
        n = self.counts["knocks"]
        batches = self._batches(rng, n)
        # One bulk import: rows sharing created_at AND updated_at, more than a max page.
        bulk = min(1500, n // 10) if n >= 20 else 0
        bulk_ms = self.anchor_ms - 1 - _below(rng, SPAN_MS)
        counts = self._county_knocks
        for i, kid in enumerate(self.knock_ids):
            if i < bulk:
                created = updated = bulk_ms
            else:
                created, updated = self._times(rng, batches)
            row = self.knock_row(
                rng, kid, created, updated, self.knock_lead.get(kid), self.knock_appt.get(kid)
            )
            counts[row["county_fips"]] = counts.get(row["county_fips"], 0) + 1
            yield row

    def attachment(self, rng: random.Random, lead_id: str, created: int, updated: int) -> dict:
        if rng.random() < 0.08:
            name = _pick(rng, HOSTILE_FILE_NAMES)
        else:
            name = _pick(rng, FILE_NAMES)
        ext = name.rsplit(".", 1)[-1].lower() if "." in name else ""
        mime = MIME_TYPES.get(ext, "application/octet-stream")
        if rng.random() < 0.03:
            mime = "image/jpeg" if mime == "application/pdf" else "application/pdf"  # lies
        r = rng.random()
        if r < 0.01:
            size = 0
        elif r < 0.02:
            size = _between(rng, 1 << 20, 2 << 20)
        else:
            size = int(2.718281828 ** rng.uniform(6.5, 11.5))  # ~700 B .. ~100 KB
        fid = self.new_id(rng)
        return self.attachment_meta(
            lead_id,
            fid,
            name,
            mime,
            size,
            iso_ms(_between(rng, created, updated + 1)),
            _pick(rng, self.user_ids),
        )

    def attachment_meta(
        self,
        lead_id: str,
        fid: str,
        name: str,
        mime: str,
        size: int,
        uploaded_at: str,
        by: str | None,
    ) -> dict:
        return {
            "id": fid,
            "fileName": name,
            "mimeType": mime,
            "size": size,
            "uploadedAt": uploaded_at,
            "uploadedBy": by,
            "download_url": f"{self.url_base}/attachments/{lead_id}/{fid}",
        }

    def lead_row(self, rng: random.Random, lid: str, created: int, updated: int) -> dict:
        county = _pick(rng, self.counties)
        r = rng.random()
        if r < 0.03:
            bill = None
        elif r < 0.05:
            bill = 0
        elif r < 0.07:
            bill = _between(rng, 50, 600)
        else:
            bill = round(rng.uniform(40, 650), 2)
        size_kw = None if bill is None else round(max(bill, 60) / 22 + rng.uniform(-1, 1), 1)
        r = rng.random()
        n_att = 0 if r < 0.45 else 1 if r < 0.7 else 2 if r < 0.88 else 3
        name = self._person(rng)
        upd = iso_ms(updated)
        return {
            "id": lid,
            "user_id": _pick(rng, self.user_ids),
            "name": name,
            "email": self._email(rng, name),
            "phone": self._phone(rng),
            "address": self._address(rng, county),
            "monthly_bill": _bill_form(lid, bill),
            "roof_type": None if rng.random() < 0.1 else _pick(rng, ROOF_TYPES),
            "interest_level": ("hot", "warm", "cold", None)[_below(rng, 4)],
            "status": _pick(rng, LEAD_STATUSES),
            "score": None if rng.random() < 0.02 else _below(rng, 101),
            "notes": self._notes(rng),
            "system_size_kw": size_kw,
            "savings_projection": _projection_form(
                lid, None if bill is None else round(bill * 12 * 25 * rng.uniform(0.5, 0.9), 2)
            ),
            "actions_taken": self._actions(rng, lead=True),
            "attachments": [self.attachment(rng, lid, created, updated) for _ in range(n_att)],
            "created_at": iso_ms(created),
            "updated_at": upd,
            "deleted_at": self._deleted(rng, upd),
        }

    def leads(self) -> Iterator[dict]:
        rng = self.rng("leads")
        batches = self._batches(rng, self.counts["leads"])
        for lid in self.lead_ids:
            created, updated = self._times(rng, batches)
            yield self.lead_row(rng, lid, created, updated)

    def appointment_row(
        self,
        rng: random.Random,
        aid: str,
        created: int,
        updated: int,
        lead_id: str | None,
        knock_id: str | None,
    ) -> dict:
        cre = iso_ms(created)
        upd = iso_ms(updated)
        day = (date.fromisoformat(cre[:10]) + timedelta(days=_below(rng, 15))).isoformat()
        slot = _between(rng, 16, 40)
        gid = string.ascii_lowercase[:22] + string.digits
        return {
            "id": aid,
            "lead_id": lead_id,
            "knock_id": knock_id,
            "setter_id": _pick(rng, self.user_ids),
            "closer_id": _pick(rng, self.closer_ids),
            "date": day,
            "time": f"{slot // 2:02d}:{30 * (slot % 2):02d}",
            "type": _pick(rng, APPOINTMENT_TYPES),
            "status": _pick(rng, APPOINTMENT_STATUSES),
            "google_event_id_closer": None if rng.random() < 0.2 else _token(rng, 26, gid),
            "google_event_id_setter": None if rng.random() < 0.4 else _token(rng, 26, gid),
            "notes": self._notes(rng),
            "created_at": cre,
            "updated_at": upd,
            "deleted_at": self._deleted(rng, upd),
        }

    def appointments(self) -> Iterator[dict]:
        rng = self.rng("appointments")
        batches = self._batches(rng, self.counts["appointments"])
        for aid in self.appt_ids:
            created, updated = self._times(rng, batches)
            lead = self.appt_lead.get(aid)
            yield self.appointment_row(
                rng, aid, created, updated, lead, self.lead_knock.get(lead) if lead else None
            )

    def _day_pairs(self, rng: random.Random, n: int) -> list[tuple[str, int]]:
        users = self.user_ids
        if not users or n <= 0:
            return []
        days = max(1, -(-n * 5 // (4 * len(users))))
        picks = rng.sample(range(len(users) * days), min(n, len(users) * days))
        return [(users[p % len(users)], 1 + p // len(users)) for p in picks]

    def _day_times(self, rng: random.Random, day_start: int) -> tuple[int, int]:
        created = day_start + DAY_MS - 1 - _below(rng, 3_600_000)  # nightly roll-up
        r = rng.random()
        if r < 0.7:
            return created, created
        return created, min(self.anchor_ms - 1, created + _below(rng, 20 * DAY_MS))

    def daily_stat_row(
        self, rng: random.Random, user_id: str, day_start: int, created: int, updated: int
    ) -> dict:
        count = _below(rng, 45)
        start = day_start + 15 * 3_600_000 + _below(rng, 3 * 3_600_000)
        stamps = sorted(start + _below(rng, 6 * 3_600_000) for _ in range(count))
        upd = iso_ms(updated)
        return {
            "user_id": user_id,
            "date": iso_ms(day_start)[:10],
            "knock_count": count,
            "leads": _below(rng, count // 6 + 1),
            "appointments_set": _below(rng, 3),
            "deals_closed": 1 if rng.random() < 0.05 else 0,
            "hours_worked": round(rng.uniform(0, 9), 2) if count else 0,
            "knock_timestamps": [iso_ms(s) for s in stamps],
            "created_at": iso_ms(created),
            "updated_at": upd,
            "deleted_at": self._deleted(rng, upd),
        }

    def _per_user_day(self, endpoint: str, make_row: Callable[..., dict]) -> Iterator[dict]:
        """Rows keyed by (user_id, date): daily-stats and app-opens."""
        rng = self.rng(endpoint)
        for uid, back in self._day_pairs(rng, self.counts[endpoint]):
            day_start = self.anchor_ms - back * DAY_MS
            created, updated = self._day_times(rng, day_start)
            yield make_row(rng, uid, day_start, created, updated)

    def daily_stats(self) -> Iterator[dict]:
        return self._per_user_day("daily-stats", self.daily_stat_row)

    def app_open_row(
        self, rng: random.Random, user_id: str, day_start: int, created: int, updated: int
    ) -> dict:
        first = day_start + 12 * 3_600_000 + _below(rng, 8 * 3_600_000)
        last = first + _below(rng, 4 * 3_600_000)
        upd = iso_ms(updated)
        return {
            "user_id": user_id,
            "date": iso_ms(day_start)[:10],
            "open_count": _between(rng, 1, 30),
            "first_opened_at": iso_ms(first),
            "last_opened_at": iso_ms(last),
            "platform": ("ios", "android", "web")[_below(rng, 3)],
            "app_version": f"3.{_between(rng, 8, 15)}.{_below(rng, 10)}",
            "created_at": iso_ms(created),
            "updated_at": upd,
            "deleted_at": self._deleted(rng, upd),
        }

    def app_opens(self) -> Iterator[dict]:
        return self._per_user_day("app-opens", self.app_open_row)

    def county_row(self, rng: random.Random, county: tuple, created: int, updated: int) -> dict:
        upd = iso_ms(updated)
        return {
            "county_fips": county[0],
            "name": county[1],
            "state": county[2],
            "renter_data_available": rng.random() < 0.6,
            "knock_count": self._county_knocks.get(county[0], 0),
            "created_at": iso_ms(created),
            "updated_at": upd,
            "deleted_at": None,
        }

    def county_rows(self) -> Iterator[dict]:
        rng = self.rng("counties")
        batches = self._batches(rng, len(self.counties))
        for county in self.counties:
            created, updated = self._times(rng, batches)
            yield self.county_row(rng, county, created, updated)

    def tables(self) -> Iterator[tuple[str, Iterator[dict]]]:
        yield "org", iter([self.org_row()])
        yield "users", self.users()
        self.plan_links()
        yield "leads", self.leads()
        yield "knocks", self.knocks()
        yield "appointments", self.appointments()
        yield "daily-stats", self.daily_stats()
        yield "app-opens", self.app_opens()
        yield "counties", self.county_rows()
