"""HEAT Cloud Public API source (dataset ``heat``): site and schedule snapshots.

Each call of :func:`heat` is one snapshot, stamped ``snapshot_at`` (the instant its load
package was created, which is also the scd2 validity boundary). ``GET /health`` is asked
first; if it is down nothing is requested or loaded.

Tables (key; write disposition):

* ``sites``: current state per site: ``site_name``, ``is_online``, ``reported_at``,
  ``last_seen_at`` (the last snapshot that listed it), plus any new site field as a nullable
  column (``account, site_id``; merge).
* ``site_status_history``: ``is_online``, ``reported_at`` of every site in every snapshot
  (``account, site_id, snapshot_at``; merge, so a re-loaded package adds nothing twice).
* ``snapshots``: one row per snapshot, ``sites_listed`` (``account, snapshot_at``; merge): a
  snapshot that listed no site at all is known too, so a site missing from it counts as
  missing.
* ``schedule_entries``: one row version per (``site_id, asset, type, start_at``) with
  ``end_at``, ``value`` and validity ``_dlt_valid_from`` / ``_dlt_valid_to`` (snapshot
  instants; NULL = still active) (``entry_hash``, a hash of those six fields only, and of the
  account's name for a named account; scd2, scoped to the account's sites). A
  changed entry retires its old version; a cleared schedule (empty ``entries``, or no schedules
  at all) retires its rows; a site missing from a snapshot keeps its rows untouched. Other
  fields (e.g. one the API adds) are stored on the versions written from then on and never
  make a version by themselves.
* ``assets``: one row per (``site_id, asset_kind``) with rated limits, capacity and the latest
  readings, ``last_seen_at`` (``account, site_id, asset_kind``; merge). A new asset kind is
  new rows.
* ``asset_readings``: the readings (every asset field that is not its id, type, a
  ``rated*`` limit or its capacity) per snapshot (``account, site_id, asset_kind,
  snapshot_at``; merge).

No cursors: the API only shows what is true now; the history is what these tables keep.

Every row carries ``account`` (the configured account: docs/accounts.md) and every key starts
with it: a site two keys see is kept once per account, each account's tables equal what its
key sees (the analytics views show such a site once).
"""

from __future__ import annotations

import copy
import hashlib
import logging
from collections.abc import Callable, Iterator, Sequence
from datetime import datetime
from typing import Any, NamedTuple

import dlt
import pendulum
from dlt.common.configuration.container import Container
from dlt.common.configuration.inject import with_config
from dlt.common.pipeline import PipelineContext
from dlt.sources import DltResource

from sources.common import ConfigurationError, accounts, stats_for
from sources.common.clients import ClientCache
from sources.common.columns import known_columns
from sources.heat.client import HeatClient
from sources.heat.model import (
    TypeWatch,
    asset_rows,
    schedule_rows,
    site_row,
    status_row,
    with_entry_hash,
)
from sources.heat.settings import (
    API_KEY_ENV,
    ASSET_COLUMNS,
    DEFAULT_API_VERSION,
    DEFAULT_CONCURRENCY,
    DEFAULT_HEALTH_TIMEOUT,
    ENTRY_HASH_COLUMN,
    ENTRY_HASH_VERSION,
    MAX_CONCURRENCY,
    READING_COLUMNS,
    SCHEDULE_COLUMNS,
    SCHEDULE_WRITE_DISPOSITION,
    SITE_COLUMNS,
    SNAPSHOT_COLUMNS,
    SOURCE_NAME,
    STATUS_COLUMNS,
)
from sources.heat.upgrade import fill_entry_hashes

logger = logging.getLogger("solarsync.heat")

MERGE: dict[str, Any] = {"disposition": "merge", "strategy": "delete-insert"}


class Table(NamedTuple):
    """One table of a snapshot, declared."""

    rows: str  # the Snapshot method that yields its rows
    primary_key: str | list[str] | None
    columns: dict[str, dict[str, Any]]
    write_disposition: dict[str, Any] = MERGE


