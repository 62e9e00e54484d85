"""A small blob store on fsspec: keys made of ids only, atomic writes, owner-only local files.

Any fsspec URL works as the root (``/var/lib/solarsync/blobs``, ``file:///...``, ``s3://bucket/
prefix``, ``gs://...``); credentials for remote stores come from ``storage_options`` or the
backend's usual environment (``AWS_*``, ``GOOGLE_APPLICATION_CREDENTIALS``), never from the URL.

Guarantees:

* **Keys cannot escape the root.** Every key part goes through :func:`key_part`: an id made of
  ``[A-Za-z0-9._-]`` that starts with a letter or digit is kept as is, anything else (``..``,
  ``a/b``, ``C:\\x``, NUL, empty, too long) becomes ``~`` + its sha256. So a hostile id maps to a
  harmless name, and distinct ids never share a key. File names (user text) are never keys.
* **No partial blob at a final key.** Bytes go to ``<root>/.incoming/<host>-<pid>-<random>.part``
  and are moved to the key only by :meth:`Incoming.commit`; a failed or abandoned write removes
  its temporary object, and :meth:`BlobStore.sweep_incoming` removes those left by a process
  that was killed. ``.incoming`` can never be a key part (key parts never start with ``.``).
* **Local files are private**: directories created ``0o700``, files ``0o600``, the file is
  fsynced before the atomic rename, and a key whose resolved path would leave the root (a
  planted symlink) is refused.
* **Flat memory**: writes and hashing stream in chunks; nothing holds a whole blob.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import secrets
import socket
import stat
import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import fsspec
from fsspec.implementations.local import LocalFileSystem

DIR_MODE = 0o700
FILE_MODE = 0o600
INCOMING = ".incoming"
READ_CHUNK = 1 << 20
STALE_INCOMING_S = 24 * 3600  # a temporary object this old belongs to nobody

_SAFE_PART = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}\Z")
_HASHED_PART = re.compile(r"~[0-9a-f]{64}\Z")


def key_part(value: object) -> str:
    """``value`` (an id) as one safe path component; injective, never ``.``/``..``/empty."""
    text = str(value)
    if _SAFE_PART.match(text):
        return text
    digest = hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()
    return f"~{digest}"


@dataclass(frozen=True)
class BlobRoot:
    """Where blobs go by default: a root URL and the fsspec options to reach it. The
    destination in use decides it (``Warehouse.blob_root`` in ``pipelines``); a source keeps its
    files in a folder of its own, :meth:`child`."""

    url: str
    storage_options: Mapping[str, Any] | None = field(default=None, repr=False)

    def child(self, name: str) -> BlobRoot:
        return BlobRoot(f"{self.url.rstrip('/')}/{key_part(name)}", self.storage_options)


_defaults: list[BlobRoot | None] = []
_defaults_lock = threading.Lock()


@contextlib.contextmanager
def default_root(root: BlobRoot | None) -> Iterator[None]:
    """Within the block, :func:`current_default_root` is ``root``: set by whoever runs a source
    (the pipeline knows its destination; the source does not). Process-wide: solarsync runs one
    source at a time in a process, and a source's download threads see it too."""
    with _defaults_lock:
        _defaults.append(root)
    try:
        yield
    finally:
        with _defaults_lock:
            _defaults.pop()


def current_default_root() -> BlobRoot | None:
    """The innermost :func:`default_root`, or None outside of any."""
    with _defaults_lock:
        return _defaults[-1] if _defaults else None


class BlobStoreError(OSError):
    """The blob store refused an operation (a key outside the root, a failed write)."""


