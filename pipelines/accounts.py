"""The accounts of a source: which are configured, what each is called where, and the settings
its run gets (docs/accounts.md).

- **default**: ``[sources.<source>]`` itself (``SOURCES__<SOURCE>__<KEY>``), the configuration
  of a single-account deployment. It keeps the dlt pipeline ``solarsync_<source>``: the state,
  checkpoints and tables an earlier release wrote go on being used, nothing is read again.
- **named accounts**: ``[sources.<source>.accounts.<name>]`` in ``.dlt/secrets.toml`` or
  ``config.toml``, or ``SOURCES__<SOURCE>__ACCOUNTS__<NAME>__<KEY>``. Each is a dlt pipeline of
  its own, ``solarsync_<source>__<name>`` (own state, own checkpoints, own lock), loading into
  the source's dataset. Its credentials (the registry's ``account_secrets``) must be its own;
  every other setting falls back to ``[sources.<source>]``.

A source whose registry entry has ``accounts=False`` (the Tesla gateway: it already reads many
gateways with one configuration) has the default account only.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import dlt
from dlt.common.configuration import resolve_configuration

from pipelines.registry import SourceSpec
from sources.common import ConfigurationError
from sources.common.accounts import ACCOUNTS_KEY, DEFAULT, named


@dataclass(frozen=True)
class Account:
    """One account of one source."""

    source: str
    name: str = DEFAULT

    @property
    def is_default(self) -> bool:
        return self.name == DEFAULT

    @property
    def pipeline_name(self) -> str:
        """The dlt pipeline (its working dir, state and checkpoints): ``solarsync_<source>``
        for the default account, ``solarsync_<source>__<name>`` for the others."""
        base = f"solarsync_{self.source}"
        return base if self.is_default else f"{base}__{self.name}"

    @property
    def lock_name(self) -> str:
        """What the destination's run lock is keyed by (the source name for the default
        account, as before accounts)."""
        return self.source if self.is_default else f"{self.source}__{self.name}"

    @property
    def label(self) -> str:
        """For people: ``solarknock``, or ``solarknock (account north)``."""
        return self.source if self.is_default else f"{self.source} (account {self.name})"

    @property
    def sections(self) -> tuple[str, ...]:
        if self.is_default:
            return ("sources", self.source)
        return ("sources", self.source, ACCOUNTS_KEY, self.name)

    @property
    def section(self) -> str:
        """``[sources.solarknock.accounts.north]``."""
        return "[" + ".".join(self.sections) + "]"

    @property
    def env_prefix(self) -> str:
        """``SOURCES__SOLARKNOCK__ACCOUNTS__NORTH__``."""
        return "__".join(s.upper() for s in self.sections) + "__"

    def __str__(self) -> str:
        return self.label


def configured(spec: SourceSpec) -> list[Account]:
    """The accounts of ``spec`` to run: the default one when ``[sources.<source>]`` has its
    credentials, then every named account (one without its credentials is listed all the
    same: its run fails naming what is missing, rather than being skipped silently)."""
    accounts = [Account(spec.name)] if spec.is_configured() else []
    if spec.accounts:
        accounts += [Account(spec.name, name) for name in named(spec.name)]
    # none at all: the default account, whose run fails naming the missing setting
    return accounts or [Account(spec.name)]


def known(spec: SourceSpec) -> list[Account]:
    """Every account of ``spec`` the configuration names, the default one always first."""
    names = named(spec.name) if spec.accounts else []
    return [Account(spec.name), *(Account(spec.name, n) for n in names)]


def select(spec: SourceSpec, wanted: Sequence[str] | None) -> list[Account]:
    """``--account`` names (``default`` is the single-account configuration) as accounts of
    ``spec``; none given: :func:`configured`. An unknown name is a :class:`ConfigurationError`
    that lists the known ones."""
    if not wanted:
        return configured(spec)
    available = {a.name: a for a in known(spec)}
    out = []
    for name in dict.fromkeys(wanted):
        if name not in available:
            listed = ", ".join(available) or "none"
            raise ConfigurationError(
                f"no account {name!r}",
                source=spec.name,
                hint=f"configured accounts: {listed} ([sources.{spec.name}.accounts.<name>] in "
                f".dlt/secrets.toml or SOURCES__{spec.name.upper()}__ACCOUNTS__<NAME>__...)",
            )
        out.append(available[name])
    return out


def source_kwargs(spec: SourceSpec, account: Account) -> dict[str, Any]:
    """The arguments of the source function for ``account``: nothing for the default account
    (dlt injects ``[sources.<source>]`` as always); for a named account its section resolved
    over the source's (its own value first, then ``[sources.<source>]``, then the default),
    after checking that its credentials are its own."""
    if account.is_default:
        return {}
    missing = [key for key in spec.account_secrets if not _own(account, key)]
    if missing:
        raise ConfigurationError(
            f"account {account.name!r} has no {', '.join(missing)} of its own",
            source=spec.name,
            hint=f"set {', '.join(missing)} under {account.section} in .dlt/secrets.toml or "
            + ", ".join(f"{account.env_prefix}{key.upper()}" for key in missing)
            + "; an account's credentials never fall back to the source's",
        )
    config = resolve_configuration(spec.factory().ref.SPEC(), sections=account.sections)
    return {name: config[name] for name in config.__dataclass_fields__ if not name.startswith("_")}


def _own(account: Account, key: str) -> bool:
    path = ".".join((*account.sections, key))
    for accessor in (dlt.secrets, dlt.config):
        try:
            value = accessor.get(path)
        except Exception:
            value = None
        if value not in (None, ""):
            return True
    return False


__all__ = ["ACCOUNTS_KEY", "Account", "configured", "known", "named", "select", "source_kwargs"]
