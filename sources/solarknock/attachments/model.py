"""What a lead attachment is: the ``lead_attachments`` columns, the config spec, the
:class:`Attachment` record and the small pure helpers that read API and warehouse values."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, fields
from datetime import datetime
from typing import Any, Dict, List, Optional  # noqa: UP035  (dlt resolves these annotations)
from urllib.parse import quote

import orjson
import pendulum
import pyarrow as pa
from dlt.common.configuration import configspec
from dlt.common.configuration.specs import BaseConfiguration
from requests import Response

from sources.common import SolarsyncError
from sources.common.columns import column
from sources.solarknock.settings import DEFAULT_DOWNLOAD_CONCURRENCY

STORED, FAILED, REMOVED, SKIPPED = "stored", "failed", "removed", "skipped"
#: a file of a lead that was already deleted when solarsync first saw it: never stored
SKIPPED_DELETED = "skipped_deleted"
BLOB_FIELDS = ("blob_path", "sha256", "bytes_stored", "downloaded_at")


COLUMNS: dict[str, dict[str, Any]] = {
    "lead_id": column("text", False),
    "file_id": column("text", False),
    "file_name": column("text"),
    "mime_type": column("text"),
    "size": column("bigint"),
    "uploaded_at": column("timestamp"),
    "uploaded_by": column("text"),
    # two rows of one file in one load (a lead changed mid-run): the newest lead version wins
    "lead_updated_at": column("timestamp", dedup_sort="desc"),
    "status": column("text", False),
    "reason": column("text"),
    "blob_path": column("text"),
    "sha256": column("text"),
    "bytes_stored": column("bigint"),
    "downloaded_at": column("timestamp"),
}


@configspec
class AttachmentsConfig(BaseConfiguration):
    """``[sources.solarknock.attachments]`` / ``SOURCES__SOLARKNOCK__ATTACHMENTS__<FIELD>``."""

    enabled: bool = True
    #: fsspec URL or path of the blob root; default: the destination's
    #: (docs/sources/solarknock.md, "Attachments")
    blob_url: Optional[str] = None  # noqa: UP045
    #: fsspec options for a remote store (credentials: put them in secrets.toml)
    storage_options: Optional[Dict[str, Any]] = None  # noqa: UP006, UP045
    max_concurrency: int = DEFAULT_DOWNLOAD_CONCURRENCY
    #: bytes; larger files are recorded as skipped
    max_file_size: Optional[int] = None  # noqa: UP045
    #: e.g. ["application/pdf", "image/*"]; other types are recorded as skipped
    allowed_mime_types: Optional[List[str]] = None  # noqa: UP006, UP045
    #: delete the blob of an attachment that was removed from its lead (default: keep it)
    purge_removed: bool = False


@dataclass(frozen=True, slots=True)
class Attachment:
    """One file of one lead, as the lead row described it."""

    lead_id: str
    file_id: str
    file_name: str | None = None
    mime_type: str | None = None
    size: int | None = None
    uploaded_at: str | None = None
    uploaded_by: str | None = None
    download_url: str | None = None
    lead_updated_at: str | None = None

    @classmethod
    def from_api(cls, lead_id: str, raw: Any, lead_updated_at: Any) -> Attachment | None:
        if not isinstance(raw, dict):
            return None
        file_id = raw.get("id")
        if file_id is None or isinstance(file_id, bool) or str(file_id) == "":
            return None
        return cls(
            lead_id=lead_id,
            file_id=str(file_id),
            file_name=_str_or_none(raw.get("fileName", raw.get("file_name"))),
            mime_type=_str_or_none(raw.get("mimeType", raw.get("mime_type"))),
            size=_size(raw.get("size")),
            uploaded_at=_str_or_none(raw.get("uploadedAt", raw.get("uploaded_at"))),
            uploaded_by=_str_or_none(raw.get("uploadedBy", raw.get("uploaded_by"))),
            download_url=_str_or_none(raw.get("download_url", raw.get("downloadUrl"))),
            lead_updated_at=_str_or_none(lead_updated_at),
        )

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any], **override: Any) -> Attachment:
        names = {f.name for f in fields(cls)}
        values = {k: _plain(v) for k, v in data.items() if k in names}
        return cls(**{**values, **override})

    def as_state(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if v is not None}

    def row(
        self, status: str, reason: str | None = None, blob: Mapping[str, Any] | None = None
    ) -> dict[str, Any]:
        row = {k: v for k, v in asdict(self).items() if k != "download_url"}
        row["status"], row["reason"] = status, reason
        for name in BLOB_FIELDS:
            row[name] = (blob or {}).get(name)
        return row


def _lead_rows(page: Any) -> list[dict[str, Any]]:
    data = getattr(page, "data", page)  # a page carrying dlt hints wraps the rows
    if isinstance(data, pa.Table):  # the leads resource yields one Arrow table per page
        wanted = [
            c for c in ("id", "updated_at", "deleted_at", "attachments") if c in data.column_names
        ]
        rows = data.select(wanted).to_pylist()
        for row in rows:
            if isinstance(row.get("updated_at"), datetime):
                row["updated_at"] = row["updated_at"].isoformat()
        return [r for r in rows if r.get("id") is not None]
    rows = [data] if isinstance(data, dict) else list(data or ())
    return [r for r in rows if isinstance(r, dict) and r.get("id") is not None]


def _attachment_list(value: Any) -> list[Any]:
    if isinstance(value, str | bytes) and value.strip():
        try:
            value = orjson.loads(value)  # "attachments (JSON array)" sent as a string
        except orjson.JSONDecodeError:
            return []
    return value if isinstance(value, list) else []


def _kept_blob(
    prev: Mapping[str, Any] | None, location: str, existing: int | None
) -> dict[str, Any] | None:
    """The previous row's blob fields, if that blob is still what sits at the key."""
    if not prev or existing is None or prev.get("blob_path") != location:
        return None
    if prev.get("bytes_stored") is None or int(prev["bytes_stored"]) != existing:
        return None
    return {name: prev.get(name) for name in BLOB_FIELDS}


