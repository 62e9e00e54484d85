"""Seeded SolarAssistant account: user, sites (with per-site metric variety), members,
organizations and organization users. Pure data, no HTTP."""

from __future__ import annotations

import random
import secrets
import zlib
from dataclasses import dataclass, field
from typing import Any

FIRST = ["Alice", "Bob", "Chen", "Dana", "Emeka", "Fatima", "Gus", "Hana", "Ivan", "Jo", "Kemal"]
LAST = ["Smith", "Jones", "Okafor", "Nguyen", "Garcia", "Müller", "Rossi", "Khan", "Silva"]
PROXIES = ["us-htz-1", "eu-htz-1", "au-syd-1"]
MODES = ["Solar/Battery", "Grid", "Solar first", "Utility first", "Off grid with relay"]
WEATHER = ["Clear", "Partly cloudy", "Overcast", "Rain"]


@dataclass(frozen=True)
class MetricDef:
    """One topic a site serves; ``kind`` decides the value: int, float, str, bool, null, numstr."""

    topic: str
    group: str
    name: str
    unit: str | None
    kind: str
    device: str | None = None  # newer firmware sends device/number on every row
    number: int | None = None

    def value(self, site_id: int, tick: int) -> Any:
        h = (zlib.crc32(f"{self.topic}|{site_id}".encode()) & 0xFFFF) + 97 * tick
        if self.kind == "int":
            return (h % 5000) - (2500 if "battery_power" in self.topic else 0)
        if self.kind == "float":
            return round((h % 10000) / 37.0, 2)
        if self.kind == "str":
            pool = WEATHER if self.topic.startswith("weather") else MODES
            return pool[h % len(pool)]
        if self.kind == "bool":
            return bool(h % 2)
        if self.kind == "numstr":
            return f"{(h % 9000) / 10:.1f}"
        return None


@dataclass
class Site:
    id: int
    name: str
    proxy: str
    last_seen_at: str
    owner_id: int
    organization_id: int | None
    extras: dict[str, Any]
    metrics: list[MetricDef]
    #: user id -> role
    members: dict[int, str] = field(default_factory=dict)
    site_key: str = field(default_factory=lambda: "sk-" + secrets.token_urlsafe(18), repr=False)


def _person(uid: int, rng: random.Random) -> dict[str, Any]:
    first, last = rng.choice(FIRST), rng.choice(LAST)
    return {
        "id": uid,
        "email": f"{first.lower()}.{uid}@example.com",
        "first_name": first,
        "last_name": last,
        "phone_number": f"+1 555 {uid:03d} {rng.randint(1000, 9999)}",
        "locale": rng.choice(["en", "de", "af", "en-AU"]),
    }


