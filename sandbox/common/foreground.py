"""Run a sandbox in the foreground (``python -m sandbox <api>``) until Ctrl-C or SIGTERM."""

from __future__ import annotations

import signal
import threading
from typing import Any


def serve_until_stopped(sandbox: Any) -> int:
    """Block until SIGINT/SIGTERM (SIGINT even when started in the background), then stop."""
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    try:
        while not stop.wait(0.5):
            pass
    finally:
        sandbox.stop()
        print("stopped", flush=True)
    return 0