def tables() -> dict[str, Table]:
    """The resources, in this order (see the module docstring for what each holds); read when
    the source is called, so the hints are the module's at that moment. Every key starts with
    the ``account`` column."""
    key = accounts.keyed
    return {
        "sites": Table("site_rows", key("site_id"), SITE_COLUMNS),
        "site_status_history": Table(
            "status_rows", key(["site_id", "snapshot_at"]), STATUS_COLUMNS
        ),
        "snapshots": Table("snapshot_rows", key("snapshot_at"), SNAPSHOT_COLUMNS),
        # scd2: a version per entry_hash
        "schedule_entries": Table(
            "schedule_rows", None, SCHEDULE_COLUMNS, SCHEDULE_WRITE_DISPOSITION
        ),
        "assets": Table("asset_rows", key(["site_id", "asset_kind"]), ASSET_COLUMNS),
        "asset_readings": Table(
            "reading_rows", key(["site_id", "asset_kind", "snapshot_at"]), READING_COLUMNS
        ),
    }


RESOURCE_NAMES = tuple(tables())
_clients: ClientCache[HeatClient] = ClientCache()  # one session per settings, per process


@dlt.source(name=SOURCE_NAME, max_table_nesting=0)
def heat(
    base_url: str = dlt.config.value,
    api_key: str = dlt.secrets.value,
    api_version: str = DEFAULT_API_VERSION,
    concurrency: int = DEFAULT_CONCURRENCY,
    max_attempts: int = 5,
    request_timeout: float = 60.0,
    backoff_factor: float = 1.0,
    health_timeout: float = DEFAULT_HEALTH_TIMEOUT,
) -> Sequence[DltResource]:
    """One HEAT snapshot (see the module docstring for the tables).

    Args:
        base_url: the server root, e.g. ``https://heat.example.com`` (required: the API
            reference names no host). A URL ending in ``/api/v1/public`` is accepted too.
        api_key: ``agk_<id>.ags_<secret>`` (secret).
        api_version: ``v1`` (default) or ``v0``.
        concurrency: per-site detail calls in flight (1..32).
        health_timeout: seconds ``/health`` may take before HEAT counts as unavailable.
    """
    client = get_client(
        base_url,
        api_key,
        api_version=api_version,
        max_attempts=max_attempts,
        request_timeout=request_timeout,
        backoff_factor=backoff_factor,
        health_timeout=health_timeout,
    )
    if not 1 <= int(concurrency) <= MAX_CONCURRENCY:
        raise ConfigurationError(
            f"concurrency={concurrency} is out of range",
            source=SOURCE_NAME,
            hint=f"set sources.heat.concurrency to 1..{MAX_CONCURRENCY}",
        )
    client.use_stats(stats_for(SOURCE_NAME))
    client.health()  # down: raise before anything is extracted
    account = accounts.current(SOURCE_NAME)
    snapshot = Snapshot(client, int(concurrency), account)
    return [
        accounts.stamped(
            dlt.resource(
                _generator(getattr(snapshot, table.rows)),
                name=name,
                write_disposition=copy.deepcopy(table.write_disposition),
                primary_key=copy.deepcopy(table.primary_key),
                columns={**copy.deepcopy(table.columns), **accounts.columns(accounts.COLUMN)},
            ),
            {accounts.COLUMN: account},
        )
        for name, table in tables().items()
    ]


def _generator(method: Callable[[], Iterator[Any]]) -> Callable[[], Iterator[Any]]:
    """A plain function for ``dlt.resource`` (it does not take bound methods)."""

    def rows() -> Iterator[Any]:
        yield from method()

    return rows


