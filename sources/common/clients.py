"""Clients kept for the life of the process, one per settings: the polls of one
``solarsync poll`` (or of a Dagster code location) reuse their sessions, TLS connections,
pinned certificates and logins instead of starting over on every poll."""

from __future__ import annotations

import threading
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

C = TypeVar("C")


class ClientCache(Generic[C]):
    """``get(settings, make)``: the client made for these settings, made on first use."""

    def __init__(self) -> None:
        self._clients: dict[Hashable, C] = {}
        self._lock = threading.Lock()

    def get(self, key: Hashable, make: Callable[[], C]) -> tuple[C, bool]:
        """The client of ``key`` and whether ``make()`` just made it."""
        with self._lock:
            if key in self._clients:
                return self._clients[key], False
            client = self._clients[key] = make()
            return client, True

    def clear(self) -> None:
        """Forget every client (what a new process starts with)."""
        with self._lock:
            self._clients.clear()