class BlobStore:
    """Blobs under one root URL. Thread-safe (each write has its own temporary object)."""

    def __init__(self, url: str, storage_options: Mapping[str, Any] | None = None) -> None:
        if not url or not str(url).strip():
            raise ValueError("blob store URL is empty")
        fs, root = fsspec.core.url_to_fs(str(url), **dict(storage_options or {}))
        self.fs = fs
        self.local = isinstance(fs, LocalFileSystem)
        self.root = os.path.realpath(root) if self.local else root.rstrip("/")
        self._incoming = f"{self.root}/{INCOMING}"
        self._tag = f"{key_part(socket.gethostname())[:40]}-{os.getpid()}"
        if self.local:
            _makedirs_private(self.root)
            _makedirs_private(self._incoming)
        else:
            fs.makedirs(self._incoming, exist_ok=True)

    def __repr__(self) -> str:  # no storage options
        return f"BlobStore({self.location('') or self.root!r})"

    # -- keys ---------------------------------------------------------------------------
    @staticmethod
    def key(*parts: object) -> str:
        """The key of a blob named by ids, e.g. ``key(lead_id, file_id)`` -> ``lead/file``."""
        if not parts:
            raise ValueError("a key needs at least one part")
        return "/".join(key_part(p) for p in parts)

    def _path(self, key: str) -> str:
        parts = key.split("/")
        if not key or not all(_SAFE_PART.match(p) or _HASHED_PART.match(p) for p in parts):
            raise BlobStoreError(f"not a blob key: {key!r}")
        path = f"{self.root}/{key}"
        if self.local:
            real = os.path.realpath(path)
            if not real.startswith(self.root + os.sep):
                raise BlobStoreError(f"blob key {key!r} resolves outside the blob root")
        return path

    def location(self, key: str) -> str:
        """Where a blob lives, as recorded in the warehouse: an absolute path for a local root,
        else the full URL (``s3://bucket/prefix/lead/file``)."""
        path = self._path(key) if key else self.root
        return path if self.local else self.fs.unstrip_protocol(path)

    # -- reads --------------------------------------------------------------------------
    def size(self, key: str) -> int | None:
        """Size in bytes of the blob at ``key``, None when there is none."""
        path = self._path(key)
        if self.local:
            try:
                st = os.stat(path)
            except FileNotFoundError:
                return None
            return st.st_size if stat.S_ISREG(st.st_mode) else None
        try:
            info = self.fs.info(path)
        except FileNotFoundError:
            return None
        return int(info["size"]) if info.get("type") == "file" else None

    def modified(self, key: str) -> float | None:
        """Modification time (epoch seconds) of the blob, if the backend knows it."""
        path = self._path(key)
        try:
            if self.local:
                return os.stat(path).st_mtime
            return self.fs.modified(path).timestamp()
        except (FileNotFoundError, NotImplementedError, AttributeError):
            return None

    def sha256(self, key: str) -> str:
        """sha256 of the stored bytes, streamed."""
        digest = hashlib.sha256()
        with self.fs.open(self._path(key), "rb") as handle:
            while chunk := handle.read(READ_CHUNK):
                digest.update(chunk)
        return digest.hexdigest()

    # -- writes -------------------------------------------------------------------------
    @contextlib.contextmanager
    def receive(self, key: str) -> Iterator[Incoming]:
        """Stream bytes for ``key`` into a temporary object; ``commit()`` moves it into place.

        Leaving the block without ``commit()`` (an exception, a size check that failed)
        removes the temporary object; the blob at ``key``, if any, is untouched.
        """
        final = self._path(key)
        tmp = f"{self._incoming}/{self._tag}-{secrets.token_hex(8)}.part"
        incoming = Incoming(self, key, final, tmp)
        try:
            yield incoming
        finally:
            incoming._close()
            if not incoming.committed:
                self._remove_path(tmp)

    def remove(self, key: str) -> bool:
        """Delete the blob at ``key``; True when there was one."""
        return self._remove_path(self._path(key))

    def _remove_path(self, path: str) -> bool:
        try:
            if self.local:
                os.unlink(path)
            else:
                self.fs.rm(path)
        except FileNotFoundError:
            return False
        return True

    def sweep_incoming(self, max_age_s: float = STALE_INCOMING_S) -> int:
        """Remove temporary objects left by killed writers; returns how many were removed.

        A local temporary object is stale when the process that wrote it (host and pid are in
        its name) is gone; any temporary object older than ``max_age_s`` is stale.
        """
        try:
            names = self.fs.ls(self._incoming, detail=False)
        except FileNotFoundError:
            return 0
        host = self._tag.rsplit("-", 1)[0]
        removed = 0
        now = time.time()
        for path in names:
            name = path.rstrip("/").rsplit("/", 1)[-1]
            if not name.endswith(".part"):
                continue
            stale = False
            writer_host, pid_text, _ = (name[: -len(".part")].rsplit("-", 2) + ["", ""])[:3]
            if self.local and writer_host == host and pid_text.isdigit():
                stale = not _pid_alive(int(pid_text))
            if not stale:
                try:
                    mtime = self.fs.modified(path).timestamp()
                except (FileNotFoundError, NotImplementedError, AttributeError, OSError):
                    continue
                stale = now - mtime > max_age_s
            if stale and self._remove_path(path):
                removed += 1
        return removed


class Incoming:
    """A blob being written: ``write()`` chunks, read ``size``/``sha256``, then ``commit()``."""

    def __init__(self, store: BlobStore, key: str, final: str, tmp: str) -> None:
        self.store = store
        self.key = key
        self._final = final
        self._tmp = tmp
        self._digest = hashlib.sha256()
        self.size = 0
        self.committed = False
        if store.local:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, FILE_MODE)
            self._handle: Any = os.fdopen(fd, "wb")
        else:
            self._handle = store.fs.open(tmp, "wb")

    @property
    def sha256(self) -> str:
        return self._digest.hexdigest()

    def write(self, data: bytes) -> None:
        if self.committed:
            raise BlobStoreError("write after commit")
        self._handle.write(data)
        self._digest.update(data)
        self.size += len(data)

    def commit(self) -> str:
        """Move the complete bytes to the key (atomic locally); returns the blob's location."""
        store = self.store
        self._close(flush=True)
        parent = self._final.rsplit("/", 1)[0]
        if store.local:
            _makedirs_private(parent)
            store._path(self.key)  # re-check: nothing planted a symlink meanwhile
            os.replace(self._tmp, self._final)
            _fsync_dir(parent)
        else:
            store.fs.makedirs(parent, exist_ok=True)
            store.fs.mv(self._tmp, self._final)
        self.committed = True
        return store.location(self.key)

    def _close(self, flush: bool = False) -> None:
        handle, self._handle = self._handle, None
        if handle is None:
            return
        if flush and self.store.local:
            handle.flush()
            os.fsync(handle.fileno())
        handle.close()


def _makedirs_private(path: str) -> None:
    """Create ``path`` and missing parents with mode 0o700 (existing directories untouched)."""
    missing = []
    current = os.path.abspath(path)
    while not os.path.isdir(current):
        missing.append(current)
        parent = os.path.dirname(current)
        if parent == current:
            break
        current = parent
    for directory in reversed(missing):
        try:
            os.mkdir(directory, DIR_MODE)
        except FileExistsError:
            if not os.path.isdir(directory):
                raise
            continue
        os.chmod(directory, DIR_MODE)  # whatever the umask


def _fsync_dir(path: str) -> None:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _pid_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


__all__ = [
    "BlobRoot",
    "BlobStore",
    "BlobStoreError",
    "Incoming",
    "current_default_root",
    "default_root",
    "key_part",
]