def get_client(
    base_url: str,
    api_key: str,
    *,
    api_version: str = DEFAULT_API_VERSION,
    max_attempts: int = 5,
    request_timeout: float = 60.0,
    backoff_factor: float = 1.0,
    health_timeout: float = DEFAULT_HEALTH_TIMEOUT,
) -> HeatClient:
    """The process's client for these settings (polls reuse its connections)."""
    if not api_key or not str(api_key).strip():
        raise ConfigurationError(
            "api_key is empty",
            source=SOURCE_NAME,
            hint=f"set api_key under [sources.heat] in .dlt/secrets.toml or {API_KEY_ENV}",
        )
    if not base_url or not str(base_url).strip():
        raise ConfigurationError(
            "base_url is empty",
            source=SOURCE_NAME,
            hint="set sources.heat.base_url (SOURCES__HEAT__BASE_URL) to the server root",
        )
    api_key = str(api_key).strip()
    fingerprint = hashlib.sha256(api_key.encode()).hexdigest()
    settings = (base_url, fingerprint, api_version, max_attempts, request_timeout,
                backoff_factor, health_timeout)  # fmt: skip
    client, _ = _clients.get(
        settings,
        lambda: HeatClient(
            api_key,
            str(base_url),
            api_version=api_version,
            max_attempts=max_attempts,
            timeout=request_timeout,
            backoff_factor=backoff_factor,
            health_timeout=health_timeout,
        ),
    )
    return client


class Snapshot:
    """What one call of the source saw: the site list and the site details, each read once
    and shared by the tables, all stamped with one instant."""

    def __init__(
        self, client: HeatClient, concurrency: int, account: str = accounts.DEFAULT
    ) -> None:
        self.client = client
        self.concurrency = concurrency
        self.account = account
        self._called_at = pendulum.now("UTC")
        self._at: datetime | None = None
        self._sites: list[dict[str, Any]] | None = None
        self._details: list[tuple[str, dict[str, Any]]] | None = None
        self._details_by_id: dict[str, dict[str, Any]] | None = None
        self._watch = TypeWatch(known_columns)

    @property
    def at(self) -> datetime:
        """``snapshot_at``: the creation instant of the load package being extracted, which
        dlt also uses as the scd2 validity boundary of ``schedule_entries``."""
        if self._at is None:
            try:
                package = dlt.current.load_package_state()
            except Exception:  # outside an extraction (a bare iteration of a resource)
                package = None
            created = package["state"].get("created_at") if package else None
            self._at = pendulum.instance(created).in_tz("UTC") if created else self._called_at
        return self._at

    def sites(self) -> list[dict[str, Any]]:
        if self._sites is None:
            unique: dict[str, dict[str, Any]] = {}
            for site in self.client.sites():
                if site["siteId"] in unique:
                    logger.warning("heat: site %s is listed twice; the last one is kept",
                                   site["siteId"])  # fmt: skip
                unique[site["siteId"]] = site
            self._sites = list(unique.values())
            if not self._sites:
                logger.warning("heat: the key's access group sees no sites")
        return self._sites

    def details(self) -> list[tuple[str, dict[str, Any]]]:
        if self._details is None:
            ids = [site["siteId"] for site in self.sites()]
            self._details = list(self.client.site_details(ids, self.concurrency))
        return self._details

    def _detail(self, site_id: str) -> dict[str, Any] | None:
        if self._details_by_id is None:
            self._details_by_id = dict(self.details())
        return self._details_by_id.get(site_id)

    # -- one generator per table ------------------------------------------------------------
    def site_rows(self) -> Iterator[list[dict[str, Any]]]:
        yield from self._emit("sites", [site_row(s, self.at) for s in self.sites()])

    def status_rows(self) -> Iterator[list[dict[str, Any]]]:
        rows = [status_row(s, self.at) for s in self.sites()]
        yield from self._emit("site_status_history", rows)

    def snapshot_rows(self) -> Iterator[list[dict[str, Any]]]:
        row = {"snapshot_at": self.at, "sites_listed": len(self.sites())}
        yield from self._emit("snapshots", [row])

    def schedule_rows(self) -> Iterator[list[dict[str, Any]]]:
        rows = []
        for site in self.sites():
            # a list without the site's schedules: its detail (read anyway) may have them
            detail = self._detail(site["siteId"]) if site.get("schedules") is None else None
            rows.extend(with_entry_hash(r, self.account) for r in schedule_rows(site, detail))
        _upgrade_entry_hashes()
        yield from self._emit("schedule_entries", rows, markers=sum("asset" not in r for r in rows))

    def asset_rows(self) -> Iterator[list[dict[str, Any]]]:
        rows = [
            r for sid, d in self.details() for r in asset_rows(sid, d.get("assets"), self.at)[0]
        ]
        yield from self._emit("assets", rows)

    def reading_rows(self) -> Iterator[list[dict[str, Any]]]:
        rows = [
            r for sid, d in self.details() for r in asset_rows(sid, d.get("assets"), self.at)[1]
        ]
        yield from self._emit("asset_readings", rows)

    def _emit(
        self, table: str, rows: list[dict[str, Any]], markers: int = 0
    ) -> Iterator[list[dict[str, Any]]]:
        for row in rows:
            self._watch.check(table, row)
        changes = [c for c in self._watch.changes if c.startswith(table + ".")]
        failed = getattr(self.client, "failed_details", []) if table in ASSET_TABLES else []
        dlt.current.resource_state()["last_sync"] = {
            "until": self.at.isoformat(),  # `solarsync status` shows it as the last sync
            "rows": len(rows) - markers,
            **({"type_changes": changes} if changes else {}),
            **({"warnings": failed} if failed else {}),
        }
        logger.info("heat %s: %d rows in the snapshot of %s", table, len(rows) - markers, self.at)
        # no rows (no site has assets, the group sees no sites): the table is still created,
        # so the views and BI queries find it (empty) rather than fail
        yield rows or dlt.mark.materialize_table_schema()
        if not rows and table == "schedule_entries":
            _type_entry_hash()


