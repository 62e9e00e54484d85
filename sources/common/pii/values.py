"""What the actions do to one value: normalize, hash (keyed), mask, round, and the parts of a
US street address. Pure functions: no dlt, no configuration.

Hashing is HMAC-SHA256 over the value *normalized for its kind*, so the same homeowner hashes
the same in every row, run and source however each system spelled it:

* ``email``: Unicode NFKC, case folded, spaces and a ``mailto:`` removed;
* ``phone``: E.164 (``+15551234567``) from any formatting (``(555) 123-4567``,
  ``+1 555 123 4567``, ``555.123.4567``, ``1-555-123-4567``), an extension dropped (it does not
  identify a household), the country code from ``phone_country_code`` when none is written;
* ``name``, ``address`` and other text: NFKC, accents removed, case folded, punctuation turned
  into spaces, runs of spaces collapsed.

An empty string stays empty and ``None`` stays ``None`` under every action (nothing to protect,
and NULL keeps meaning "not given").
"""

from __future__ import annotations

import hashlib
import hmac
import math
import re
import unicodedata
from typing import Any

#: what a masked part is replaced with
MASK = "***"

_SPACES = re.compile(r"\s+")
_PUNCT = re.compile(r"[^\w\s@+]+", re.UNICODE)
_EXTENSION = re.compile(r"\s*(?:ext\.?|extension|x|#)\s*\d{1,6}\s*$", re.I)
_NON_DIGITS = re.compile(r"\D+")
EMAIL_RE = re.compile(r"^[^@\s<>()\[\],;:\"]+@[^@\s<>()\[\],;:\"]+\.[^@\s<>()\[\],;:\"]{2,}$")
#: a phone number as people write it: 10 to 15 digits with the usual separators, and at least
#: one separator or a leading + (a bare run of digits is more often an id or a timestamp)
_PHONE_CHARS = re.compile(r"^\+?[\d\s().\-/]{9,24}(?:\s*(?:ext\.?|x|#)\s*\d{1,6})?$", re.I)
_DOTTED_QUAD = re.compile(r"^\d{1,3}(?:\.\d{1,3}){3}$")
_ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}")
_EMAIL_IN_TEXT = re.compile(r"[^\s@<>()\[\],;:\"']+@[^\s@<>()\[\],;:\"']+\.[A-Za-z]{2,}")
_PHONE_IN_TEXT = re.compile(r"(?<!\w)\+?\(?\d[\d().\-\s]{5,}\d(?!\w)")
_DIGITS_IN_TEXT = re.compile(r"\d{3,}")
_US_TAIL = re.compile(r"^(?P<state>[A-Za-z]{2})\.?\s+(?P<zip>\d{5}(?:-\d{4})?)$")
_ZIP = re.compile(r"^\d{5}(?:-\d{4})?$")
_POINT = re.compile(r"^\s*\(?\s*(-?\d{1,3}(?:\.\d+)?)\s*[,;\s]\s*(-?\d{1,3}(?:\.\d+)?)\s*\)?\s*$")


# --------------------------------------------------------------------------- normalizing
def _fold(text: str) -> str:
    """NFKC, accents off, case folded."""
    if text.isascii():  # nothing to decompose (most values): the same result, faster
        return text.lower()
    decomposed = unicodedata.normalize("NFKD", text)
    plain = "".join(c for c in decomposed if not unicodedata.combining(c))
    return unicodedata.normalize("NFKC", plain).casefold()


def normalize_text(value: str) -> str:
    """Names, addresses, notes: accents and case folded, punctuation as spaces, one space."""
    return _SPACES.sub(" ", _PUNCT.sub(" ", _fold(value))).strip()


def normalize_email(value: str) -> str:
    text = unicodedata.normalize("NFKC", value).casefold().strip()
    if text.startswith("mailto:"):
        text = text[7:]
    return _SPACES.sub("", text)


def normalize_phone(value: str, country_code: str = "1") -> str:
    """E.164 when the value has enough digits for a phone number, else its text form."""
    text = _EXTENSION.sub("", unicodedata.normalize("NFKC", str(value)).strip())
    digits = _NON_DIGITS.sub("", text)
    if len(digits) < 7:
        return normalize_text(str(value))
    if text.startswith("+"):
        return "+" + digits
    if text.startswith("00"):
        return "+" + digits[2:]
    code = country_code.strip().lstrip("+") or "1"
    if code == "1":  # NANP: ten digits, or eleven with the leading 1
        if len(digits) == 11 and digits.startswith("1"):
            return "+" + digits
        return "+1" + digits
    return "+" + code + digits.lstrip("0")  # a national number: its trunk 0 is not dialled


def normalize(kind: str, value: Any, country_code: str = "1") -> str:
    text = value if isinstance(value, str) else str(value)
    if kind == "email":
        return normalize_email(text)
    if kind == "phone":
        return normalize_phone(text, country_code)
    return normalize_text(text)


# --------------------------------------------------------------------------- detecting
def looks_like_email(value: str) -> bool:
    return "@" in value and len(value) <= 254 and EMAIL_RE.match(value.strip()) is not None


def looks_like_phone(value: str) -> bool:
    """A formatted phone number (``(555) 123-4567``, ``+1 555 123 4567``), not a date, an IP
    address, a version or a bare number."""
    text = value.strip()
    if not 9 <= len(text) <= 32 or not (text[0] in "+(" or text[0].isdigit()):
        return False
    if _PHONE_CHARS.match(text) is None or _DOTTED_QUAD.match(text) or _ISO_DATE.match(text):
        return False
    core = _EXTENSION.sub("", text)
    digits = _NON_DIGITS.sub("", core)
    if not 10 <= len(digits) <= 15:
        return False
    return core.startswith("+") or any(c in core for c in " ()-./")


