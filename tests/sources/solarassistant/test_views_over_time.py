"""The analytics views over polls dated by the test: daily energy from counters that restart
(in the site's time zone, UTC otherwise), the latest metrics of removed sites and of topics a
site stopped sending, the ``total/`` flag, and huge integers kept as sent."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pendulum
import pytest

import sources.solarassistant as source
from pipelines.cli import main
from sandbox.solarassistant import SolarAssistantSandbox
from sources.solarassistant import reset_caches
from tests.sources.solarassistant.conftest import ENV, SA_TOKEN, point_at
from tests.sources.solarassistant.warehouse_check import rows

ZONE = "Africa/Johannesburg"  # UTC+2, no daylight saving time
ENERGY = "total/pv_energy"
WH = "grid/grid_energy_in"  # a counter in Wh
HUGE = 123456789012345678901234567890

# (poll instant UTC, kWh counter): Saturday and Sunday, then the weekly reset at Monday 00:00
# local time (= Sunday 22:00 UTC) and Monday
READINGS = [
    ("2026-05-09T08:00:00Z", "30.0"),  # Sat 10:00 local
    ("2026-05-09T20:00:00Z", "42.5"),  # Sat 22:00 local
    ("2026-05-10T21:00:00Z", "55.0"),  # Sun 23:00 local
    ("2026-05-10T23:00:00Z", "0.4"),  # Mon 01:00 local, Sun 23:00 UTC: after the reset
    ("2026-05-11T18:00:00Z", "18.4"),  # Mon 20:00 local
]


@dataclass
class Scenario:
    sb: SolarAssistantSandbox
    warehouse: Path
    local: Any  # the site with a configured time zone
    utc: Any  # the site without one; removed from the account before the last poll
    gone: str  # a topic the local site stopped sending after the 3rd poll


@pytest.fixture(scope="module")
def scenario(tmp_path_factory) -> Iterator[Scenario]:
    """Five runs dated by READINGS against two sites (built once: the tests only read)."""
    from sources.common import reset_stats

    tmp = tmp_path_factory.mktemp("sa-views")
    with (
        pytest.MonkeyPatch.context() as mp,
        SolarAssistantSandbox(seed=3, api_token=SA_TOKEN, sites=2, cert_dir=str(tmp)) as sb,
    ):
        for name in [n for n in os.environ if n.startswith("SOURCES__")]:
            mp.delenv(name)
        mp.setenv("DLT_DATA_DIR", str(tmp / "dlt"))
        mp.setenv("DESTINATION__DUCKDB__CREDENTIALS", str(tmp / "warehouse.duckdb"))
        point_at(sb, mp)
        reset_caches()
        reset_stats()
        local, utc = sb.sites
        gone = next(m.topic for m in local.metrics if m.topic.startswith("inverter_1/temp"))
        mp.setenv(ENV + "SITE_TIMEZONES", f'{{"{local.name}": "{ZONE}"}}')
        for n, (instant, kwh) in enumerate(READINGS):
            when = pendulum.parse(instant)
            mp.setattr(source, "_now", lambda when=when: when)
            for site in (local, utc):
                sb.set_value(site.id, ENERGY, float(kwh), "kWh")
                sb.set_value(site.id, WH, 1000.0 * float(kwh), "Wh")
            if n == 3:
                sb.remove_topic(local.id, gone)  # no longer sent from the 4th poll on
                sb.set_value(local.id, "system/uptime_ns", HUGE)
            if n == 4:
                sb.remove_site(utc.id)  # left the account before the last poll
            assert main(["--no-progress", "run", "solarassistant"]) == 0
        reset_caches()
        yield Scenario(sb, tmp / "warehouse.duckdb", local, utc, gone)


def test_daily_energy_follows_the_counters_across_a_weekly_reset(scenario):
    warehouse, local, utc = scenario.warehouse, scenario.local, scenario.utc
    # the counters' increase, the reset counted from zero, per local day
    daily = rows(
        warehouse,
        "select site_id, topic, day, timezone, energy_kwh, intervals, resets "
        "from analytics.solarassistant_energy_daily order by site_id, topic, day",
    )
    expected_local = [
        (date(2026, 5, 9), Decimal("12.5"), 1, 0),
        (date(2026, 5, 10), Decimal("12.5"), 1, 0),
        (date(2026, 5, 11), Decimal("18.4"), 2, 1),  # Monday: the counter at its last reading
    ]
    expected_utc = [  # the reading after the reset is Sunday's in UTC; no Monday reading
        (date(2026, 5, 9), Decimal("12.5"), 1, 0),
        (date(2026, 5, 10), Decimal("12.9"), 2, 1),
    ]
    for site, zone, expected in ((local, ZONE, expected_local), (utc, "UTC", expected_utc)):
        for topic in (WH, ENERGY):  # Wh counters in kWh too
            got = [
                (r["day"], r["energy_kwh"], r["intervals"], r["resets"])
                for r in daily
                if r["site_id"] == site.id and r["topic"] == topic
            ]
            assert got == expected, (site.id, topic)
            assert {r["timezone"] for r in daily if r["site_id"] == site.id} == {zone}
    # Monday's energy equals the counter at Monday's last reading (it restarted on Monday)
    assert expected_local[-1][1] == Decimal(READINGS[-1][1])
    intervals = rows(
        warehouse,
        "select * from analytics.solarassistant_energy_intervals "
        "where site_id = ? and topic = ? order by polled_to",
        local.id,
        ENERGY,
    )
    assert [(r["counter_start_kwh"], r["counter_end_kwh"], r["is_reset"]) for r in intervals] == [
        (Decimal(a), Decimal(b), Decimal(b) < Decimal(a))
        for (_, a), (_, b) in zip(READINGS, READINGS[1:], strict=False)
    ]
    assert {r["is_total"] for r in intervals} == {True}


def test_latest_metrics_keep_removed_sites_names_and_say_how_old_a_topic_is(scenario):
    warehouse, local, utc, gone = scenario.warehouse, scenario.local, scenario.utc, scenario.gone
    latest = rows(warehouse, "select * from analytics.solarassistant_latest_metrics")
    of_utc = [r for r in latest if r["site_id"] == utc.id]
    assert of_utc and {(r["site_name"], r["site_removed"]) for r in of_utc} == {(utc.name, True)}
    assert {r["site_last_ok_at"] for r in of_utc} == {datetime(2026, 5, 10, 23, tzinfo=UTC)}
    of_local = {r["topic"]: r for r in latest if r["site_id"] == local.id}
    assert {(r["site_name"], r["site_removed"]) for r in of_local.values()} == {(local.name, False)}
    stale = of_local[gone]
    assert stale["polled_at"] == datetime(2026, 5, 10, 21, tzinfo=UTC)
    assert stale["site_last_ok_at"] == datetime(2026, 5, 11, 18, tzinfo=UTC)
    assert (stale["is_current"], stale["seconds_behind_last_ok"]) == (False, 21 * 3600)
    current = [r for t, r in of_local.items() if t != gone]
    assert {(r["is_current"], r["seconds_behind_last_ok"]) for r in current} == {(True, 0)}
    assert set(of_local) == {m["topic"] for m in scenario.sb.metrics_truth(local.id)} | {gone}


def test_total_topics_are_flagged_so_sums_do_not_double_count(scenario):
    warehouse, local = scenario.warehouse, scenario.local
    for view in ("latest_metrics", "metrics"):
        flags = rows(warehouse, f"select topic, is_total from analytics.solarassistant_{view}")
        assert flags and all(r["is_total"] == r["topic"].startswith("total/") for r in flags)
    pv = rows(
        warehouse,
        "select sum(value_number) filter (where not is_total) per_inverter, "
        "sum(value_number) filter (where is_total) total "
        "from analytics.solarassistant_latest_metrics where site_id = ? "
        "and topic like '%pv_power'",
        local.id,
    )
    truth = {m["topic"]: m["value"] for m in scenario.sb.metrics_truth(local.id)}
    assert pv == [
        {
            "per_inverter": sum(v for t, v in truth.items() if t.startswith("inverter_")
                                and t.endswith("/pv_power")),
            "total": truth["total/pv_power"],
        }
    ]  # fmt: skip


def test_a_huge_integer_is_stored_as_sent(scenario):
    (huge,) = rows(
        scenario.warehouse,
        "select distinct value_text, value_number, value_type from solarassistant.metrics "
        "where topic = 'system/uptime_ns'",
    )
    assert huge == {"value_text": str(HUGE), "value_number": float(HUGE), "value_type": "number"}
