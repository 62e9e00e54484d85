"""A pollable source for the poll-loop tests: one row per poll, numbered across processes.

``FAKE_POLL_LOG`` (a file) gets each poll's number when the poll starts; ``FAKE_POLL_FAIL``
names poll numbers that raise (``"3:api,5:auth"``).
"""

from __future__ import annotations

import os
from pathlib import Path

import dlt
import pendulum

from sources.common import ApiError, AuthenticationError

SOURCE = "fakepoll"


def _next_number() -> int:
    log = Path(os.environ["FAKE_POLL_LOG"])
    number = len(log.read_text().split()) + 1 if log.exists() else 1
    with log.open("a") as handle:
        handle.write(f"{number}\n")
    return number


@dlt.source(name=SOURCE)
def fakepoll():
    @dlt.resource(primary_key="poll", write_disposition="merge")
    def readings():
        number = _next_number()
        failures = dict(
            item.split(":") for item in os.environ.get("FAKE_POLL_FAIL", "").split(",") if item
        )
        kind = failures.get(str(number))
        if kind == "api":
            raise ApiError("server error", source=SOURCE, endpoint="/readings", status=500)
        if kind == "auth":
            raise AuthenticationError("key rejected", source=SOURCE, endpoint="/readings")
        yield {"poll": number, "polled_at": pendulum.now("UTC")}

    @dlt.resource(primary_key="id", write_disposition="replace")
    def catalog():
        yield {"id": 1, "name": "static"}

    return readings, catalog
