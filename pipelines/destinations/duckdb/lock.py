"""The warehouse lock: one process at a time uses the DuckDB working file (see
:class:`WarehouseLock`), and dlt's connections to that file hold it while open."""

from __future__ import annotations

import contextlib
import fcntl
import functools
import json
import logging
import os
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pipelines.destinations.duckdb.files import lock_path_of_working
from sources.common import DestinationError

logger = logging.getLogger("solarsync")

SOURCE = "destination duckdb"
DEFAULT_LOCK_TIMEOUT_S = 30 * 60.0


class WarehouseLock:
    """The warehouse-wide lock: one process at a time uses the working file.

    Across processes an exclusive ``flock`` on the lock file; within a process a count, so the
    load step's threads, dlt's nested connections and ``publish`` inside a held load all pass
    (DuckDB shares one database instance within a process). Waits up to ``timeout`` seconds;
    the holder writes its PID, what it does and since when into the file for the message of a
    process that gives up waiting.
    """

    _registry: dict[Path, WarehouseLock] = {}
    _registry_lock = threading.Lock()

    def __init__(self, path: Path, on_acquire: Callable[[], None] | None = None) -> None:
        self.path = path
        self.on_acquire = on_acquire
        #: seconds to wait for another process (``[destination.duckdb] lock_timeout``)
        self.timeout = DEFAULT_LOCK_TIMEOUT_S
        self._mutex = threading.Lock()
        self._count = 0
        self._handle: Any = None
        #: dlt connections to the working file open in this process (publish needs none)
        self.open_connections = 0

    @classmethod
    def get(cls, path: Path, on_acquire: Callable[[], None] | None = None) -> WarehouseLock:
        key = path.resolve()
        with cls._registry_lock:
            lock = cls._registry.get(key)
            if lock is None:
                lock = cls._registry[key] = cls(key, on_acquire)
            elif on_acquire is not None:
                lock.on_acquire = on_acquire
            return lock

    @property
    def held(self) -> bool:
        return self._count > 0

    def acquire(self, who: str, timeout: float) -> None:
        with self._mutex:
            if self._count:
                self._count += 1
                return
            self.path.parent.mkdir(parents=True, exist_ok=True)
            handle = open(self.path, "a+")  # kept open (and flocked) while held
            try:
                self._wait(handle, who, timeout)
                handle.seek(0)
                handle.truncate()
                handle.write(
                    json.dumps(
                        {"pid": os.getpid(), "doing": who, "since": datetime.now(UTC).isoformat()}
                    )
                )
                handle.flush()
                self._handle, self._count = handle, 1
                if self.on_acquire is not None:
                    self.on_acquire()
            except BaseException:
                self._handle, self._count = None, 0
                handle.close()  # releases the flock
                raise

    def release(self) -> None:
        with self._mutex:
            if self._count <= 0:
                raise RuntimeError(f"{self.path}: released more often than acquired")
            self._count -= 1
            if self._count == 0:
                handle, self._handle = self._handle, None
                with contextlib.suppress(OSError):
                    handle.seek(0)
                    handle.truncate()
                handle.close()

    @contextlib.contextmanager
    def hold(self, who: str, timeout: float) -> Iterator[None]:
        self.acquire(who, timeout)
        try:
            yield
        finally:
            self.release()

    def _wait(self, handle: Any, who: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        pause, told = 0.05, False
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return
            except BlockingIOError:
                pass
            holder = self.holder()
            if time.monotonic() >= deadline:
                raise DestinationError(
                    f"{who}: the warehouse is busy: {describe_holder(holder)} has used its "
                    f"working file ({self.path.parent}) for longer than this run waits "
                    f"({timeout:.0f}s)",
                    source=SOURCE,
                    hint="nothing was lost: rerun later, or raise [destination.duckdb] "
                    "lock_timeout (DESTINATION__DUCKDB__LOCK_TIMEOUT, e.g. 1h)",
                )
            if not told:
                logger.info(
                    "%s: waiting for %s to finish with the warehouse (up to %.0fs)",
                    who,
                    describe_holder(holder),
                    timeout,
                )
                told = True
            time.sleep(pause)
            pause = min(pause * 2, 1.0)

    def holder(self) -> dict[str, Any]:
        try:
            return json.loads(self.path.read_text() or "{}")
        except (OSError, ValueError):
            return {}


def describe_holder(holder: dict[str, Any]) -> str:
    if not holder.get("pid"):
        return "another solarsync process"
    return (
        f"another solarsync process (PID {holder['pid']}, {holder.get('doing', '?')} "
        f"since {holder.get('since', '?')})"
    )


# --------------------------------------------------------------------------- dlt's connections
def locked_credentials(database: Path, **settings: Any) -> Any:
    """dlt DuckDB credentials for the working file whose connections hold its warehouse lock
    while open.

    dlt opens the working file at the start of a run (state), while a source reads what was
    loaded (SolarKnock's attachments), and several times per load; each of those holds the
    warehouse lock, so another process never meets DuckDB's "could not set lock" error: it
    waits. The credentials are resolved here: dlt uses a resolved instance as it is (an
    unresolved one would be copied into plain ``DuckDbCredentials``).
    """
    credentials = _locking_credentials_class()(str(database))
    for key, value in settings.items():
        setattr(credentials, key, value)
    credentials.resolve()
    return credentials


@functools.cache
def _locking_credentials_class() -> type:
    from dlt.common.configuration import configspec
    from dlt.destinations.impl.duckdb.configuration import (
        DuckDbConnectionPool,
        DuckDbCredentials,
    )

    class LockingPool(DuckDbConnectionPool):
        def __init__(self, credentials: Any, lock: WarehouseLock) -> None:
            super().__init__(credentials)
            self.warehouse_lock = lock

        def borrow_conn(self, *args: Any, **kwargs: Any) -> Any:
            lock = self.warehouse_lock
            lock.acquire("solarsync", lock.timeout)
            try:
                conn = super().borrow_conn(*args, **kwargs)
            except BaseException:
                lock.release()
                raise
            lock.open_connections += 1
            return conn

        def return_conn(self, borrowed_conn: Any) -> int:
            try:
                return super().return_conn(borrowed_conn)
            finally:
                self.warehouse_lock.open_connections -= 1
                self.warehouse_lock.release()

    @configspec(init=False)
    class LockingDuckDbCredentials(DuckDbCredentials):
        def parse_native_representation(self, native_value: Any) -> None:
            # a file path, as solarsync always passes: no connection-string parsing (dlt's
            # imports SQLAlchemy for it, a tenth of a second of every run)
            if isinstance(native_value, str) and "://" not in native_value:
                self.database = native_value
                return
            super().parse_native_representation(native_value)

        def __str__(self) -> str:  # dlt's renders a SQLAlchemy URL (the same, imported)
            return f"duckdb:///{self.database}"

        def on_resolved(self) -> None:
            super().on_resolved()
            self.conn_pool = LockingPool(
                self, WarehouseLock.get(lock_path_of_working(Path(self.database)))
            )

    return LockingDuckDbCredentials
