"""``[destination.postgres]`` settings solarsync adds to dlt's (which has the credentials).

| setting | env | default |
|---|---|---|
| ``readers`` (roles) | ``DESTINATION__POSTGRES__READERS='["bi_reader"]'`` | none |
| ``view_lock_timeout`` | ``DESTINATION__POSTGRES__VIEW_LOCK_TIMEOUT`` | ``1s`` |
| ``view_lock_attempts`` | ``DESTINATION__POSTGRES__VIEW_LOCK_ATTEMPTS`` | ``3`` |
"""

from __future__ import annotations

import re
from typing import List, Optional  # noqa: UP035 (dlt's configspec resolves these names)

from dlt.common.configuration import configspec
from dlt.common.configuration.specs import BaseConfiguration

from pipelines.settings import duration
from sources.common import ConfigurationError

WHERE = "destination postgres"
DEFAULT_VIEW_LOCK_TIMEOUT = "1s"
DEFAULT_VIEW_LOCK_ATTEMPTS = 3
#: a role name as solarsync accepts it in ``readers`` (quoted in SQL all the same)
DEFAULT_LOAD_LOCK_TIMEOUT = "30m"
_ROLE = re.compile(r"[A-Za-z_][A-Za-z0-9_$-]{0,62}\Z")


@configspec
class PostgresSettings(BaseConfiguration):
    """What solarsync does on a Postgres warehouse besides loading (see
    docs/destinations/postgres.md)."""

    #: roles granted USAGE on ``analytics`` and each source's schema, SELECT on every analytics
    #: view and source table, EXECUTE on the analytics functions, after every load
    readers: Optional[List[str]] = None  # noqa: UP006, UP045
    #: how long replacing one view may wait for the readers holding it, per attempt
    view_lock_timeout: str = DEFAULT_VIEW_LOCK_TIMEOUT
    #: attempts per view; after the last, the view keeps its old definition (a warning)
    view_lock_attempts: int = DEFAULT_VIEW_LOCK_ATTEMPTS
    #: how long a load waits for another load of the same dataset (another account of the
    #: source, from this host or another) to finish
    load_lock_timeout: str = DEFAULT_LOAD_LOCK_TIMEOUT

    def load_lock_timeout_s(self) -> float:
        return duration(
            self.load_lock_timeout, "[destination.postgres] load_lock_timeout", where=WHERE
        )

    def lock_timeout_s(self) -> float:
        return duration(
            self.view_lock_timeout, "[destination.postgres] view_lock_timeout", where=WHERE
        )

    def reader_roles(self) -> list[str]:
        roles = [str(r).strip() for r in (self.readers or ()) if str(r).strip()]
        bad = [r for r in roles if not _ROLE.match(r)]
        if bad:
            raise ConfigurationError(
                f"readers: {', '.join(map(repr, bad))} is not a role name",
                source=WHERE,
                hint='[destination.postgres] readers = ["bi_reader", "analyst"] '
                "(env DESTINATION__POSTGRES__READERS='[\"bi_reader\"]')",
            )
        return list(dict.fromkeys(roles))


def settings() -> PostgresSettings:
    """``[destination.postgres]`` from .dlt/*.toml and ``DESTINATION__POSTGRES__*``."""
    from dlt.common.configuration import resolve_configuration
    from dlt.common.configuration.exceptions import ConfigurationException

    try:
        resolved = resolve_configuration(PostgresSettings(), sections=("destination", "postgres"))
    except ConfigurationException as exc:
        raise ConfigurationError(
            f"[destination.postgres] settings do not resolve ({_first_line(exc)})",
            source=WHERE,
            hint='readers is a list of role names: readers = ["bi_reader"] '
            "(env DESTINATION__POSTGRES__READERS='[\"bi_reader\"]'); "
            'view_lock_timeout a duration ("1s"), view_lock_attempts a number',
        ) from None
    if int(resolved.view_lock_attempts) < 1:
        raise ConfigurationError(
            "view_lock_attempts must be 1 or more",
            source=WHERE,
            hint="[destination.postgres] view_lock_attempts = 3",
        )
    resolved.lock_timeout_s()
    resolved.reader_roles()
    return resolved


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
