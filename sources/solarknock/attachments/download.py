"""One file into the blob store: the documented (or same-origin) URL, a streamed GET
through the shared client, retries of cut or short bodies, the size and limit checks, and the
row that says how it went. A base of :class:`~sources.solarknock.attachments.sync.
AttachmentSync`, which provides the attributes declared below."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import pendulum
from requests import RequestException, Response
from urllib3.exceptions import HTTPError as Urllib3Error

from sources.common import (
    ApiClient,
    ApiError,
    AuthenticationError,
    ConfigurationError,
    SolarsyncError,
    SourceUnavailableError,
)
from sources.common.blobstore import BlobStore
from sources.solarknock.attachments.model import (
    FAILED,
    SKIPPED,
    STORED,
    Attachment,
    _content_length,
    _kept_blob,
    _mime_allowed,
    _now,
    _reason,
    _segment,
)
from sources.solarknock.settings import ATTACHMENTS_PATH, DOWNLOAD_CHUNK_SIZE

logger = logging.getLogger("solarsync.solarknock")

#: the download must not ask for JSON: the shared layer validates JSON bodies by Accept
DOWNLOAD_HEADERS = {"Accept": "*/*", "Accept-Encoding": "identity"}
MAX_BACKOFF_S = 30.0


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


class FileDownloads:
    """Downloading one attachment; the methods :class:`AttachmentSync` runs per file."""

    api: ApiClient
    store: BlobStore
    max_attempts: int
    backoff_factor: float
    max_file_size: int | None
    allowed: tuple[str, ...]
    _stop: threading.Event
    _warned_foreign_url: bool
    _count: Callable[..., None]

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
