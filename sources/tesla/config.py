"""Gateway settings: one gateway (``host``, ``password``...) or a ``gateways`` list, validated
into :class:`GatewayConfig` with an error that names what to fix."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import dlt

from sources.common import ConfigurationError, register_secret
from sources.common.tls import normalize_fingerprint
from sources.tesla.settings import CONFIG_HINT, DEFAULT_PORT, SOURCE_NAME


@dataclass(frozen=True)
class GatewayConfig:
    name: str
    host: str  # host or host:port, no scheme
    password: str
    email: str = ""
    fingerprint: str | None = None  # normalised SHA-256 hex, or None for trust on first use

    def __repr__(self) -> str:  # never the password
        return f"GatewayConfig(name={self.name!r}, host={self.host!r})"

    @property
    def base_url(self) -> str:
        return f"https://{self.host}"

    @property
    def address(self) -> tuple[str, int]:
        parts = urlsplit(self.base_url)
        return parts.hostname or self.host, parts.port or DEFAULT_PORT


def make_config(
    *,
    name: str | None,
    host: Any,
    password: Any,
    email: Any = None,
    fingerprint: Any = None,
) -> GatewayConfig:
    """Validate one gateway's settings (a clear error naming what to fix)."""
    label = f"gateway {name!r}" if name else "gateway"
    text = str(host or "").strip().rstrip("/")
    if not text:
        raise ConfigurationError(f"{label}: host is empty", source=SOURCE_NAME)
    if text.lower().startswith("http://"):
        raise ConfigurationError(
            f"{label}: host {text!r} uses http://; the gateway speaks HTTPS only",
            source=SOURCE_NAME,
            hint="give the host name or IP (e.g. 192.168.91.1): solarsync always uses HTTPS",
        )
    if text.lower().startswith("https://"):
        text = text[len("https://") :]
    if "/" in text:
        raise ConfigurationError(
            f"{label}: host {text!r} has a path", source=SOURCE_NAME, hint="give host[:port] only"
        )
    if password is None or not str(password):
        raise ConfigurationError(
            f"{label}: password is empty",
            source=SOURCE_NAME,
            hint="the gateway's customer password (by default the last 5 characters of its "
            "serial), in .dlt/secrets.toml or SOURCES__TESLA__PASSWORD",
        )
    register_secret(str(password))
    pinned = normalize_fingerprint(fingerprint, source=SOURCE_NAME) if fingerprint else None
    return GatewayConfig(
        name=str(name or text), host=text, password=str(password), email=str(email or ""),
        fingerprint=pinned,
    )  # fmt: skip


def gateway_configs(
    *,
    host: Any = None,
    password: Any = None,
    email: Any = None,
    name: Any = None,
    fingerprint: Any = None,
    gateways: Any = None,
) -> list[GatewayConfig]:
    """The gateways: a ``gateways`` list (or table of tables) and/or the single ``host``."""
    entries: list[Mapping[str, Any]] = []
    if isinstance(gateways, str) and gateways.strip():
        try:
            gateways = json.loads(gateways)
        except ValueError:
            raise ConfigurationError(
                "sources.tesla.gateways is not JSON", source=SOURCE_NAME, hint=CONFIG_HINT
            ) from None
    if isinstance(gateways, Mapping):  # [sources.tesla.gateways.home] tables
        gateways = [{"name": key, **value} for key, value in gateways.items()]
    for entry in gateways or ():
        if not isinstance(entry, Mapping):
            raise ConfigurationError(
                "every entry of sources.tesla.gateways must be a table", source=SOURCE_NAME,
                hint=CONFIG_HINT,
            )  # fmt: skip
        entries.append(entry)
    if host:
        entries.append(
            {"name": name, "host": host, "password": password, "email": email,
             "fingerprint": fingerprint}
        )  # fmt: skip
    if not entries:
        raise ConfigurationError("no gateway configured", source=SOURCE_NAME, hint=CONFIG_HINT)
    configs = [
        make_config(
            name=e.get("name"), host=e.get("host"), password=e.get("password"),
            email=e.get("email"), fingerprint=e.get("fingerprint"),
        )
        for e in entries
    ]  # fmt: skip
    names = [c.name for c in configs]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ConfigurationError(
            f"gateway names must be unique: {duplicates}", source=SOURCE_NAME,
            hint="give each [[sources.tesla.gateways]] entry its own name",
        )  # fmt: skip
    return configs


def _setting(key: str, secret: bool = False) -> Any:
    try:
        return (dlt.secrets if secret else dlt.config).get(f"sources.{SOURCE_NAME}.{key}")
    except Exception:
        return None


def is_configured() -> bool:
    """One gateway (host + password) or a ``gateways`` list is set (used by the registry)."""
    gateways = _setting("gateways") or _setting("gateways", secret=True)
    return bool(gateways) or bool(_setting("host") and _setting("password", secret=True))


# --------------------------------------------------------------------------- clients


__all__ = ["GatewayConfig", "gateway_configs", "is_configured", "make_config"]
