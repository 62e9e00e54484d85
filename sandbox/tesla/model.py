"""What the sandbox gateway serves: firmware variants from real captures, and live meters.

Variants (``VARIANTS``) map each endpoint to a captured file in ``captures/`` (provenance in
``captures/SOURCES.md``); an endpoint a variant lacks answers 404. ``verbatim`` mode serves
the files byte for byte (contract tests); ``live`` mode serves the variant's aggregates with
simulated cumulative counters that advance on every read, with scheduled glitches (a counter
reading 0, a counter reset), and keeps the truth for the tests.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

CAPTURES = Path(__file__).resolve().parent / "captures"
ENERGY_FIELDS = ("energy_exported", "energy_imported")
STOPPABLE = ("/api/meters/aggregates", "/api/system_status/soe", "/api/system_status/grid_status")

_V2144 = "vloschiavo_powerwall2_21.44_running/"
_BOGUS = "pypowerwall_bogus/api."
_JR = "jrester_tesla_powerwall/"

_V2144_FILES = {
    "/api/status": _V2144 + "status.json",
    "/api/sitemaster": _V2144 + "sitemaster.json",
    "/api/meters/aggregates": _V2144 + "meters.aggregates.json",
    "/api/system_status/soe": _V2144 + "system_status.soe.json",
    "/api/system_status/grid_status": _V2144 + "system_status.grid_status.json",
    "/api/site_info": _V2144 + "site_info.json",
    "/api/powerwalls": _V2144 + "powerwalls.json",
    "/api/system_status/grid_faults": _V2144 + "system_status.grid_faults.json",
}
#: the DINs the "21.44-leader" gateway reports as its followers
FOLLOWER_DINS = ("1232100-00-E--TG0000000000F1", "1232100-00-E--TG0000000000F2")

#: variant -> endpoint path -> capture file (relative to CAPTURES) or a "derived:" recipe
VARIANTS: dict[str, dict[str, str]] = {
    # firmware 21.44 (Powerwall 2, split phase), the only full capture with a stopped mode
    "21.44": dict(_V2144_FILES),
    # firmware 23.28 (pypowerwall's captures): num_meters_aggregated, last_phase_* fields
    "23.28": {
        "/api/status": _BOGUS + "status.json",
        "/api/sitemaster": _BOGUS + "sitemaster.json",
        "/api/meters/aggregates": _BOGUS + "meters.aggregates.json",
        "/api/system_status/soe": _BOGUS + "system_status.soe.json",
        "/api/system_status/grid_status": _BOGUS + "system_status.grid_status.json",
        "/api/site_info": _BOGUS + "site_info.json",
        "/api/powerwalls": _BOGUS + "powerwalls.json",
        "/api/system_status/grid_faults": _BOGUS + "system_status.grid_faults.json",
    },
    # firmware 1.50 (hec, 50 Hz, 2020): no soe capture (404); faults from /api/system_status
    "1.50": {
        "/api/status": _JR + "status.json",
        "/api/sitemaster": _JR + "sitemaster.json",
        "/api/meters/aggregates": _JR + "meters_aggregates.json",
        "/api/system_status/grid_status": _JR + "grid_status.json",
        "/api/site_info": _JR + "site_info.json",
        "/api/powerwalls": _JR + "powerwalls.json",
        "/api/system_status/grid_faults": "derived:grid_faults:" + _JR + "system_status.json",
    },
    # 2020 firmware as Home Assistant captured it: flat site_info (grid_code a string)
    "ha-2020": {
        "/api/sitemaster": "home_assistant_core/sitemaster.json",
        "/api/meters/aggregates": "home_assistant_core/meters.json",
        "/api/site_info": "home_assistant_core/site_info.json",
    },
    # 21.44 as the leader of a multi-gateway site: /api/status lists its followers (the
    # capture's "followers": null is that list on a single gateway; a nested value)
    "21.44-leader": {
        **_V2144_FILES,
        "/api/status": "derived:followers:" + _V2144 + "status.json",
    },
    # 2018: the oldest aggregates, with busway/frequency/generator meters
    "2018": {"/api/meters/aggregates": "vloschiavo_api_meters_aggregates.json"},
    # Powerwall 3 fallback: only aggregates/soe/grid_status, energy counters read 0
    "pw3": {
        "/api/meters/aggregates": "derived:zero_counters:" + _BOGUS + "meters.aggregates.json",
        "/api/system_status/soe": _BOGUS + "system_status.soe.json",
        "/api/system_status/grid_status": _BOGUS + "system_status.grid_status.json",
    },
}
#: stopped mode of 21.44 as captured (status and sitemaster; the rest answer 502, empty)
STOPPED_CAPTURES = {
    "/api/status": "vloschiavo_powerwall2_21.44_stopped/status.json",
    "/api/sitemaster": "vloschiavo_powerwall2_21.44_stopped/sitemaster.json",
}


def capture_bytes(recipe: str) -> bytes:
    """The body for a variant entry: a file verbatim, or a documented derivation of one."""
    if not recipe.startswith("derived:"):
        return (CAPTURES / recipe).read_bytes()
    _, how, path = recipe.split(":", 2)
    data = json.loads((CAPTURES / path).read_bytes())
    if how == "grid_faults":
        return json.dumps(data.get("grid_faults") or []).encode()
    if how == "followers":
        data["followers"] = list(FOLLOWER_DINS)
        return json.dumps(data).encode()
    if how == "zero_counters":
        for meter in data.values():
            for name in ENERGY_FIELDS:
                meter[name] = 0
        return json.dumps(data).encode()
    raise ValueError(recipe)


# meter -> (exported Wh per tick, imported Wh per tick): multiples of 1/4, exact in binary
INCREMENTS: dict[str, tuple[float, float]] = {
    "site": (50.5, 120.25),
    "battery": (75.75, 60.25),
    "load": (0.0, 300.5),  # a load never exports: its exported counter stays 0 (ignored)
    "solar": (250.5, 0.25),
}


@dataclass
class Reading:
    tick: int
    meter: str
    field: str
    true: float  # the energy that really went through, since commissioning
    served: float  # what the gateway said (0 on a glitch; restarted after a reset)
    epoch: int  # resets so far for this counter


@dataclass
class Meters:
    """Cumulative counters advancing one tick per aggregates read."""

    template: dict[str, Any]
    zero_at: dict[int, set[tuple[str, str]]] = field(default_factory=dict)
    reset_at: dict[int, set[str]] = field(default_factory=dict)
    tick: int = 0
    true: dict[tuple[str, str], float] = field(default_factory=dict)
    offset: dict[tuple[str, str], float] = field(default_factory=dict)
    epoch: dict[tuple[str, str], int] = field(default_factory=dict)
    log: list[Reading] = field(default_factory=list)
    #: the gateway's clock, written as every meter's last_communication_time (tests move it)
    clock: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))

    def __post_init__(self) -> None:
        for meter, fields in self.template.items():
            for name in ENERGY_FIELDS:
                start = float(fields.get(name) or 0)
                # start on a quarter Wh so every later value is exact in binary
                self.true[(meter, name)] = round(start * 4) / 4 if start else 0.0

    def read(self) -> dict[str, Any]:
        self.tick += 1
        body = copy.deepcopy(self.template)
        now = self.clock().isoformat()
        for meter, fields in body.items():
            if not isinstance(fields, dict):
                continue
            for index, name in enumerate(ENERGY_FIELDS):
                key = (meter, name)
                if self.true[key]:  # a counter that reads 0 in the template stays 0
                    step = INCREMENTS.get(meter, (10.25, 10.25))[index]
                    self.true[key] += step * (1 + self.tick % 3)
                if meter in self.reset_at.get(self.tick, ()) and self.true[key]:
                    # the counter restarts: it reads a few Wh after the reset
                    self.offset[key] = self.true[key] - 1.5
                    self.epoch[key] = self.epoch.get(key, 0) + 1
                served = self.true[key] - self.offset.get(key, 0.0) if self.true[key] else 0.0
                if (meter, name) in self.zero_at.get(self.tick, ()):
                    served = 0.0
                fields[name] = served
                self.log.append(
                    Reading(self.tick, meter, name, self.true[key], served, self.epoch.get(key, 0))
                )
            fields["last_communication_time"] = now
        return body
