"""Lead attachments: the files behind ``leads[].attachments``, copied into a blob store.

Table ``lead_attachments`` (key ``lead_id, file_id``; merge), one row per attachment a lead has
or had: the metadata (``file_name``, ``mime_type``, declared ``size``, ``uploaded_at``,
``uploaded_by``), the version of the lead it reflects (``lead_updated_at``), where the bytes are
(``blob_path``, ``sha256`` and ``bytes_stored`` of the stored bytes, ``downloaded_at``) and a
``status``: ``stored``; ``failed`` (``reason`` says why; retried on later runs); ``skipped``
(a configured limit: ``max_file_size``, ``allowed_mime_types``); ``removed`` (gone from its lead,
or the lead was deleted; an existing blob is kept unless ``purge_removed``).

How a run works:

* a transformer on the ``leads`` resource walks the attachments of the leads in the current
  window only; a second resource (``lead_attachment_retries``, same table) retries what failed
  on earlier runs, kept in dlt source state (``lead_attachments``: ids and metadata of failures
  only, committed with the load package like every checkpoint);
* the previous attachment set of those leads is read from the warehouse table (that is how a
  file that vanished from a lead is marked ``removed`` without keeping every lead in state);
* a file whose blob already exists with the declared size is not downloaded again; a changed
  size or a missing blob is fetched again;
* downloads stream (1 MiB reads) through the source's :class:`~sources.common.ApiClient`, so
  they share the key's rate limiter, retries and error mapping with the list reads; a bounded
  thread pool (``max_concurrency``) runs them; bytes land in a temporary object and are moved to
  ``<lead_id>/<file_id>`` only once complete and of the right size (see ``sources.common.
  blobstore``);
* 401/402/403 stop the source like any other call; 404 and exhausted 5xx/network retries mark
  the file ``failed`` and the run goes on.
"""

from __future__ import annotations

import logging
import os
import threading
from collections import Counter
from collections.abc import Collection, Iterable, Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor, as_completed
from dataclasses import asdict, dataclass, fields
from datetime import datetime
from pathlib import Path
from typing import Any, Dict, List, Optional  # noqa: UP035  (dlt resolves these annotations)
from urllib.parse import quote, urlsplit

import dlt
import orjson
import pendulum
import pyarrow as pa
from dlt.common.configuration import configspec
from dlt.common.configuration.specs import BaseConfiguration
from dlt.destinations.exceptions import DatabaseUndefinedRelation
from dlt.sources import DltResource
from requests import RequestException, Response
from urllib3.exceptions import HTTPError as Urllib3Error

from sources.common import (
    ApiError,
    AuthenticationError,
    ConfigurationError,
    SolarsyncError,
    SourceUnavailableError,
    register_secret,
)
from sources.common.blobstore import BlobStore
from sources.solarknock.client import SolarKnockClient
from sources.solarknock.settings import (
    ATTACHMENT_RETRIES_RESOURCE,
    ATTACHMENTS_PATH,
    ATTACHMENTS_TABLE,
    DEFAULT_BLOB_DIR,
    DEFAULT_DOWNLOAD_CONCURRENCY,
    DOWNLOAD_CHUNK_SIZE,
    MAX_ATTACHMENT_RETRY_RUNS,
    SOURCE_NAME,
)

logger = logging.getLogger("solarsync.solarknock")

STORED, FAILED, REMOVED, SKIPPED = "stored", "failed", "removed", "skipped"
#: the download must not ask for JSON: the shared layer validates JSON bodies by Accept
DOWNLOAD_HEADERS = {"Accept": "*/*", "Accept-Encoding": "identity"}
BLOB_FIELDS = ("blob_path", "sha256", "bytes_stored", "downloaded_at")
MAX_BACKOFF_S = 30.0


def _col(data_type: str, nullable: bool = True, **hints: Any) -> dict[str, Any]:
    return {"data_type": data_type, "nullable": nullable, **hints}  # a fresh dict: dlt edits it


