"""What the running pipeline provides to the attachments: their entry in the source state and
the default blob root, which the destination in use decides (see docs/sources/solarknock.md,
"Attachments")."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import dlt

from sources.common.blobstore import BlobRoot, current_default_root, key_part
from sources.solarknock.settings import ATTACHMENTS_TABLE, DEFAULT_BLOB_DIR, SOURCE_NAME


def default_blob_root() -> BlobRoot:
    """Where the files go without ``blob_url``: the ``solarknock`` folder of the blob root the
    destination in use set for the run (``Warehouse.blob_root``); for this source run by
    anything else, next to the DuckDB warehouse (:func:`default_blob_url`)."""
    root = current_default_root()
    if root is not None:
        return root.child(SOURCE_NAME)
    return BlobRoot(default_blob_url())


def default_blob_url() -> str:
    """Outside a solarsync run: ``<warehouse dir>/blobs/solarknock`` of the DuckDB warehouse
    the running dlt pipeline loads (or the configured one); a warehouse file not named
    ``solarsync.duckdb`` (the demo's, a test's) gets ``<dir>/blobs/<its name>/solarknock``."""
    warehouse: str | None = None
    try:
        destination = dlt.current.pipeline().destination
        credentials = destination.config_params.get("credentials") if destination else None
        if isinstance(credentials, str | os.PathLike):
            warehouse = str(credentials)
    except Exception:  # no active pipeline (a source iterated on its own)
        warehouse = None
    if not warehouse:
        configured = dlt.config.get("destination.duckdb.credentials")
        warehouse = configured if isinstance(configured, str) else None
    for prefix in ("duckdb:///", "duckdb://"):
        if warehouse and warehouse.startswith(prefix):
            warehouse = warehouse[len(prefix) :]
    if not warehouse or warehouse == ":memory:" or "://" in warehouse:
        return str(Path("warehouse", DEFAULT_BLOB_DIR, SOURCE_NAME).resolve())
    path = Path(warehouse)
    base = path.parent / DEFAULT_BLOB_DIR
    if path.stem != "solarsync":
        base = base / path.stem
    return str((base / SOURCE_NAME).resolve())


#: under the blob root of the source: the files of each org of a named account (``_`` never
#: starts a key part, so no lead id of the default account's ``<lead_id>/<file_id>`` meets it)
ORGS_FOLDER = "_orgs"


def account_blob_url(url: str, org_id: str) -> str:
    """The root of one org's files under ``url`` (the default account keeps ``url`` itself, as
    before accounts): ``<url>/_orgs/<org_id>``, so two orgs' equal lead and file ids never
    share a blob."""
    return f"{url.rstrip('/')}/{ORGS_FOLDER}/{key_part(org_id)}"


def _state() -> dict[str, Any]:
    """``lead_attachments`` state, shared by the two resources that write the table: in the
    source state (not under ``resources``, where every entry is a list table's checkpoint)."""
    return dlt.current.source_state().setdefault(ATTACHMENTS_TABLE, {})
