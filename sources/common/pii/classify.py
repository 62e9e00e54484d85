"""Which values are personal data: the columns each source declares, and name patterns for
everything else (a column the API adds, a field nested in an object or a list).

A value is classified by its *path*: the table, then the keys from the row down to it (list
elements are transparent: ``attachments.fileName`` is the ``fileName`` of every element).
Names are compared in snake_case (``homeownerEmail`` = ``homeowner_email``), so the path of a
value as the API sends it and the column dlt stores it in (``owner__email``) classify alike.

Order: a per-column override (``[solarsync.pii.columns]``), the source's declaration, then the
patterns below. The classes are ``contact`` (people's names, emails, phones, identity numbers,
photos), ``staff`` (the same, of the organisation's own people: only by declaration),
``address`` (street, unit; the city, state, zip, county and country parts are kept as
``address_keep`` says), ``location`` (coordinates) and ``notes`` (free text and file names).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache

from sources.common.errors import ConfigurationError

CLASSES = ("contact", "staff", "address", "location", "notes")
#: the kinds of value of each class: how a value is normalized, masked, rounded
KINDS: dict[str, tuple[str, ...]] = {
    "contact": ("email", "phone", "name", "text"),
    "staff": ("email", "phone", "name", "text"),
    "address": ("address", "street", "unit", "city", "state", "zip", "county", "country"),
    "location": ("lat", "lng", "point"),
    "notes": ("text", "file_name"),
}
DEFAULT_KIND = {"contact": "text", "staff": "text", "address": "address", "location": "point",
                "notes": "text"}  # fmt: skip
#: parts of an address that ``address_keep`` may keep (areas, not households)
ADDRESS_PARTS = ("city", "state", "zip", "county", "country")


@dataclass(frozen=True)
class Pii:
    """The class of a value (its policy) and its kind (how the action treats it)."""

    cls: str
    kind: str

    def __str__(self) -> str:
        return f"{self.cls}.{self.kind}"

    @classmethod
    def parse(cls, text: str, where: str = "") -> Pii:
        """``"contact.email"``, ``"notes"`` (the class's default kind)."""
        name, _, kind = str(text).strip().partition(".")
        if name not in KINDS or (kind and kind not in KINDS[name]):
            choices = ", ".join(f"{c}[.{'|'.join(KINDS[c])}]" for c in CLASSES)
            raise ConfigurationError(
                f"{where or 'PII declaration'}: {text!r} is not a PII class",
                hint=f"use one of {choices}, or none",
            )
        return cls(name, kind or DEFAULT_KIND[name])


class _Safe:
    """Declared not personal (or an identifier): left as it is, never scanned."""

    def __repr__(self) -> str:
        return "SAFE"


#: a path declared not personal; containers under it are still walked
SAFE = _Safe()
#: an identifier (``id``, ``*_id``): left alone, its children too
IDENTIFIER = _Safe()


@dataclass(frozen=True)
class Declared:
    """What one source declares, once (its ``settings.py``), by table:

    * ``tables``: the personal columns, ``{table: {path: "class.kind"}}``; a path is a column
      or ``column.field`` inside a nested value (``attachments.fileName``);
    * ``safe``: documented columns that are not personal (no name pattern, no value scan);
    * ``people``: the class of person fields found by pattern in a table (default
      ``contact``; SolarKnock's ``users`` are ``staff``);
    * ``attachments``: ``{table: path}`` of a list of files whose elements get a
      ``file_category`` (from the file name and MIME type, before either is protected);
    * ``derived``: tables built from rows that were already protected (SolarKnock's
      ``lead_attachments``): declared for the docs and for ``solarsync pii apply``, never
      protected a second time.
    """

    source: str
    tables: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    safe: Mapping[str, Iterable[str]] = field(default_factory=dict)
    people: Mapping[str, str] = field(default_factory=dict)
    attachments: Mapping[str, str] = field(default_factory=dict)
    derived: Mapping[str, Mapping[str, str]] = field(default_factory=dict)

    def columns(self, table: str) -> dict[tuple[str, ...], Pii]:
        spec = {**self.tables.get(table, {}), **self.derived.get(table, {})}
        return {path_of(p): Pii.parse(v, f"{self.source}.{table}.{p}") for p, v in spec.items()}

    def all_tables(self) -> list[str]:
        return list(dict.fromkeys([*self.tables, *self.derived]))


# --------------------------------------------------------------------------- names
_CAMEL_1 = re.compile(r"(.)([A-Z][a-z]+)")
_CAMEL_2 = re.compile(r"([a-z0-9])([A-Z])")
_NON_WORD = re.compile(r"[^0-9a-z]+")


@lru_cache(maxsize=8192)
def snake(name: str) -> str:
    """``homeownerEmail`` -> ``homeowner_email``, ``E-Mail`` -> ``e_mail`` (as dlt names
    columns)."""
    text = _CAMEL_2.sub(r"\1_\2", _CAMEL_1.sub(r"\1_\2", str(name)))
    return _NON_WORD.sub("_", text.lower()).strip("_")


def path_of(text: str | tuple[str, ...]) -> tuple[str, ...]:
    """A declared path (``owner.email``) or a stored column (``owner__email``) as snake_case
    keys."""
    if isinstance(text, tuple):
        return tuple(snake(p) for p in text)
    parts = re.split(r"\.|__", text)
    return tuple(snake(p) for p in parts if p)


_PERSON = frozenset(
    "homeowner home_owner homeowners owner owners customer customers client clients contact "
    "contacts primary_contact secondary_contact emergency_contact resident residents tenant "
    "tenants spouse person people persons applicant applicants co_applicant coapplicant member "
    "members user users lead leads signer signers household occupant occupants buyer buyers "
    "decision_maker referrer referred_by landlord partner".split()
)
_ADDRESSY = frozenset(
    "address addresses home_address mailing_address billing_address service_address "
    "site_address property_address street_address property residence home premises "
    "install_address installation_address shipping_address postal_address".split()
)
_ID_NUMBER = re.compile(
    r"(^|_)(ssn|social_security(_number|_no)?|passport(_number|_no)?|national_id(_number)?|"
    r"tax_id|tin|drivers?_licen[cs]e(_number|_no|_id)?|licen[cs]e_(number|no)|"
    r"date_of_birth|birth_?date|dob|birthday|id_card(_number)?)$"
)
_EMAIL_KEY = re.compile(r"(^|_)(e_?mail|email_address|emails|mail)(_?\d+)?$|^e_?mail(_|\d|$)")
_PHONE_KEY = re.compile(
    r"(^|_)(phone|phones|telephone|tel|mobile|cell|cellphone|cell_phone|fax|sms|whatsapp)"
    r"(_?(number|numbers|no|num))?(_?\d+)?$|^phone(_|\d|$)"
)
_FILE_KEY = re.compile(
    r"^(file_?name|original_(file_?)?name|attachment_name|document_name|upload_name)$"
)
_NOTE_KEY = re.compile(
    r"(^|_)(note|notes|comment|comments|remark|remarks|memo|memos|description|instructions|"
    r"free_text|gate_code|access_code|lockbox_code)$"
)
_LAT_KEY = re.compile(r"^(lat|latitude)$|_(lat|latitude)$")
_LNG_KEY = re.compile(r"^(lng|lon|long|longitude)$|_(lng|lon|longitude)$")
_POINT_KEY = re.compile(r"^(coordinates|coords|geo|geolocation|geo_location|gps|geopoint|"
                        r"geo_point|lat_lng|latlng|lat_long|latlong|location|position_gps)$")  # fmt: skip
_ADDRESS_KEY = re.compile(
    r"(^|_)(address|addr|street|street_address|address_line_?\d|address_?\d|line_?[12]|"
    r"house_number|house_no|po_box|addresses)$|^(address|street)(_|$)"
)
_PART_KEY = re.compile(
    r"^(?:(?:address|home|mailing|billing|property|residence|service|street|postal|site|"
    r"install|installation|shipping)_)?(city|town|state|province|zip|zip_code|zipcode|"
    r"postal_code|postcode|county|country)$"
)
_PART_OF = {"town": "city", "province": "state", "zip_code": "zip", "zipcode": "zip",
            "postal_code": "zip", "postcode": "zip"}  # fmt: skip
_UNIT_KEY = re.compile(r"^(unit|unit_number|apt|apartment|suite|apt_number|floor)$")
_NAME_KEY = re.compile(
    r"^(first_?name|last_?name|sur_?name|given_?name|family_?name|middle_?name|full_?name|"
    r"maiden_?name|nick_?name|legal_?name|user_?name|login|display_?name|initials)$"
)
_PERSON_NAME_KEY = re.compile(
    r"^(home_?owner|owner|customer|client|contact|resident|tenant|spouse|person|applicant|"
    r"co_?applicant|buyer|signer|member|lead|landlord|referrer|emergency_contact|"
    r"primary_contact|decision_maker|account_holder|cardholder|installer|technician|agent|"
    r"rep|sales_rep|setter|closer|manager|employee|inspector|electrician)_?"
    r"(name|names|full_name)$"
)
_PHOTO_KEY = re.compile(r"(^|_)(photo|photos|picture|avatar|selfie|headshot|signature)(_|$)")


def by_pattern(path: tuple[str, ...], person_class: str = "contact") -> Pii | _Safe | None:
    """The class a snake_case path's last key implies, IDENTIFIER for an identifier, None
    when the name says nothing."""
    key = path[-1]
    parents = path[:-1]
    in_person = any(p in _PERSON or _is_person_object(p) for p in parents)
    in_address = any(p in _ADDRESSY or _ADDRESS_KEY.search(p) for p in parents)
    if _ID_NUMBER.search(key):
        return Pii(person_class, "text")
    if key in ("id", "uuid", "guid", "ids") or key.endswith(("_id", "_ids", "_uuid")):
        return IDENTIFIER
    if _EMAIL_KEY.search(key):
        return Pii(person_class, "email")
    if _PHONE_KEY.search(key):
        return Pii(person_class, "phone")
    if _FILE_KEY.match(key):
        return Pii("notes", "file_name")
    if _NOTE_KEY.search(key):
        return Pii("notes", "text")
    if _LAT_KEY.search(key):
        return Pii("location", "lat")
    if _LNG_KEY.search(key):
        return Pii("location", "lng")
    if _POINT_KEY.match(key):
        return Pii("location", "point")
    part = _PART_KEY.match(key)
    if part is not None and (in_address or key != part.group(1) or part.group(1).startswith(
        ("zip", "postal", "postcode"))):  # fmt: skip
        name = part.group(1)
        return Pii("address", _PART_OF.get(name, name))
    if key in _DEVICE_ADDRESSES:
        return None
    if _ADDRESS_KEY.search(key):
        return Pii("address", "street" if re.search(r"line_?2|unit|apt", key) else "address")
    if in_address and _UNIT_KEY.match(key):
        return Pii("address", "unit")
    if _NAME_KEY.match(key) or _PERSON_NAME_KEY.match(key) or key in _PERSON - _NOT_A_NAME:
        return Pii(person_class, "name")
    if in_person and key in ("name", "names"):
        return Pii(person_class, "name")
    if _PHOTO_KEY.search(key):
        return Pii(person_class, "text")
    return None


#: words that make an object a person's (``contactInfo``, ``primary_homeowner``,
#: ``ownerDetails``): a bare ``name`` inside is that person's name
_PERSON_WORDS = frozenset(
    "homeowner homeowners owner owners customer customers client clients contact contacts "
    "resident residents tenant tenants spouse person people applicant applicants coapplicant "
    "buyer buyers signer signers household occupant occupants referrer landlord "
    "homeowner1 homeowner2 owner1 owner2".split()
)


def _is_person_object(key: str) -> bool:
    return any(part in _PERSON_WORDS for part in key.split("_"))


#: network addresses of devices, not where anybody lives
_DEVICE_ADDRESSES = frozenset({"ip_address", "ipaddress", "ip_addr", "mac_address",
                               "macaddress", "mac_addr", "email_address"})  # fmt: skip
#: person words that, as a key of their own, hold something other than a name
_NOT_A_NAME = frozenset({"user", "users", "member", "members", "lead", "leads", "contacts",
                         "people", "persons", "household"})  # fmt: skip


class Classifier:
    """Classifies the paths of one source (cached per table and path)."""

    def __init__(self, declared: Declared, overrides: Mapping[str, str] | None = None) -> None:
        self.declared = declared
        self._cache: dict[tuple[str, tuple[str, ...]], Pii | _Safe | None] = {}
        self._columns = {t: declared.columns(t) for t in declared.all_tables()}
        self._safe = {t: {path_of(c) for c in cols} for t, cols in declared.safe.items()}
        self._people = dict(declared.people)
        self._overrides: dict[str, dict[tuple[str, ...], Pii | _Safe]] = {}
        for name, value in (overrides or {}).items():
            source, _, rest = str(name).partition(".")
            table, _, column = rest.partition(".")
            if source != declared.source:
                continue
            if not table or not column:
                raise ConfigurationError(
                    f"[solarsync.pii.columns] {name!r}: name a source, a table and a column",
                    hint='e.g. "solarknock.leads.referrer" = "contact.email" (or "none")',
                )
            parsed = SAFE if str(value).strip().lower() == "none" else Pii.parse(value, name)
            self._overrides.setdefault(table, {})[path_of(column)] = parsed

    def declared_path(self, table: str, path: tuple[str, ...]) -> bool:
        """Whether the source (or an override) names this path: not a *new* column."""
        return (
            path in self._columns.get(table, {})
            or path in self._overrides.get(table, {})
            or path in self._safe.get(table, ())
        )

    def classify(self, table: str, path: tuple[str, ...]) -> Pii | _Safe | None:
        key = (table, path)
        if key not in self._cache:
            self._cache[key] = self._classify(table, path)
        return self._cache[key]

    def _classify(self, table: str, path: tuple[str, ...]) -> Pii | _Safe | None:
        override = self._overrides.get(table, {}).get(path)
        if override is not None:
            return override
        declared = self._columns.get(table, {}).get(path)
        if declared is not None:
            return declared
        if path in self._safe.get(table, ()):
            return SAFE
        return by_pattern(path, self._people.get(table, "contact"))

    def people(self, table: str) -> str:
        """The class of a person found by pattern or by value in ``table``."""
        return self._people.get(table, "contact")

    def classes(self) -> set[str]:
        """The classes this source declares (and overrides name)."""
        found = {p.cls for cols in self._columns.values() for p in cols.values()}
        found |= {p.cls for cols in self._overrides.values() for p in cols.values()
                  if isinstance(p, Pii)}  # fmt: skip
        return found


__all__ = [
    "ADDRESS_PARTS",
    "CLASSES",
    "IDENTIFIER",
    "KINDS",
    "SAFE",
    "Classifier",
    "Declared",
    "Pii",
    "by_pattern",
    "path_of",
    "snake",
]