COLUMNS: dict[str, dict[str, Any]] = {
    "lead_id": _col("text", False),
    "file_id": _col("text", False),
    "file_name": _col("text"),
    "mime_type": _col("text"),
    "size": _col("bigint"),
    "uploaded_at": _col("timestamp"),
    "uploaded_by": _col("text"),
    # two rows of one file in one load (a lead changed mid-run): the newest lead version wins
    "lead_updated_at": _col("timestamp", dedup_sort="desc"),
    "status": _col("text", False),
    "reason": _col("text"),
    "blob_path": _col("text"),
    "sha256": _col("text"),
    "bytes_stored": _col("bigint"),
    "downloaded_at": _col("timestamp"),
}


@configspec
class AttachmentsConfig(BaseConfiguration):
    """``[sources.solarknock.attachments]`` / ``SOURCES__SOLARKNOCK__ATTACHMENTS__<FIELD>``."""

    enabled: bool = True
    #: fsspec URL or path of the blob root; default ``<warehouse dir>/blobs/solarknock``
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


class _Transient(Exception):
    """A download that may work if tried again now (cut connection, short body)."""

    def __init__(self, reason: str, kind: str = "network") -> None:
        super().__init__(reason)
        self.reason, self.kind = reason, kind


class _Outcome(Exception):
    """The file cannot be stored this run: ``status`` (failed/skipped) and why."""

    def __init__(self, status: str, reason: str) -> None:
        super().__init__(reason)
        self.status, self.reason = status, reason


class _Cancelled(Exception):
    """The source is stopping (a fatal error elsewhere)."""


