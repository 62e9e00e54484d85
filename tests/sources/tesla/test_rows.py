"""Pure functions: row shaping over every captured payload, time parsing, configuration."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from sources.common import ConfigurationError
from sources.common.tls import normalize_fingerprint
from sources.tesla import gateway_configs, is_configured, rows

CAPTURES = Path(__file__).resolve().parents[3] / "sandbox" / "tesla" / "captures"
AT = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
AGGREGATES = sorted(
    str(p.relative_to(CAPTURES))
    for p in CAPTURES.rglob("*.json")
    if "aggregates" in p.name or p.name == "meters.json" and "home_assistant" in str(p)
)


def load(name: str):
    return json.loads((CAPTURES / name).read_text())


def test_every_aggregates_capture_is_covered():
    assert len(AGGREGATES) == 6


@pytest.mark.parametrize("name", AGGREGATES)
def test_meter_rows_keep_every_meter_and_number(name):
    body = load(name)
    out = list(rows.meter_rows("gw", AT, body))
    assert [r["meter"] for r in out] == list(body)
    for row in out:
        source = body[row["meter"]]
        for key, value in source.items():
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                assert row[key] == value
                expected = int if key in rows.INTEGER_FIELDS else float
                assert type(row[key]) is expected, key
        stamp = source["last_communication_time"]
        if stamp.startswith("0001-01-01"):  # "never": left out
            assert "last_communication_time" not in row
        else:
            assert row["last_communication_time"] == rows.parse_time(stamp)
            assert row["last_communication_time"].tzinfo is UTC


def test_times_and_durations():
    assert rows.parse_time("2021-12-26T13:09:22.321056599-07:00") == datetime(
        2021, 12, 26, 20, 9, 22, 321056, tzinfo=UTC
    )
    assert rows.parse_time("2021-12-16 22:13:25 +0800") == datetime(
        2021, 12, 16, 14, 13, 25, tzinfo=UTC
    )
    assert rows.parse_time("0001-01-01T00:00:00Z") is None
    assert rows.parse_time("soon") is None
    assert rows.parse_duration("230h55m59.932079901s") == pytest.approx(831359.932079901)
    assert rows.parse_duration("17h11m31.214751424s") == pytest.approx(61891.214751424)
    assert rows.parse_duration("1m30x") is None


def test_flat_and_nested_site_info_land_in_the_same_columns():
    flat = rows.site_info_row("gw", AT, load("home_assistant_core/site_info.json"))
    nested = rows.site_info_row(
        "gw", AT, load("vloschiavo_powerwall2_21.44_running/site_info.json")
    )
    grid = {"grid_code", "country", "state", "utility", "region", "grid_voltage_setting",
            "grid_freq_setting", "grid_phase_setting", "distributor", "retailer"}  # fmt: skip
    assert grid <= set(flat) and grid <= set(nested)
    assert flat["grid_code"] == "60Hz_240V_s_IEEE1547a_2014"
    assert nested["grid_code"] == "60Hz_240V_s_UL1741SA:2019_California"
    assert nested["utility"] == "Pacific Gas and Electric Company"
    assert type(flat["grid_voltage_setting"]) is float


@pytest.mark.parametrize(
    ("field", "column"),
    [
        ("nominal_system_energy_kWh", "nominal_system_energy_kwh"),
        ("max_system_power_kW", "max_system_power_kw"),
        ("min_site_meter_power_kW", "min_site_meter_power_kw"),
        ("energy_Wh", "energy_wh"),
        ("apparent_kVA", "apparent_kva"),
        ("reactive_kVAr", "reactive_kvar"),
        ("kW", "kW"),  # a bare unit is not a suffix
        ("site_name", "site_name"),
        ("last_phase_power_communication_time", "last_phase_power_communication_time"),
    ],
)
def test_units_at_the_end_of_a_field_become_a_lower_case_word(field, column):
    assert rows.column_name(field) == column


def test_site_info_units_in_both_shapes():
    for capture in ("home_assistant_core", "vloschiavo_powerwall2_21.44_running"):
        row = rows.site_info_row("gw", AT, load(f"{capture}/site_info.json"))
        assert "nominal_system_energy_kwh" in row and "nominal_system_energy_kWh" not in row
        assert [k for k in row if k != k.lower() or "_k_" in k] == []


def test_grid_faults_have_a_stable_id_and_time():
    body = load("jrester_tesla_powerwall/system_status.json")
    first = list(rows.grid_fault_rows("gw", AT, body["grid_faults"]))
    again = list(rows.grid_fault_rows("gw", AT, {"grid_faults": body["grid_faults"]}))
    assert [r["fault_id"] for r in first] == [r["fault_id"] for r in again]
    assert len({r["fault_id"] for r in first}) == 3
    assert first[0]["fault_at"] == datetime(2021, 10, 12, 5, 13, 11, 828000, tzinfo=UTC)
    assert first[0]["alert_raw"] == 576460752303423488


def test_powerwalls_one_row_per_device():
    body = load("jrester_tesla_powerwall/powerwalls.json")
    out = list(rows.powerwall_rows("gw", AT, body))
    assert [(r["position"], r["PackageSerialNumber"]) for r in out] == [
        (0, "SerialNumber1"),
        (1, "SerialNumber2"),
    ]


def test_gateway_status_row_records_state_and_firmware():
    status = load("vloschiavo_powerwall2_21.44_stopped/status.json")
    row = rows.gateway_status_row(
        "gw", AT, status, state="stopped", error=None, unavailable=["soe", "grid_faults"]
    )
    assert row["gateway_state"] == "stopped" and row["version"] == "21.44 223a56cd"
    assert row["unavailable_endpoints"] == "grid_faults,soe"
    assert row["start_time"] == datetime(2021, 12, 16, 14, 13, 25, tzinfo=UTC)
    assert "followers" not in row  # null: left out


# --------------------------------------------------------------------------- configuration
def test_single_and_several_gateways():
    (one,) = gateway_configs(host="https://192.168.91.1/", password="ABCDE")
    assert (one.name, one.host, one.base_url, one.address) == (
        "192.168.91.1", "192.168.91.1", "https://192.168.91.1", ("192.168.91.1", 443)
    )  # fmt: skip
    listed = gateway_configs(
        gateways=json.dumps([{"name": "a", "host": "teg:8443", "password": "p1xyz"}]),
        host="teg-2", password="p2xyz", name="b",
    )  # fmt: skip
    assert [(g.name, g.address) for g in listed] == [("a", ("teg", 8443)), ("b", ("teg-2", 443))]
    tables = gateway_configs(gateways={"home": {"host": "h1", "password": "p1xyz",
                                                "fingerprint": "AA:" * 31 + "AA"}})  # fmt: skip
    assert tables[0].name == "home" and tables[0].fingerprint == "aa" * 32
    assert "p1xyz" not in repr(tables[0])


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({}, "no gateway configured"),
        ({"host": "http://teg", "password": "x" * 5}, "HTTPS only"),
        ({"host": "teg", "password": ""}, "password is empty"),
        ({"host": "teg/api", "password": "x" * 5}, "has a path"),
        ({"gateways": "[not json"}, "not JSON"),
        ({"gateways": [{"name": "a", "host": "h", "password": "pppp"}] * 2}, "unique"),
        ({"host": "teg", "password": "x" * 5, "fingerprint": "12:34"}, "SHA-256"),
    ],
)
def test_bad_configuration_is_named(kwargs, message):
    with pytest.raises(ConfigurationError, match=message) as err:
        gateway_configs(**kwargs)
    assert err.value.source == "tesla" and err.value.exit_code == 78


def test_is_configured(monkeypatch):
    assert not is_configured()
    monkeypatch.setenv("SOURCES__TESLA__HOST", "teg")
    assert not is_configured()  # no password
    monkeypatch.setenv("SOURCES__TESLA__PASSWORD", "ABCDE")
    assert is_configured()
    monkeypatch.delenv("SOURCES__TESLA__HOST")
    monkeypatch.setenv("SOURCES__TESLA__GATEWAYS", '[{"host": "a", "password": "b"}]')
    assert is_configured()


def test_fingerprint_forms():
    digest = "ab" * 32
    assert normalize_fingerprint(digest.upper()) == digest
    assert normalize_fingerprint(":".join(["AB"] * 32)) == digest
    assert normalize_fingerprint("sha256=" + digest) == digest


@pytest.mark.parametrize(
    "name, status, active",
    [
        ("pypowerwall_bogus/api.system_status.grid_status.json", "SystemGridConnected", False),
        ("pypowerwall_bogus/api.system_status.grid_status.json-offline", "SystemIslandedActive", True),
        ("pypowerwall_bogus/api.system_status.grid_status.json-transition", "SystemTransitionToGrid",
         False),
    ],
)  # fmt: skip
def test_grid_status_shapes(name, status, active):
    row = rows.grid_status_row("gw", AT, load(name))
    assert (row["grid_status"], row["grid_services_active"]) == (status, active)