# --------------------------------------------------------------------------- hashing
class Hasher:
    """HMAC-SHA256 with the configured key, as 64 hex characters; repeated values are looked
    up (a homeowner appears in many rows), the cache bounded."""

    CACHE_SIZE = 200_000

    def __init__(self, key: str) -> None:
        self._base = hmac.new(key.encode("utf-8"), digestmod=hashlib.sha256)
        self._cache: dict[str, str] = {}
        probe = self._base.copy()
        probe.update(b"\x00solarsync pii key id")
        #: names the key in the policy stamp without revealing it
        self.key_id = probe.hexdigest()[:16]

    def __call__(self, normalized: str) -> str:
        found = self._cache.get(normalized)
        if found is None:
            mac = self._base.copy()
            mac.update(normalized.encode("utf-8"))
            found = mac.hexdigest()
            if len(self._cache) >= self.CACHE_SIZE:
                self._cache.clear()
            self._cache[normalized] = found
        return found


def is_hash(value: Any) -> bool:
    """Whether ``value`` looks like what :class:`Hasher` writes (64 lower-case hex digits)."""
    return (
        isinstance(value, str) and len(value) == 64 and all(c in "0123456789abcdef" for c in value)
    )


# --------------------------------------------------------------------------- masking
def mask(kind: str, value: Any, country_code: str = "1", keep: frozenset[str] = frozenset()) -> Any:
    """A partial form that no longer identifies the person: an email's first letter and domain
    (``j***@example.com``), a phone's last four digits (``*******4567``), a name's initials
    (``J. S.``), an address's kept parts (``***, Springfield, IL 62704``), free text with
    every email, phone number and run of three or more digits replaced, a file name's
    extension (``***.pdf``); anything else ``***``."""
    text = value if isinstance(value, str) else str(value)
    if not text.strip():
        return value
    if kind == "email":
        local, at, domain = text.strip().partition("@")
        return f"{local[:1]}{MASK}@{domain}" if at else MASK
    if kind == "phone":
        digits = _NON_DIGITS.sub("", normalize_phone(text, country_code))
        return "*" * (len(digits) - 4) + digits[-4:] if len(digits) >= 7 else MASK
    if kind == "name":
        initials = [w[0].upper() + "." for w in _SPACES.split(normalize_text(text)) if w]
        return " ".join(initials) or MASK
    if kind == "address":
        parts = address_parts(text)
        kept = [parts[p] for p in ("city", "state", "zip") if p in keep and parts.get(p)]
        if "state" in keep and "zip" in keep and parts.get("state") and parts.get("zip"):
            kept = kept[:-2] + [f"{parts['state']} {parts['zip']}"]
        return ", ".join([MASK, *kept])
    if kind == "file_name":
        stem, dot, extension = text.rpartition(".")
        return f"{MASK}.{extension}" if dot and stem and 0 < len(extension) <= 5 else MASK
    if kind in ("text", "notes"):
        scrubbed = _EMAIL_IN_TEXT.sub(MASK, text)
        scrubbed = _PHONE_IN_TEXT.sub(lambda m: MASK if looks_like_phone(m.group()) else m.group(),
                                      scrubbed)  # fmt: skip
        return _DIGITS_IN_TEXT.sub(MASK, scrubbed)
    return MASK


# --------------------------------------------------------------------------- locations
def round_coordinate(value: Any, decimals: int) -> Any:
    """A latitude or longitude to ``decimals`` places (2: about 1 km); text stays text; what is
    not a number is None (it cannot be shown rounded)."""
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, int | float):
        return round(float(value), decimals) if math.isfinite(value) else None
    if isinstance(value, str):
        if not value.strip():
            return value
        try:
            number = float(value)
        except ValueError:
            return None
        return f"{round(number, decimals):.{decimals}f}" if math.isfinite(number) else None
    return None


def round_point(value: str, decimals: int) -> str | None:
    """``"37.7749,-122.4194"`` rounded; None when the text is not a pair of coordinates."""
    match = _POINT.match(value)
    if match is None:
        return None
    lat, lng = (round(float(g), decimals) for g in match.groups())
    return f"{lat:.{decimals}f},{lng:.{decimals}f}"


def is_point(value: str) -> bool:
    return _POINT.match(value) is not None


# --------------------------------------------------------------------------- addresses
def address_parts(text: str) -> dict[str, str]:
    """``street``, ``city``, ``state``, ``zip`` of a US address written on one line
    (``123 Main St, Apt 4B, Springfield, IL 62704``); the parts that cannot be told apart are
    left out (a one-part address is all street)."""
    parts = [p.strip() for p in text.replace("\n", ",").split(",") if p.strip()]
    out: dict[str, str] = {}
    if not parts:
        return out
    tail = _US_TAIL.match(parts[-1])
    if tail is not None:
        out["state"], out["zip"] = tail.group("state").upper(), tail.group("zip")
        parts = parts[:-1]
    elif len(parts) > 1 and _ZIP.match(parts[-1]):
        out["zip"] = parts[-1]
        parts = parts[:-1]
        if len(parts) > 1 and len(parts[-1]) == 2 and parts[-1].isalpha():
            out["state"] = parts[-1].upper()
            parts = parts[:-1]
    if len(parts) > 1 and ("state" in out or "zip" in out):
        out["city"] = parts[-1]
        parts = parts[:-1]
    if parts:
        out["street"] = ", ".join(parts)
    return out


__all__ = [
    "EMAIL_RE",
    "MASK",
    "Hasher",
    "address_parts",
    "is_hash",
    "is_point",
    "looks_like_email",
    "looks_like_phone",
    "mask",
    "normalize",
    "normalize_email",
    "normalize_phone",
    "normalize_text",
    "round_coordinate",
    "round_point",
]
