"""Contract tests: every captured firmware variant (``sandbox/tesla/captures``, real responses
from several firmware versions) replayed byte for byte over HTTPS by the sandbox, then the
warehouse compared with the captured JSON.

Why not vcrpy cassettes: the pinning happens in the TLS handshake, which a cassette cannot
replay; the sandbox serves the captured bodies verbatim instead (``live=False``).
"""

from __future__ import annotations

import json

import pytest

from sandbox.tesla.model import VARIANTS, capture_bytes
from sources.tesla.settings import ENDPOINTS

TABLE_OF = {
    "aggregates": "meter_readings",
    "soe": "battery_soe",
    "grid_status": "grid_status",
    "site_info": "site_info",
    "powerwalls": "powerwalls",
    "grid_faults": "grid_faults",
    "sitemaster": "sitemaster",
}


def captured(variant: str, key: str):
    path = next(e.path for e in ENDPOINTS if e.key == key)
    recipe = VARIANTS[variant].get(path)
    return None if recipe is None else json.loads(capture_bytes(recipe))


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_captured_variant_lands_whole(make_gateway, run, query, variant):
    gw = make_gateway(variant=variant, live=False)
    runs = 2 if variant in ("1.50", "21.44") else 1  # twice: current tables stay current,
    for _ in range(runs):  # faults are deduplicated (1.50 has three)
        assert run().ok
    missing = sorted(e.key for e in ENDPOINTS if e.path not in VARIANTS[variant])
    expected_tables = {"gateway_status"} | {
        TABLE_OF[k] for k in TABLE_OF if k not in missing and captured(variant, k) not in ([],)
    }
    present = {
        r[0]
        for r in query(
            "select table_name from information_schema.tables where table_schema = 'tesla' "
            "and table_name not like '_dlt%'"
        )
    }
    assert present == expected_tables

    (state, unavailable, version) = query(
        "select gateway_state, unavailable_endpoints, "
        + ("version" if "status" not in missing else "null")
        + " from tesla.gateway_status order by polled_at desc limit 1"
    )[0]
    assert state == "ok"
    assert unavailable == (",".join(missing) or None)
    status = captured(variant, "status")
    assert version == (status or {}).get("version")

    # every meter, every counter, exactly as captured, once per poll
    aggregates = captured(variant, "aggregates")
    expected = sorted(
        (m, float(f["energy_exported"]), float(f["energy_imported"]), float(f["instant_power"]))
        for m, f in aggregates.items()
    )
    loaded = query(
        "select meter, energy_exported, energy_imported, instant_power from tesla.meter_readings"
    )
    assert sorted(loaded) == sorted(expected * runs)
    assert gw.requests_to("/api/login/Basic") == 1

    if "site_info" not in missing:
        info = captured(variant, "site_info")
        flat = info if isinstance(info["grid_code"], str) else {**info, **info["grid_code"]}
        assert query("select site_name, timezone, grid_code, country from tesla.site_info") == [
            (flat["site_name"], flat["timezone"], flat["grid_code"], flat["country"])
        ]
    if "powerwalls" not in missing:
        devices = captured(variant, "powerwalls")["powerwalls"]
        assert query("select position, package_serial_number from tesla.powerwalls order by 1") == [
            (i, d["PackageSerialNumber"]) for i, d in enumerate(devices)
        ]
    faults = captured(variant, "grid_faults") or []
    if faults:
        assert query("select alert_name from tesla.grid_faults order by fault_at desc") == [
            (f["alert_name"],) for f in sorted(faults, key=lambda f: -f["timestamp"])
        ]


def test_unknown_fields_and_meters_land_as_columns_and_rows(make_gateway, run, query):
    make_gateway(variant="2018", live=False)
    assert run().ok
    meters = {r[0] for r in query("select meter from tesla.meter_readings")}
    assert meters == {"site", "battery", "load", "solar", "busway", "frequency", "generator"}
    make_gateway(variant="23.28", live=False)  # newer firmware: more fields, same table
    assert run().ok
    columns = {r[0] for r in query("describe tesla.meter_readings")}
    assert {"num_meters_aggregated", "instant_average_current"} <= columns
    assert "last_phase_voltage_communication_time" not in columns  # all "never": left out


def test_stopped_capture_replayed(make_gateway, run, query):
    gw = make_gateway(variant="21.44", live=False)
    gw.stopped = True  # the 21.44 stopped capture: status 200, sitemaster down, 502 empty
    result = run()
    assert result.ok, result.error
    assert query("select gateway_state, up_time_seconds from tesla.gateway_status") == [
        ("stopped", 831370.039547701)
    ]
    assert query("select status, running, can_reboot from tesla.sitemaster") == [
        ("StatusDown", False, "")
    ]
    assert query(
        "select count(*) from information_schema.tables where table_name = 'meter_readings'"
    ) == [(0,)]