def site_metrics(index: int, rng: random.Random) -> list[MetricDef]:
    """A site's topics: the totals everyone has, then inverters, batteries, optional weather
    and system rows, and the oddities some firmware sends."""
    rich = index % 2 == 0  # newer firmware: device and number on every row

    def m(topic: str, group: str, name: str, unit: str | None, kind: str) -> MetricDef:
        device = topic.split("/", 1)[0]
        number = int(device.rsplit("_", 1)[1]) if device[-1].isdigit() else None
        return MetricDef(
            topic, group, name, unit, kind, device if rich else None, number if rich else None
        )

    out = [
        m("total/pv_power", "Status", "PV power", "W", "int"),
        m("total/load_power", "Status", "Load power", "W", "int"),
        m("total/battery_power", "Status", "Battery power", "W", "int"),
        m("total/grid_power", "Status", "Grid power", "W", "int"),
        m("total/battery_state_of_charge", "Status", "Battery state of charge", "%", "int"),
        m("total/pv_energy", "Status", "PV energy", "kWh", "float"),
        m("grid/grid_voltage", "Status", "Grid voltage", "V", "float"),
    ]
    for n in range(1, 1 + rng.randint(1, 2)):
        out += [
            m(f"inverter_{n}/device_mode", "Status", "Device mode", None, "str"),
            m(f"inverter_{n}/temperature", "Status", "Temperature", "°C", "float"),
            m(f"inverter_{n}/pv_power", "Status", "PV power", "W", "int"),
            m(
                f"inverter_{n}/output_source_priority",
                "Settings",
                "Output source priority",
                None,
                "str",
            ),
        ]
    for n in range(1, 1 + rng.randint(0, 2)):
        out += [
            m(f"battery_{n}/state_of_charge", "Status", "State of charge", "%", "int"),
            m(f"battery_{n}/voltage", "Status", "Voltage", "V", "float"),
            m(f"battery_{n}/charging", "Status", "Charging", None, "bool"),
        ]
    if index % 3 == 0:
        out += [
            m("weather/condition", "Info", "Condition", None, "str"),
            m("weather/cloud_cover", "Info", "Cloud cover", "%", "int"),
        ]
    if index % 4 == 1:  # the unusual: numeric strings, nulls, booleans in settings, odd names
        out += [
            m("inverter_1/grid_frequency_text", "Info", "Grid frequency (text)", "Hz", "numstr"),
            m("battery_9/temperature", "Status", "Temperature", "°C", "null"),
            m("system/beta", "Info", "Beta channel", None, "bool"),
            m("custom_meter/Zähler: import (L1)", "Status", "Zähler import L1", "kWh", "float"),
        ]
    return out


def generate(
    seed: int, n_sites: int, n_org_users: int, account_user_id: int = 1
) -> tuple[
    dict[str, Any],
    list[Site],
    dict[int, dict[str, Any]],
    dict[int, dict[str, Any]],
    list[dict[str, Any]],
]:
    """``(account user, sites, people by id, organizations by id, org users)``."""
    rng = random.Random(seed)
    people = {uid: _person(uid, rng) for uid in range(1, 40)}
    account = people[account_user_id]
    orgs = {
        7: {"id": 7, "name": "Acme Solar", "cloud_host": "acme.solar-assistant.io"},
        8: {"id": 8, "name": "Sunny Installs", "cloud_host": "sunny.solar-assistant.io"},
    }
    sites = []
    for i in range(n_sites):
        site_id = 19000 + i * 7 + rng.randint(0, 6)
        owner = account_user_id if i % 3 else rng.randint(2, 39)
        extras: dict[str, Any] = {}
        if i % 2 == 0:  # fields some clients see on list rows
            extras = {
                "inverter": rng.choice(["Deye", "Growatt", "Victron MultiPlus"]),
                "inverter_count": rng.randint(1, 2),
                "battery": rng.choice(["Pylontech US5000", "JK BMS"]),
                "battery_count": rng.randint(0, 2),
                "arch": "arm64",
                "board": "Raspberry Pi 4",
                "beta": bool(i % 4 == 0),
                "build_date": f"2026-0{1 + i % 9}-1{i % 10}",
            }
        site = Site(
            id=site_id,
            name=f"site-{i:03d}",
            proxy=PROXIES[i % len(PROXIES)],
            last_seen_at=f"2026-05-{1 + i % 28:02d}T12:{i % 60:02d}:00Z",
            owner_id=owner,
            organization_id=(7 if i % 3 == 0 else 8 if i % 3 == 1 else None),
            extras=extras,
            metrics=site_metrics(i, rng),
        )
        site.members[owner] = "owner"
        if owner != account_user_id:
            site.members[account_user_id] = rng.choice(["admin", "member", "viewer"])
        for uid in rng.sample(range(2, 40), rng.randint(0, 3)):
            site.members.setdefault(uid, rng.choice(["admin", "member", "viewer"]))
        sites.append(site)
    org_users = [dict(people[1])] + [_person(1000 + n, rng) for n in range(max(0, n_org_users - 1))]
    return account, sites, people, orgs, org_users