ASSET_TABLES = ("assets",)  # where a run's skipped site details are reported (once)


def _type_entry_hash() -> None:
    """dlt's scd2 hint declares the row version column anew, without its type; a table created
    with no row to type it would keep ``entry_hash`` untyped, which the normalizer refuses for a
    NOT NULL column. Called once the (empty) table is in the schema."""
    columns = known_columns("schedule_entries")
    if ENTRY_HASH_COLUMN in columns:
        columns[ENTRY_HASH_COLUMN].setdefault("data_type", "text")


def _upgrade_entry_hashes() -> None:
    """Before the first snapshot with ``entry_hash`` is loaded into a warehouse written without
    it, its stored rows get theirs (:mod:`sources.heat.upgrade`); once per warehouse."""
    state = dlt.current.resource_state()
    if state.get("entry_hash") == ENTRY_HASH_VERSION:
        return
    context = Container()[PipelineContext]
    pipeline = context.pipeline() if context.is_active() else None
    if pipeline is None or pipeline.destination is None:
        return  # iterated outside a pipeline: nothing stored to upgrade
    fill_entry_hashes(pipeline)
    state["entry_hash"] = ENTRY_HASH_VERSION


@with_config(sections=("sources", SOURCE_NAME))
def check(
    base_url: str = dlt.config.value,
    api_key: str = dlt.secrets.value,
    api_version: str = DEFAULT_API_VERSION,
) -> list[tuple[str, str]]:
    """``/health``, the site list and one site's details, once each; loads nothing."""
    client = get_client(base_url, api_key, api_version=api_version, max_attempts=2)
    client.health()
    found = [("/health", "operational")]
    sites = client.sites()
    found.append((f"/{client.sites_path}", f"{len(sites)} site(s) visible to the key"))
    if sites:
        detail = client.site(sites[0]["siteId"])
        assets = (detail or {}).get("assets") or {}
        found.append((f"/{client.sites_path}/{{siteId}}", f"reachable, {len(assets)} asset(s)"))
    return found


__all__ = ["RESOURCE_NAMES", "Snapshot", "check", "get_client", "heat"]
