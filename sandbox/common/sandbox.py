"""What the sandboxes share above HTTP: the request log and the lifecycle of their listeners.

A sandbox subclasses :class:`LoopbackSandbox`, builds its :class:`~sandbox.common.server.Listener`
objects in ``__init__`` (after ``super().__init__()``) and names them in ``listeners``; it
inherits ``start``/``stop``/``with``, ``requests``, ``count_requests``, ``clear_requests``,
``stats`` and the ``/__admin`` views ``requests`` and ``stats`` (``ADMIN_ACTIONS`` lists the
methods ``POST /__admin/<action>`` may call).
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any, Self

from sandbox.common.server import NOT_FOUND, Listener


class RequestLog(list):
    """The requests a sandbox saw, in arrival order: a list (tests read, compare and clear
    it) whose appends, copies and clears are atomic, so handler threads can write to it while
    a test reads it."""

    def __init__(self) -> None:
        super().__init__()
        self._lock = threading.Lock()

    def record(self, info: Any) -> Any:
        with self._lock:
            self.append(info)
        return info

    def snapshot(self) -> list[Any]:
        with self._lock:
            return list(self)

    def clear(self) -> None:
        with self._lock:
            super().clear()

    def matching(self, where: Callable[[Any], bool] | None = None, **fields: Any) -> list[Any]:
        """The requests whose attributes equal every non-None ``fields`` value and for which
        ``where`` (if given) is true."""
        wanted = {k: v for k, v in fields.items() if v is not None}
        return [
            r
            for r in self.snapshot()
            if all(getattr(r, k) == v for k, v in wanted.items()) and (where is None or where(r))
        ]

    def summary(self) -> dict[str, Any]:
        """``requests``, ``by_endpoint`` and ``by_status`` counts (for ``stats()``)."""
        reqs = self.snapshot()
        return {
            "requests": len(reqs),
            "by_endpoint": dict(Counter(str(r.endpoint) for r in reqs)),
            "by_status": dict(Counter(str(r.status) for r in reqs)),
        }


class LoopbackSandbox:
    """Base of the sandboxes: ``start``/``stop`` (and ``with``) over :attr:`listeners`, the
    request log, and the default ``/__admin`` views (``requests``, ``stats``)."""

    #: methods ``POST /__admin/<name>`` may call with a JSON object of keyword arguments
    ADMIN_ACTIONS: frozenset[str] = frozenset()

    def __init__(self) -> None:
        self._log = RequestLog()

    @property
    def listeners(self) -> Sequence[Listener]:
        raise NotImplementedError

    # -- lifecycle -------------------------------------------------------------------------
    def start(self) -> Self:
        for listener in self.listeners:
            listener.start()
        return self

    def stop(self) -> None:
        for listener in reversed(self.listeners):
            listener.stop()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def running(self) -> bool:
        return any(listener.running for listener in self.listeners)

    # -- request log -----------------------------------------------------------------------
    @property
    def requests(self) -> list[Any]:
        """A copy of the request log, oldest first."""
        return self._log.snapshot()

    def clear_requests(self) -> None:
        self._log.clear()

    def count_requests(self, endpoint: str | None = None, status: int | None = None) -> int:
        return len(self._log.matching(endpoint=endpoint, status=status))

    def stats(self) -> dict[str, Any]:
        return self._log.summary()

    # -- /__admin --------------------------------------------------------------------------
    def admin_view(self, parts: list[str]) -> Any:
        """``GET /__admin/<parts>``: ``requests`` and ``stats`` here; sandboxes add theirs
        (e.g. ``truth``) and fall back to this. ``NOT_FOUND`` answers 404."""
        if parts == ["requests"]:
            return [r.as_dict() for r in self.requests]
        if parts == ["stats"]:
            return self.stats()
        return NOT_FOUND
