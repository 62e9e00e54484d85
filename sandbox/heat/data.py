"""Seeded HEAT sites: names, connectivity, the documented schedules and asset groups, and
undocumented fields (nested ones too) that the API may add at any time."""

from __future__ import annotations

import random
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

#: asset kinds with their documented fields (reference: shared/apis/heat.md)
ASSET_KINDS: dict[str, dict[str, Any]] = {
    "grid": {"ratedPowerUpperLimitkW": 500, "ratedPowerLowerLimitkW": -500},
    "solar": {"ratedPowerUpperLimitkW": 200, "ratedPowerLowerLimitkW": 0},
    "bess": {
        "ratedPowerUpperLimitkW": 100,
        "ratedPowerLowerLimitkW": -100,
        "availableStorageCapacitykWh": 500,
    },
    "ev": {"ratedPowerUpperLimitkW": 50, "ratedPowerLowerLimitkW": 0},
    "heatpump": {"ratedPowerUpperLimitkW": 20, "ratedPowerLowerLimitkW": 0},
    "genset": {"ratedPowerUpperLimitkW": 300, "ratedPowerLowerLimitkW": 0},
    "load": {"ratedPowerUpperLimitkW": 400, "ratedPowerLowerLimitkW": 0},
}
#: the supported (asset, type) pairs and a value range for each
SCHEDULE_TYPES: dict[tuple[str, str], tuple[int, int]] = {
    ("grid", "upperLimitkW"): (0, 500),
    ("grid", "lowerLimitkW"): (-500, 0),
    ("grid", "activePowerkW"): (-200, 200),
    ("bess", "activePowerkW"): (-100, 100),
    ("bess", "optimalSocPcnt"): (10, 100),
    ("solar", "solarCurtailmentPcnt"): (0, 100),
}


def undocumented_site_fields(index: int) -> dict[str, Any]:
    """Fields HEAT may add without a version bump ("additive changes"), nested ones too: some
    sites send an object and a list the reference does not document."""
    fields: dict[str, Any] = {}
    if index % 2 == 0:
        fields["location"] = {"lat": 52.0 + index / 10, "lon": 13.0 + index / 10}
    if index % 3 == 1:
        fields["tags"] = ["pilot", f"region-{index % 4}"]
    return fields


def undocumented_asset_fields(index: int, kind: str) -> dict[str, Any]:
    """The same for assets: a nested object on batteries, a list on EV chargers."""
    if kind == "bess" and index % 2 == 0:
        return {"cells": {"count": 16, "chemistry": "LFP"}}
    if kind == "ev":
        return {"connectors": [{"id": 1, "maxPowerkW": 22}, {"id": 2, "maxPowerkW": 11}]}
    return {}


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def default_anchor() -> datetime:
    """Today's UTC midnight: schedules are laid out from there."""
    return datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)


class Generator:
    """``n`` deterministic sites for ``seed``."""

    def __init__(self, seed: int, anchor: datetime) -> None:
        self.rng = random.Random(seed)
        self.anchor = anchor

    def site_id(self) -> str:
        return str(uuid.UUID(int=self.rng.getrandbits(128), version=4))

    def entries(self, asset: str, type_: str, n: int = 2) -> list[dict[str, Any]]:
        low, high = SCHEDULE_TYPES.get((asset, type_), (0, 100))
        start = self.anchor + timedelta(hours=self.rng.randrange(0, 12))
        out = []
        for _ in range(n):
            end = start + timedelta(hours=self.rng.choice((1, 2)))
            out.append(
                {"startAt": iso(start), "endAt": iso(end), "value": self.rng.randint(low, high)}
            )
            start = end
        return out

    def schedules(self, kinds: list[str]) -> list[dict[str, Any]]:
        out = []
        pairs = [p for p in SCHEDULE_TYPES if p[0] in kinds]
        if ("bess", "activePowerkW") in pairs and ("bess", "optimalSocPcnt") in pairs:
            pairs.remove(self.rng.choice([("bess", "activePowerkW"), ("bess", "optimalSocPcnt")]))
        for asset, type_ in pairs:  # bess activePowerkW and optimalSocPcnt are exclusive
            out.append({"asset": asset, "type": type_, "entries": self.entries(asset, type_)})
        return out

    def assets(self, index: int, kinds: list[str]) -> dict[str, dict[str, Any]]:
        out = {}
        for kind in kinds:
            asset = {"id": f"{index}-{kind}", "type": kind, **ASSET_KINDS[kind]}
            low = ASSET_KINDS[kind]["ratedPowerLowerLimitkW"]
            high = ASSET_KINDS[kind]["ratedPowerUpperLimitkW"]
            asset["activePowerkW"] = self.rng.randint(low, high)
            if kind == "bess":
                asset["soc"] = self.rng.randint(5, 100)
            asset.update(undocumented_asset_fields(index, kind))
            out[kind] = asset
        return out

    def site(self, index: int) -> dict[str, Any]:
        optional = [k for k in ASSET_KINDS if k not in ("grid", "load")]
        kinds = ["grid", "load", *sorted(self.rng.sample(optional, self.rng.randint(1, 4)))]
        reported = self.anchor - timedelta(minutes=self.rng.randrange(1, 600))
        return {
            "siteId": self.site_id(),
            "siteName": f"Site {index + 1}",
            "isOnline": self.rng.random() > 0.15,
            "reportedAt": iso(reported),
            "schedules": self.schedules(kinds),
            "assets": self.assets(index, kinds),
            **undocumented_site_fields(index),
        }

    def sites(self, n: int) -> list[dict[str, Any]]:
        return [self.site(i) for i in range(n)]
