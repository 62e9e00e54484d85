"""``[solarsync.pii]``: what happens to each class of personal data, typed (a dlt configspec),
and the :class:`Policy` it resolves to.

```toml
[solarsync.pii]                 # .dlt/config.toml (env SOLARSYNC__PII__<KEY>)
contact = "hash"                # names, emails, phones of homeowners and site members
staff = "keep"                  # the names of the organisation's own reps (leaderboards)
address = "hash"                # street and unit; the parts in address_keep stay
address_keep = ["city", "state", "zip", "county"]
location = "round"              # lat/lng: keep, round (to location_decimals) or drop
location_decimals = 2           # about 1 km
notes = "drop"                  # free text and file names
phone_country_code = "1"        # phone numbers written without one (E.164 for hashing)

[solarsync.pii.attachments]     # lead files by category: download or skip
id_document = "skip"

# .dlt/secrets.toml
[solarsync.pii]
hash_key = "..."                # the HMAC key: required by "hash"; never change it
```

``keep`` loads the value as the API sent it; ``hash`` loads HMAC-SHA256 of the normalized value
(joins and counts of distinct people still work); ``mask`` a partial form (``j***@gmail.com``,
``*******4567``, initials, the kept address parts); ``drop`` nothing (the column is NULL, or
absent for a column the source does not declare). Locations take ``keep``, ``round`` or
``drop`` (``hash`` and ``mask`` round too: a coordinate is masked by rounding it).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Dict, Optional  # noqa: UP035  (dlt resolves these annotations)

from dlt.common.configuration import configspec, resolve_configuration
from dlt.common.configuration.exceptions import ConfigurationException
from dlt.common.configuration.specs import BaseConfiguration
from dlt.common.typing import TSecretStrValue

from sources.common.errors import ConfigurationError
from sources.common.pii.attachments import AttachmentRules
from sources.common.pii.classify import ADDRESS_PARTS, CLASSES
from sources.common.pii.values import Hasher
from sources.common.redact import register_secret

logger = logging.getLogger("solarsync.pii")

ACTIONS = ("keep", "hash", "mask", "drop")
LOCATION_ACTIONS = ("keep", "round", "drop", "hash", "mask")
#: the policy of a new installation (README, "Personal data"; docs/pii.md)
DEFAULTS: dict[str, str] = {
    "contact": "hash",
    "staff": "keep",
    "address": "hash",
    "location": "round",
    "notes": "drop",
}
DEFAULT_ADDRESS_KEEP = ("city", "state", "zip", "county")
DEFAULT_LOCATION_DECIMALS = 2
DEFAULT_COUNTRY_CODE = "1"
MIN_KEY_LENGTH = 16
KEY_HINT = (
    "set hash_key under [solarsync.pii] in .dlt/secrets.toml (or SOLARSYNC__PII__HASH_KEY), e.g. "
    'the output of: python -c "import secrets; print(secrets.token_urlsafe(32))"; keep it: '
    "another key gives other hashes (docs/pii.md)"
)
SECTION = "[solarsync.pii]"


@configspec
class PiiSettings(BaseConfiguration):
    """``[solarsync.pii]`` (env ``SOLARSYNC__PII__<KEY>``): see the module docstring."""

    contact: str = DEFAULTS["contact"]
    #: the names of the organisation's own people (SolarKnock reps); their emails and phones
    #: are ``contact``
    staff: str = DEFAULTS["staff"]
    address: str = DEFAULTS["address"]
    #: a list, ``"city,zip"`` or ``[]``; default city, state, zip, county
    address_keep: Optional[Any] = None  # noqa: UP045
    location: str = DEFAULTS["location"]
    location_decimals: int = DEFAULT_LOCATION_DECIMALS
    notes: str = DEFAULTS["notes"]
    phone_country_code: str = DEFAULT_COUNTRY_CODE
    hash_key: Optional[TSecretStrValue] = None  # noqa: UP045
    #: ``{"source.table.column": "class[.kind]" or "none"}``
    columns: Optional[Dict[str, str]] = None  # noqa: UP006, UP045
    #: ``{category: "download" | "skip"}``
    attachments: Optional[Dict[str, str]] = None  # noqa: UP006, UP045
    #: ``{category: [file-name globs or MIME patterns]}``, tried before the built-in ones
    attachment_patterns: Optional[Dict[str, Any]] = None  # noqa: UP006, UP045


def resolve_settings() -> PiiSettings:
    """``[solarsync.pii]`` as configured (as ``pipelines.settings.resolve(spec, "solarsync",
    "pii")`` resolves a spec: the sources cannot import ``pipelines``)."""
    spec = PiiSettings()
    spec.__section__ = "pii"
    try:
        return resolve_configuration(spec, sections=("solarsync",))
    except ConfigurationException as exc:
        text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ConfigurationError(
            f"{SECTION} settings do not resolve: {text}",
            hint="check [solarsync.pii] in .dlt/config.toml and the SOLARSYNC__PII__* "
            "environment variables",
        ) from None


@dataclass(frozen=True)
class Action:
    """What happens to a class: ``keep``, ``hash``, ``mask``, ``drop``, or ``round`` with its
    decimals."""

    name: str
    decimals: int | None = None

    def __str__(self) -> str:
        return f"round:{self.decimals}" if self.name == "round" else self.name


def _listed(value: Any, default: Iterable[str]) -> tuple[str, ...]:
    if value is None:
        return tuple(default)
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("["):
            import json

            value = json.loads(text)
        else:
            value = [p for p in text.split(",")]
    return tuple(str(v).strip().lower() for v in value if str(v).strip())


class Policy:
    """The validated ``[solarsync.pii]`` of one run."""

    def __init__(self, settings: PiiSettings | None = None) -> None:
        settings = settings if settings is not None else PiiSettings()
        self.settings = settings
        actions: dict[str, Action] = {}
        for cls in ("contact", "address", "notes"):
            actions[cls] = self._action(cls, getattr(settings, cls) or DEFAULTS[cls], ACTIONS)
        actions["staff"] = self._action("staff", settings.staff or DEFAULTS["staff"], ACTIONS)
        decimals = int(settings.location_decimals)
        if not 0 <= decimals <= 8:
            raise ConfigurationError(
                f"{SECTION} location_decimals = {decimals} is out of range",
                hint="use 0 (about 100 km) to 8; 2 is about 1 km, 3 about 100 m",
            )
        location = self._action("location", settings.location or "round", LOCATION_ACTIONS)
        if location.name in ("hash", "mask", "round"):
            location = Action("round", decimals)
        actions["location"] = location
        self.actions = actions
        keep = _listed(settings.address_keep, DEFAULT_ADDRESS_KEEP)
        unknown = sorted(set(keep) - set(ADDRESS_PARTS))
        if unknown:
            raise ConfigurationError(
                f"{SECTION} address_keep names {unknown}",
                hint=f"choose among {', '.join(ADDRESS_PARTS)} (or [] to keep none)",
            )
        self.address_keep = frozenset(keep)
        self.country_code = str(settings.phone_country_code or DEFAULT_COUNTRY_CODE).strip("+ ")
        if not self.country_code.isdigit():
            raise ConfigurationError(
                f"{SECTION} phone_country_code = {settings.phone_country_code!r} is not a "
                "country calling code",
                hint='e.g. "1" (US, Canada), "44" (UK), "49" (Germany)',
            )
        self.overrides = dict(settings.columns or {})
        self.attachments = AttachmentRules(
            settings.attachments, settings.attachment_patterns, contact=actions["contact"].name
        )
        self._key = str(settings.hash_key) if settings.hash_key else None
        if self._key:
            register_secret(self._key)
        self._hasher: Hasher | None = None

    @staticmethod
    def _action(cls: str, value: str, allowed: Iterable[str]) -> Action:
        name = str(value).strip().lower()
        if name not in allowed:
            raise ConfigurationError(
                f"{SECTION} {cls} = {value!r} is not an action",
                hint=f"{cls} takes {', '.join(a for a in allowed)}",
            )
        return Action(name)

    # -- the key ------------------------------------------------------------------------------
    def hashes(self, classes: Iterable[str]) -> bool:
        return any(self.actions[c].name == "hash" for c in classes if c in self.actions)

    @property
    def hasher(self) -> Hasher:
        """The keyed hash; a :class:`ConfigurationError` when no usable key is configured
        (never an unkeyed hash, never the raw value)."""
        if self._hasher is None:
            hashed = [c for c in CLASSES if self.actions[c].name == "hash"]
            what = ", ".join(f'{c} = "hash"' for c in hashed) or "hash"
            if not self._key:
                raise ConfigurationError(
                    f"{SECTION} {what} needs a secret hash key, and none is configured; "
                    "nothing was loaded",
                    hint=KEY_HINT + ', or choose "drop" (or "mask") for those classes',
                )
            if self._key.strip().upper().startswith("CHANGE-ME"):
                raise ConfigurationError(
                    f"{SECTION} hash_key is still the placeholder of .dlt/secrets.toml.example: "
                    "anyone who read it could reverse every hash",
                    hint=KEY_HINT,
                )
            if len(self._key) < MIN_KEY_LENGTH:
                raise ConfigurationError(
                    f"{SECTION} hash_key is too short ({len(self._key)} characters; at least "
                    f"{MIN_KEY_LENGTH}): a short key can be guessed and every hash reversed",
                    hint=KEY_HINT,
                )
            self._hasher = Hasher(self._key)
        return self._hasher

    def require_key(self, classes: Iterable[str]) -> None:
        """Fail now (before anything is read) when one of ``classes`` hashes without a key."""
        classes = list(classes)
        if self.hashes(classes) and self._hasher is None and not self._key:
            hashed = [c for c in CLASSES if c in classes and self.actions[c].name == "hash"]
            what = ", ".join(f'{c} = "hash"' for c in hashed)
            raise ConfigurationError(
                f"{SECTION} {what} needs a secret hash key, and none is configured; "
                "nothing was loaded",
                hint=KEY_HINT + ', or choose "drop" (or "mask") for those classes',
            )
        if self.hashes(classes):
            self.hasher  # noqa: B018

    # -- what the stored data was written under -----------------------------------------------
    def stamp(self, classes: Iterable[str], attachments: bool = False) -> dict[str, Any]:
        """The policy of ``classes`` as recorded with the data (dlt state): compared on every
        run, so data written under one policy is never mixed with data of another."""
        used = sorted(set(classes) & set(CLASSES))
        out: dict[str, Any] = {"classes": {c: str(self.actions[c]) for c in used}}
        if self.hashes(used):
            out["key"] = self.hasher.key_id
            if any(self.actions[c].name == "hash" for c in ("contact", "staff") if c in used):
                out["phone_country_code"] = self.country_code
        if "address" in used:
            out["address_keep"] = sorted(self.address_keep)
        if attachments:
            out["attachments"] = self.attachments.actions()
        return out


def policy() -> Policy:
    """The configured policy (``[solarsync.pii]``), validated."""
    return Policy(resolve_settings())


def describe(stamp: Mapping[str, Any]) -> str:
    """A stamp for people: ``contact hash, address hash, location round:2``."""
    parts = [f"{c} {a}" for c, a in sorted((stamp.get("classes") or {}).items())]
    if stamp.get("attachments"):
        parts.append(
            "attachments " + ", ".join(f"{k} {v}" for k, v in sorted(stamp["attachments"].items()))
        )
    return ", ".join(parts) or "nothing personal"


__all__ = [
    "ACTIONS",
    "DEFAULTS",
    "DEFAULT_ADDRESS_KEEP",
    "Action",
    "PiiSettings",
    "Policy",
    "describe",
    "policy",
    "resolve_settings",
]
