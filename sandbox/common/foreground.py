"""Run a sandbox in the foreground (``python -m sandbox <api>``) until Ctrl-C or SIGTERM.

stop = stop_on_signals()          # first, so a signal right after "ready" is not lost
... start the sandbox, print where it listens ...
return serve_until_stopped(sb, stop)
"""

from __future__ import annotations

import signal
import threading
from typing import Any


def stop_on_signals() -> threading.Event:
    """An event set by SIGINT/SIGTERM (SIGINT even when started in the background)."""
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    return stop


def serve_until_stopped(sandbox: Any, stop: threading.Event) -> int:
    try:
        while not stop.wait(0.5):
            pass
    finally:
        sandbox.stop()
        print("stopped", flush=True)
    return 0