def _content_length(response: Response) -> int | None:
    if response.headers.get("Content-Encoding", "identity").lower() not in ("", "identity"):
        return None  # the length is of the encoded body
    try:
        value = int(response.headers.get("Content-Length", ""))
    except ValueError:
        return None
    return value if value >= 0 else None


def _reason(exc: SolarsyncError, what: str | None = None) -> str:
    tag = " ".join(str(p) for p in (exc.status, exc.code) if p is not None)
    return f"{what or exc.detail} [HTTP {tag}]" if tag else (what or exc.detail)


def _segment(value: str) -> str:
    """One URL path segment; ``.``/``..`` escaped too (URL parsers would resolve them)."""
    text = quote(value, safe="")
    return text.replace(".", "%2E") if text in (".", "..") else text


def _mime_base(value: str) -> str:
    return value.split(";", 1)[0].strip().lower()


def _mime_allowed(mime_type: str | None, allowed: Iterable[str]) -> bool:
    if not mime_type:
        return False
    mime = _mime_base(mime_type)
    for pattern in allowed:
        if pattern == mime or pattern in ("*", "*/*"):
            return True
        if pattern.endswith("/*") and mime.startswith(pattern[:-1]):
            return True
    return False


def _size(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if value >= 0 else None
    if isinstance(value, float) and value.is_integer() and value >= 0:
        return int(value)
    if isinstance(value, str) and value.strip().isdigit():
        return int(value.strip())
    return None


def _str_or_none(value: Any) -> str | None:
    if value is None:
        return None
    return value if isinstance(value, str) else str(value)


def _plain(value: Any) -> Any:
    """Warehouse values (datetimes) back to the strings the API sends."""
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return value


def _now() -> pendulum.DateTime:
    return pendulum.now("UTC")