class AttachmentSync:
    """The attachment side of one source run; the resources call :meth:`for_leads` (per page
    of leads) and :meth:`retry_failed` (once)."""

    def __init__(
        self,
        client: SolarKnockClient,
        config: AttachmentsConfig,
        *,
        max_attempts: int = 5,
        backoff_factor: float = 1.0,
    ) -> None:
        self.api = client.api
        self.config = config
        self.concurrency = max(1, int(config.max_concurrency or 1))
        self.max_attempts = max(1, int(max_attempts))
        self.backoff_factor = max(0.0, float(backoff_factor))
        self.max_file_size = config.max_file_size
        self.allowed = tuple(_mime_base(m) for m in config.allowed_mime_types or () if m)
        for value in (config.storage_options or {}).values():
            register_secret(value)
        self._slots = threading.BoundedSemaphore(self.concurrency)  # one bound for all pools
        self._stop = threading.Event()
        self._fatal: BaseException | None = None
        self._loaded_before: bool | None = None
        self._store: BlobStore | None = None
        self._pending: dict[tuple[str, str], Attachment] | None = None  # earlier failures
        self._retrying: dict[tuple[str, str], Attachment] = {}  # what retry_failed took
        self._seen: dict[str, tuple[str, ...]] = {}  # lead -> files handled this run
        self._lock = threading.Lock()
        self.counts: Counter[str] = Counter()
        self._warned_foreign_url = False

    # -- resources ----------------------------------------------------------------------
    def for_leads(self, page: Any) -> Iterator[dict[str, Any]]:
        """Rows for the attachments of one page of leads (removed ones included)."""
        leads = _lead_rows(page)
        if not leads:
            return
        pending = self._pending_retries()
        previous = self._previous({str(lead["id"]) for lead in leads})
        immediate: list[dict[str, Any]] = []
        work: list[tuple[Attachment, dict[str, Any] | None]] = []
        for lead in leads:
            lead_id, version = str(lead["id"]), lead.get("updated_at")
            current: dict[str, Attachment] = {}
            for raw in _attachment_list(lead.get("attachments")):
                att = Attachment.from_api(lead_id, raw, version)
                if att is None:
                    self._count("invalid")
                    logger.warning(
                        "solarknock lead %s: an attachment without an id, ignored", lead_id
                    )
                    continue
                current[att.file_id] = att
            known = previous.get(lead_id, {})
            earlier = set(self._seen.get(lead_id, ())) | set(known)
            if current or earlier:
                self._seen[lead_id] = tuple(current)
            deleted = bool(lead.get("deleted_at"))
            for file_id in sorted(earlier | (set(current) if deleted else set())):
                if file_id in current and not deleted:
                    continue
                old = known.get(file_id)
                if old is not None and old.get("status") == REMOVED and file_id not in current:
                    continue  # already recorded as removed
                pending.pop((lead_id, file_id), None)
                why = "the lead was deleted" if deleted else "no longer attached to the lead"
                immediate.append(
                    self._removed(current.get(file_id), old, lead_id, file_id, version, why)
                )
            if deleted:
                continue
            for att in current.values():
                key = (lead_id, att.file_id)
                pending.pop(key, None)  # the window covers it: no separate retry
                if self._retrying.get(key) == att:
                    continue  # this very version was retried earlier in this run
                work.append((att, known.get(att.file_id)))
        for row in immediate:
            yield self._record(row, None)
        yield from self._run(work, f"{len(leads)} leads")

    def retry_failed(self) -> Iterator[dict[str, Any]]:
        """Rows for the files that failed on earlier runs and are not in this run's window."""
        pending = self._pending_retries()
        items = list(pending.values())
        pending.clear()
        if not items:
            return
        for att in items:
            self._retrying[(att.lead_id, att.file_id)] = att
        previous = self._previous({att.lead_id for att in items})
        work = [(att, previous.get(att.lead_id, {}).get(att.file_id)) for att in items]
        yield from self._run(work, "earlier failures")

    # -- running the downloads ----------------------------------------------------------
    def _run(
        self, work: list[tuple[Attachment, dict[str, Any] | None]], what: str
    ) -> Iterator[dict[str, Any]]:
        if not work:
            return
        self.store  # noqa: B018  (create the root in this thread, before the workers)
        before = self.counts.copy()
        with ThreadPoolExecutor(
            max_workers=min(self.concurrency, len(work)), thread_name_prefix="solarknock-files"
        ) as pool:
            futures: dict[Future[dict[str, Any]], Attachment] = {
                pool.submit(self._process, att, prev): att for att, prev in work
            }
            try:
                for future in as_completed(futures):
                    try:
                        row = future.result()
                    except _Cancelled:
                        if self._fatal is not None:
                            raise self._fatal from None
                        raise
                    yield self._record(row, futures[future])
            except BaseException:
                self._stop.set()  # in-flight downloads stop at their next chunk
                for future in futures:
                    future.cancel()
                raise
        done = self.counts - before
        logger.info(
            "solarknock %s (%s): %d downloaded (%d bytes), %d already stored, %d failed, "
            "%d skipped",
            ATTACHMENTS_TABLE,
            what,
            done["downloaded"],
            done["bytes"],
            done["reused"] + done["verified"],
            done["failed"],
            done["skipped"],
        )

    def _process(self, att: Attachment, prev: dict[str, Any] | None) -> dict[str, Any]:
        with self._slots:
            if self._stop.is_set():
                raise _Cancelled
            try:
                return self._process_one(att, prev)
            except BaseException as exc:  # fatal for the source (401/402/403, a bug)
                if not isinstance(exc, _Cancelled) and self._fatal is None:
                    self._fatal = exc
                self._stop.set()  # the queued files are not even requested
                raise

    def _process_one(self, att: Attachment, prev: dict[str, Any] | None) -> dict[str, Any]:
        try:
            return self._store_file(att, prev)
        except OSError as exc:  # the blob store failed (unreachable, permissions, disk)
            if isinstance(exc, RequestException):
                raise
            self._count(FAILED)
            return att.row(FAILED, f"blob store: {exc.strerror or exc}")

    def _store_file(self, att: Attachment, prev: dict[str, Any] | None) -> dict[str, Any]:
        store = self.store
        key = store.key(att.lead_id, att.file_id)
        location = store.location(key)
        existing = store.size(key)
        kept = _kept_blob(prev, location, existing)
        skip = self._skip_reason(att.size, att.mime_type)
        if skip:
            self._count("skipped")
            return att.row(SKIPPED, skip, kept)
        if existing is not None and (att.size is None or existing == att.size):
            if kept is not None and kept.get("sha256"):
                self._count("reused")
                return att.row(STORED, None, kept)
            if att.size is not None:  # only complete, size-checked bytes ever reach a key
                self._count("verified")
                mtime = store.modified(key)
                return att.row(
                    STORED,
                    None,
                    {
                        "blob_path": location,
                        "sha256": store.sha256(key),
                        "bytes_stored": existing,
                        "downloaded_at": pendulum.from_timestamp(mtime) if mtime else _now(),
                    },
                )
        try:
            blob = self._download(att, key)
        except _Outcome as outcome:
            self._count(outcome.status)
            return att.row(outcome.status, outcome.reason, kept)
        self._count("downloaded")
        self._count("bytes", blob["bytes_stored"])
        return att.row(STORED, None, blob)

    def _download(self, att: Attachment, key: str) -> dict[str, Any]:
        url = self._url(att)
        mismatches = 0
        last: _Transient | None = None
        attempt = 0
        for attempt in range(1, self.max_attempts + 1):
            try:
                return self._fetch(att, key, url)
            except _Transient as exc:
                last = exc
                if exc.kind == "size":
                    mismatches += 1
                    if mismatches >= 2:  # the server consistently serves another size
                        break
                if attempt < self.max_attempts:
                    delay = min(self.backoff_factor * 2 ** (attempt - 1), MAX_BACKOFF_S)
                    logger.warning(
                        "solarknock GET /%s/%s/%s: %s; retrying in %.1fs (attempt %d)",
                        ATTACHMENTS_PATH,
                        att.lead_id,
                        att.file_id,
                        exc.reason,
                        delay,
                        attempt + 1,
                    )
                    if self._stop.wait(delay):
                        raise _Cancelled from None
        assert last is not None
        raise _Outcome(FAILED, f"{last.reason} (after {attempt} attempts)")

    def _fetch(self, att: Attachment, key: str, url: str) -> dict[str, Any]:
        """One GET of the file into the blob store; the blob dict on success."""
        try:
            response = self.api.get(url, headers=DOWNLOAD_HEADERS, stream=True)
        except (AuthenticationError, ConfigurationError):
            raise  # 401/402/403: the source stops, like any other call
        except SourceUnavailableError as exc:  # 5xx / network, already retried by the client
            raise _Outcome(FAILED, _reason(exc)) from None
        except ApiError as exc:
            if exc.status in (404, 410):
                why = "not found on the server (vanished, or another org's)"
                raise _Outcome(FAILED, _reason(exc, why)) from None
            raise _Outcome(FAILED, _reason(exc)) from None
        except SolarsyncError as exc:  # anything else the client maps: this file only
            raise _Outcome(FAILED, _reason(exc)) from None
        try:
            return self._receive(att, key, response)
        finally:
            response.close()

    def _receive(self, att: Attachment, key: str, response: Response) -> dict[str, Any]:
        expected = _content_length(response)
        if expected is not None:
            why = self._skip_reason(expected, None, check_mime=False)
            if why:
                raise _Outcome(SKIPPED, f"the server announces {expected} bytes: {why}")
        limit = self.max_file_size
        try:
            with self.store.receive(key) as blob:
                for chunk in response.iter_content(DOWNLOAD_CHUNK_SIZE):
                    if self._stop.is_set():
                        raise _Cancelled
                    blob.write(chunk)
                    if limit is not None and blob.size > limit:
                        raise _Outcome(SKIPPED, f"more than max_file_size ({limit} bytes) served")
                if expected is not None and blob.size != expected:
                    raise _Transient(f"body ended after {blob.size} of {expected} bytes", "short")
                if att.size is not None and blob.size != att.size:
                    raise _Transient(
                        f"served {blob.size} bytes but the lead declares {att.size}", "size"
                    )
                location = blob.commit()
                digest, size = blob.sha256, blob.size
        except (RequestException, Urllib3Error) as exc:  # the body was cut: retry
            raise _Transient(f"download interrupted ({type(exc).__name__})") from None
        except OSError as exc:  # the blob store failed (disk full, permissions, ...)
            raise _Outcome(FAILED, f"blob store: {exc.strerror or exc}") from None
        self.api.stats.add(bytes_received=size)
        return {
            "blob_path": location,
            "sha256": digest,
            "bytes_stored": size,
            "downloaded_at": _now(),
        }

    # -- helpers ------------------------------------------------------------------------
    @property
    def store(self) -> BlobStore:
        if self._store is None:
            url = self.config.blob_url or default_blob_url()
            try:
                self._store = BlobStore(url, self.config.storage_options)
            except (OSError, ValueError) as exc:
                raise ConfigurationError(
                    f"cannot use the blob store ({type(exc).__name__}: {exc})",
                    source=SOURCE_NAME,
                    endpoint="/" + ATTACHMENTS_PATH,
                    hint="check sources.solarknock.attachments.blob_url and its permissions",
                ) from None
            swept = self._store.sweep_incoming()
            if swept:
                logger.warning(
                    "solarknock: removed %d incomplete download(s) left by a killed run", swept
                )
        return self._store

    def _url(self, att: Attachment) -> str:
        """``download_url`` when it is on the API's own origin, else the documented path: the
        Bearer key is never sent to another host. Ids that need escaping (``a/b``, ``..``)
        always use the documented path, escaped, which names exactly this file."""
        lead, file = _segment(att.lead_id), _segment(att.file_id)
        path = f"{ATTACHMENTS_PATH}/{lead}/{file}"
        url = att.download_url
        if not url or (lead, file) != (att.lead_id, att.file_id):
            return path
        ours, theirs = urlsplit(self.api.base_url), urlsplit(url)
        same_origin = (theirs.scheme, theirs.netloc.lower()) == (ours.scheme, ours.netloc.lower())
        if theirs.scheme in ("http", "https") and same_origin:
            return url
        if not self._warned_foreign_url:
            self._warned_foreign_url = True
            logger.warning(
                "solarknock: a download_url is not on %s; using the documented /%s path "
                "instead (the key is only sent to the API's own host)",
                ours.netloc,
                ATTACHMENTS_PATH,
            )
        return path

    def _skip_reason(
        self, size: int | None, mime_type: str | None, check_mime: bool = True
    ) -> str | None:
        if self.max_file_size is not None and size is not None and size > self.max_file_size:
            return f"{size} bytes is over max_file_size ({self.max_file_size})"
        if check_mime and self.allowed and not _mime_allowed(mime_type, self.allowed):
            return f"mime type {mime_type!r} is not in allowed_mime_types"
        return None

    def _removed(
        self,
        att: Attachment | None,
        old: dict[str, Any] | None,
        lead_id: str,
        file_id: str,
        version: Any,
        why: str,
    ) -> dict[str, Any]:
        version = _str_or_none(version)
        if att is None:
            att = (
                Attachment.from_mapping(old, lead_updated_at=version)
                if old is not None
                else Attachment(lead_id, file_id, lead_updated_at=version)
            )
        store = self.store
        key = store.key(lead_id, file_id)
        kept = _kept_blob(old, store.location(key), store.size(key)) if old else None
        if old is None:  # seen earlier in this run only: describe what is at the key
            size = store.size(key)
            if size is not None:
                kept = {
                    "blob_path": store.location(key),
                    "sha256": store.sha256(key),
                    "bytes_stored": size,
                    "downloaded_at": None,
                }
        if self.config.purge_removed and store.remove(key):
            kept, why = None, f"{why}; blob deleted"
        self._count("removed")
        return att.row(REMOVED, why, kept)

    def _record(self, row: dict[str, Any], att: Attachment | None) -> dict[str, Any]:
        """Keep the retry set in state (main thread only) and return the row."""
        self._had_rows()
        state = _state()
        state["loaded"] = True
        failed: dict[str, dict[str, Any]] = state.setdefault("failed", {})
        lead_id, file_id = row["lead_id"], row["file_id"]
        files = failed.get(lead_id, {})
        if row["status"] == FAILED and att is not None:
            runs = int((files.get(file_id) or {}).get("runs", 0)) + 1
            if runs >= MAX_ATTACHMENT_RETRY_RUNS:
                files.pop(file_id, None)
                row["reason"] = (
                    f"{row['reason']}; failed {runs} runs, retried when the lead changes"
                )
            else:
                files[file_id] = {"runs": runs, "attachment": att.as_state()}
                failed[lead_id] = files
        else:
            files.pop(file_id, None)
        if not files:
            failed.pop(lead_id, None)
        return row

    def _pending_retries(self) -> dict[tuple[str, str], Attachment]:
        if self._pending is None:
            failed = _state().get("failed") or {}
            self._pending = {}
            for lead_id, files in failed.items():
                for file_id, entry in (files or {}).items():
                    data = (entry or {}).get("attachment") or {}
                    self._pending[(lead_id, file_id)] = Attachment.from_mapping(
                        data, lead_id=lead_id, file_id=file_id
                    )
        return self._pending

    def _previous(self, lead_ids: Collection[str]) -> dict[str, dict[str, dict[str, Any]]]:
        """What the warehouse recorded for these leads' files: lead -> file -> row."""
        if not lead_ids or not self._had_rows():
            return {}
        out: dict[str, dict[str, dict[str, Any]]] = {}
        ids = sorted(lead_ids)
        try:
            with dlt.current.pipeline().sql_client() as client:
                table = client.make_qualified_table_name(ATTACHMENTS_TABLE)
                for start in range(0, len(ids), 500):
                    chunk = ids[start : start + 500]
                    marks = ", ".join(["%s"] * len(chunk))
                    # SELECT *: dlt creates a column only once it has held a value
                    sql = f"SELECT * FROM {table} WHERE lead_id IN ({marks})"
                    with client.execute_query(sql, *chunk) as cursor:
                        names = [d[0] for d in cursor.description]
                        for values in cursor.fetchall():
                            row = dict(zip(names, values, strict=True))
                            out.setdefault(str(row["lead_id"]), {})[str(row["file_id"])] = row
        except DatabaseUndefinedRelation:
            logger.warning("solarknock: no %s table in the warehouse yet", ATTACHMENTS_TABLE)
            return {}
        return out

    def _had_rows(self) -> bool:
        """Whether an earlier run loaded rows (read once: this run's rows are not loaded yet)."""
        if self._loaded_before is None:
            self._loaded_before = bool(_state().get("loaded"))
        return self._loaded_before

    def _count(self, name: str, n: int = 1) -> None:
        with self._lock:
            self.counts[name] += n


