"""Accounts: several credentials for one source (a SolarKnock org per office, a HEAT key per
customer's access group, a SolarAssistant token per fleet) loading into one dataset.

solarsync runs each configured account of a source as a dlt pipeline of its own (its own
state, checkpoints and lock), in a thread of its own; :func:`scope` tells the code running in
that thread which account it serves (:func:`current`), and the request counters follow it
(``sources.common.stats``). A source stamps every row it yields with the account's columns
through :func:`stamped` (one ``add_map`` per resource: the row-producing code does not
change), and declares its keys with them (:func:`keyed`), so ids that collide between two
accounts (two orgs' lead ids) never meet in a merge.

* ``account``: the configured account name on every row of every source (``default`` for
  the single-account configuration ``[sources.<source>]``);
* a source whose API names the account itself adds that id (SolarKnock: ``org_id``, the
  org of the key from ``GET /org``) and keys its rows by it.

Account names are lower-case (``[a-z][a-z0-9_]*``, no ``__``): they are part of the dlt
pipeline name (``solarsync_<source>__<account>``) and of environment variables
(``SOURCES__<SOURCE>__ACCOUNTS__<ACCOUNT>__<KEY>``, which are upper-case).
"""

from __future__ import annotations

import contextlib
import os
import re
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

import dlt

from sources.common.columns import column
from sources.common.errors import ConfigurationError

#: the account of the single-account configuration (``[sources.<source>]`` itself)
DEFAULT = "default"
#: the column every row carries: the configured account name
COLUMN = "account"
#: ``[sources.<source>.accounts.<name>]``: where named accounts are configured
ACCOUNTS_KEY = "accounts"
NAME = re.compile(r"[a-z][a-z0-9_]{0,39}\Z")

_local = threading.local()


def check_name(source: str, name: Any) -> str:
    """``name`` if it can name an account of ``source``; else a :class:`ConfigurationError`."""
    text = str(name)
    if text == DEFAULT:
        raise ConfigurationError(
            f"an account may not be named {DEFAULT!r}",
            source=source,
            hint=f"the settings of [sources.{source}] itself are the account {DEFAULT!r}; "
            f"name the others e.g. [sources.{source}.accounts.north]",
        )
    if not NAME.match(text) or "__" in text:
        raise ConfigurationError(
            f"account name {text!r} is not valid",
            source=source,
            hint="use lower-case letters, digits and single underscores, starting with a "
            f"letter (e.g. [sources.{source}.accounts.north_office]): the name is part of "
            "environment variables and of the dlt pipeline name",
        )
    return text


def named(source: str) -> list[str]:
    """Names of the accounts configured under ``[sources.<source>.accounts]`` (TOML files) or
    by ``SOURCES__<SOURCE>__ACCOUNTS__<NAME>__<KEY>`` environment variables, sorted. A name
    that cannot name an account is a :class:`ConfigurationError`."""
    found: set[str] = set()
    key = f"sources.{source}.{ACCOUNTS_KEY}"
    for accessor in (dlt.config, dlt.secrets):
        try:
            value = accessor.get(key)
        except Exception:
            value = None
        if hasattr(value, "keys"):
            found.update(str(k) for k in value.keys())
    prefix = f"SOURCES__{source.upper()}__{ACCOUNTS_KEY.upper()}__"
    for variable in os.environ:  # names only: values are read through dlt, like any setting
        if variable.startswith(prefix):
            name, sep, _ = variable[len(prefix) :].partition("__")
            if name and sep:
                found.add(name.lower())
    return sorted(check_name(source, name) for name in found)


@contextlib.contextmanager
def scope(source: str, account: str) -> Iterator[None]:
    """Within the block, in this thread, ``source`` runs for ``account`` (:func:`current`)."""
    accounts: dict[str, list[str]] = _local.__dict__.setdefault("accounts", {})
    accounts.setdefault(source, []).append(account)
    try:
        yield
    finally:
        accounts[source].pop()


def current(source: str) -> str:
    """The account ``source`` runs for in this thread (:func:`scope`); :data:`DEFAULT` outside."""
    stack = _local.__dict__.get("accounts", {}).get(source)
    return stack[-1] if stack else DEFAULT


def columns(*names: str) -> dict[str, dict[str, Any]]:
    """Column hints of the account columns: text, never NULL."""
    return {name: column("text", False) for name in names}


def keyed(key: str | Sequence[str], *account_columns: str) -> list[str]:
    """A table's key with the account columns first: ``keyed("id", "org_id")`` ->
    ``["org_id", "id"]``; without ``account_columns``: ``["account", *key]``."""
    own = [key] if isinstance(key, str) else list(key)
    lead = list(account_columns) or [COLUMN]
    return [*lead, *(k for k in own if k not in lead)]


def stamp(item: Any, values: Mapping[str, Any]) -> Any:
    """``item`` (a row or an Arrow table) with ``values`` as columns; anything else (a marker
    that only materializes a table) unchanged. Rows are copied, never changed in place."""
    if isinstance(item, dict):
        return {**item, **values}
    import pyarrow as pa

    if isinstance(item, pa.Table | pa.RecordBatch):
        for name, value in values.items():
            array = pa.array([value] * item.num_rows, type=pa.string())
            index = item.schema.get_field_index(name)
            if index >= 0:
                item = item.set_column(index, pa.field(name, pa.string(), nullable=False), array)
            elif isinstance(item, pa.Table):
                item = item.append_column(pa.field(name, pa.string(), nullable=False), array)
            else:
                item = item.add_column(
                    item.num_columns, pa.field(name, pa.string(), nullable=False), array
                )
        return item
    return item


def stamped(resource: Any, values: Callable[[], Mapping[str, Any]] | Mapping[str, Any]) -> Any:
    """``resource`` whose every row carries ``values`` (a mapping, or a function giving it,
    called once per page: e.g. the org id known after the first request)."""

    def add(item: Any) -> Any:
        return stamp(item, values() if callable(values) else values)

    return resource.add_map(add)


__all__ = [
    "ACCOUNTS_KEY",
    "COLUMN",
    "DEFAULT",
    "check_name",
    "columns",
    "current",
    "keyed",
    "named",
    "scope",
    "stamp",
    "stamped",
]
