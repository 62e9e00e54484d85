"""The attachment side of one source run: walk the leads of a page, compare with what the
warehouse recorded, run the per-file downloads (``download``) in a bounded pool and keep the
retry set of failed files in source state."""

from __future__ import annotations

import logging
import threading
from collections import Counter
from collections.abc import Collection, Iterator
from concurrent.futures import Future, ThreadPoolExecutor, as_completed
from typing import Any

import dlt
from dlt.destinations.exceptions import DatabaseUndefinedRelation

from sources.common import ConfigurationError, accounts, register_secret
from sources.common.blobstore import BlobStore
from sources.solarknock.attachments.download import FileDownloads, _Cancelled
from sources.solarknock.attachments.model import (
    FAILED,
    REMOVED,
    SKIPPED_DELETED,
    Attachment,
    AttachmentsConfig,
    _attachment_list,
    _kept_blob,
    _lead_rows,
    _mime_base,
    _str_or_none,
)
from sources.solarknock.attachments.runtime import _state, account_blob_url, default_blob_root
from sources.solarknock.client import SolarKnockClient
from sources.solarknock.settings import (
    ATTACHMENTS_PATH,
    ATTACHMENTS_TABLE,
    MAX_ATTACHMENT_RETRY_RUNS,
    ORG_ID_COLUMN,
    SOURCE_NAME,
)

logger = logging.getLogger("solarsync.solarknock")


class AttachmentSync(FileDownloads):
    """The attachment side of one source run; the resources call :meth:`for_leads` (per page
    of leads) and :meth:`retry_failed` (once)."""

    def __init__(
        self,
        client: SolarKnockClient,
        config: AttachmentsConfig,
        *,
        max_attempts: int = 5,
        backoff_factor: float = 1.0,
        account: str = accounts.DEFAULT,
    ) -> None:
        self.client = client
        self.account = account
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
                status = old.get("status") if old is not None else None
                if status in (REMOVED, SKIPPED_DELETED) and file_id not in current:
                    continue  # already recorded as removed (or as never stored)
                pending.pop((lead_id, file_id), None)
                if deleted and file_id in current and status in (None, SKIPPED_DELETED):
                    immediate.append(self._never_stored(current[file_id], old, version))
                    continue
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

    # -- helpers ------------------------------------------------------------------------
    @property
    def store(self) -> BlobStore:
        if self._store is None:
            if self.config.blob_url:
                url, options = self.config.blob_url, self.config.storage_options
            else:
                root = default_blob_root()
                url, options = root.url, root.storage_options
            if self.account != accounts.DEFAULT:  # two orgs' lead and file ids may be the same
                url = account_blob_url(url, self.client.org_id(self.account))
            try:
                self._store = BlobStore(url, options)
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

    def _never_stored(
        self, att: Attachment, old: dict[str, Any] | None, version: Any
    ) -> dict[str, Any]:
        """A file of a lead deleted before solarsync first saw the file: ``skipped_deleted``
        (not downloaded, nothing to remove), unless a blob sits at its key after all (a
        warehouse rebuilt next to an old blob store): that file is ``removed``, blob kept."""
        store = self.store
        if store.size(store.key(att.lead_id, att.file_id)) is not None:
            why = "the lead was deleted"
            return self._removed(att, old, att.lead_id, att.file_id, version, why)
        self._count(SKIPPED_DELETED)
        return att.row(SKIPPED_DELETED, "the lead was deleted before its files were stored")

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
        org = self.client.org_id(self.account)
        try:
            with dlt.current.pipeline().sql_client() as client:
                table = client.make_qualified_table_name(ATTACHMENTS_TABLE)
                org_column = client.escape_column_name(ORG_ID_COLUMN)
                for start in range(0, len(ids), 500):
                    chunk = ids[start : start + 500]
                    marks = ", ".join(["%s"] * len(chunk))
                    # SELECT *: dlt creates a column only once it has held a value; another
                    # org's leads may have the same ids
                    sql = f"SELECT * FROM {table} WHERE {org_column} = %s AND lead_id IN ({marks})"
                    with client.execute_query(sql, org, *chunk) as cursor:
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