def attachment_resources(
    client: SolarKnockClient,
    leads: DltResource,
    config: AttachmentsConfig | None = None,
    *,
    max_attempts: int = 5,
    backoff_factor: float = 1.0,
) -> list[DltResource]:
    """``lead_attachments`` (a transformer on ``leads``) and ``lead_attachment_retries``."""
    sync = AttachmentSync(
        client,
        config or AttachmentsConfig(),
        max_attempts=max_attempts,
        backoff_factor=backoff_factor,
    )

    def hints() -> dict[str, Any]:
        return {
            "write_disposition": {"disposition": "merge", "strategy": "delete-insert"},
            "primary_key": ["lead_id", "file_id"],
            "columns": {name: dict(column) for name, column in COLUMNS.items()},
        }

    def lead_attachments(page: Any) -> Iterator[dict[str, Any]]:
        yield from sync.for_leads(page)

    def lead_attachment_retries() -> Iterator[dict[str, Any]]:
        yield from sync.retry_failed()

    return [
        dlt.transformer(lead_attachments, data_from=leads, name=ATTACHMENTS_TABLE, **hints()),
        dlt.resource(
            lead_attachment_retries,
            name=ATTACHMENT_RETRIES_RESOURCE,
            table_name=ATTACHMENTS_TABLE,
            **hints(),
        ),
    ]


def default_blob_url() -> str:
    """``<warehouse dir>/blobs/solarknock``; a warehouse file not named ``solarsync.duckdb``
    (the demo's, a test's) gets ``<dir>/blobs/<its name>/solarknock`` so files never mix."""
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


# --------------------------------------------------------------------------- small helpers
def _state() -> dict[str, Any]:
    """``lead_attachments`` state, shared by the two resources that write the table: in the
    source state (not under ``resources``, where every entry is a list table's checkpoint)."""
    return dlt.current.source_state().setdefault(ATTACHMENTS_TABLE, {})


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


__all__ = [
    "COLUMNS",
    "Attachment",
    "AttachmentSync",
    "AttachmentsConfig",
    "attachment_resources",
    "default_blob_url",
]
