"""Unit tests: payload -> rows, column names, shape checks, settings parsing, type watch."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from requests import Response

from sources.common import ConfigurationError
from sources.heat.client import describe_error, normalize_version, split_base_url, validate
from sources.heat.model import (
    TypeWatch,
    asset_rows,
    column_name,
    entry_hash,
    schedule_rows,
    site_row,
    with_entry_hash,
)
from sources.heat.settings import ENTRY_HASH_FIELDS

AT = datetime(2026, 6, 1, 8, 0, 5, tzinfo=UTC)
SITE = "123e4567-e89b-12d3-a456-426614174000"


def h(hour: int) -> datetime:
    return datetime(2026, 6, 1, hour, tzinfo=UTC)


@pytest.mark.parametrize(
    ("field", "column"),
    [
        ("activePowerkW", "active_power_kw"),
        ("ratedPowerUpperLimitkW", "rated_power_upper_limit_kw"),
        ("ratedPowerLowerLimitkW", "rated_power_lower_limit_kw"),
        ("availableStorageCapacitykWh", "available_storage_capacity_kwh"),
        ("optimalSocPcnt", "optimal_soc_pcnt"),
        ("soc", "soc"),
        ("siteId", "site_id"),
        ("isOnline", "is_online"),
        ("startAt", "start_at"),
        ("storedHydrogenKg", "stored_hydrogen_kg"),
        ("HTTPStatus", "http_status"),
        ("already_snake", "already_snake"),
        ("kW", "k_w"),  # a bare unit is not a suffix
    ],
)
def test_column_names(field: str, column: str) -> None:
    assert column_name(field) == column


def test_schedule_rows_marker_entries_and_extras() -> None:
    site = {
        "siteId": SITE,
        "schedules": [
            {
                "asset": "grid",
                "type": "upperLimitkW",
                "unit": "kW",
                "entries": [
                    {
                        "startAt": "2026-06-01T08:00:00Z",
                        "endAt": "2026-06-01T10:00:00Z",
                        "value": 50,
                    },
                    {
                        "startAt": "2026-06-01T10:00:00Z",
                        "endAt": "2026-06-01T11:00:00Z",
                        "value": 40,
                        "source": "optimizer",
                    },
                ],
            },
            {"asset": "bess", "type": "activePowerkW", "entries": []},  # cleared
        ],
    }
    assert schedule_rows(site) == [
        {"site_id": SITE},
        {
            "site_id": SITE,
            "asset": "grid",
            "type": "upperLimitkW",
            "unit": "kW",
            "start_at": h(8),
            "end_at": h(10),
            "value": 50.0,
        },
        {
            "site_id": SITE,
            "asset": "grid",
            "type": "upperLimitkW",
            "unit": "kW",
            "start_at": h(10),
            "end_at": h(11),
            "value": 40.0,
            "source": "optimizer",
        },
    ]


def test_schedule_rows_spell_equal_values_one_way() -> None:
    """The scd2 row hash is taken over the extracted values: equal values, one spelling."""

    def row(start: str, end: str, value: object) -> dict:
        entry = {"startAt": start, "endAt": end, "value": value}
        site = {"siteId": SITE, "schedules": [{"asset": "g", "type": "x", "entries": [entry]}]}
        return schedule_rows(site)[1]

    same = [
        row("2026-06-01T08:00:00Z", "2026-06-01T10:00:00Z", 50),
        row("2026-06-01T08:00:00.000Z", "2026-06-01T10:00:00+00:00", 50.0),
        row("2026-06-01T10:00:00+02:00", "2026-06-01T12:00:00+02:00", 50),
    ]
    assert same[0] == same[1] == same[2]
    assert repr(same[0]) == repr(same[2]) and same[0]["start_at"] == h(8)
    odd = row("garbage", "2026-06-01T10:00:00Z", True)
    assert (odd["start_at"], odd["value"]) == ("garbage", True)


def test_entry_hash_covers_the_six_entry_fields_only() -> None:
    """Issue 11: a field the API adds to unchanged entries (or schedules) is no change of the
    entry; a row read back from the warehouse (what the upgrade hashes) hashes the same."""

    def rows_of(extra_entry: dict, extra_schedule: dict) -> list[dict]:
        entry = {"startAt": "2026-06-01T08:00:00Z", "endAt": "2026-06-01T10:00:00Z", "value": 50}
        schedule = {"asset": "grid", "type": "upperLimitkW", "entries": [{**entry, **extra_entry}]}
        site = {"siteId": SITE, "schedules": [{**schedule, **extra_schedule}]}
        return [with_entry_hash(r) for r in schedule_rows(site)]

    plain = rows_of({}, {})
    grown = rows_of({"priority": "high", "source": {"by": "optimizer"}}, {"unit": "kW"})
    assert grown[1]["priority"] == "high" and grown[1]["unit"] == "kW"  # stored, not hashed
    assert [r["entry_hash"] for r in grown] == [r["entry_hash"] for r in plain]
    assert len({r["entry_hash"] for r in plain}) == 2  # the marker row has one of its own

    row = {k: v for k, v in plain[1].items() if k != "entry_hash"}
    assert set(row) == set(ENTRY_HASH_FIELDS)
    read_back = {
        **row,
        "start_at": datetime(2026, 6, 1, 10, tzinfo=timezone(timedelta(hours=2))),
        "value": 50,
        "_dlt_id": "dlts-own-row-hash",
    }
    assert entry_hash(read_back) == plain[1]["entry_hash"]
    for name in ENTRY_HASH_FIELDS:  # each of the six counts
        assert entry_hash({**row, name: None}) != entry_hash(row), name
    assert entry_hash({**row, "value": 50.5}) != entry_hash(row)
    assert entry_hash({**row, "end_at": h(11)}) != entry_hash(row)


def test_schedule_rows_cleared_missing_and_duplicates() -> None:
    assert schedule_rows({"siteId": SITE, "schedules": []}) == [{"site_id": SITE}]
    assert schedule_rows({"siteId": SITE}) == []  # unknown, not cleared: no marker
    entry = {"startAt": "2026-06-01T08:00:00Z", "endAt": "2026-06-01T09:00:00Z"}
    twice = {
        "siteId": SITE,
        "schedules": [
            {
                "asset": "grid",
                "type": "x",
                "entries": [{**entry, "value": 1}, {**entry, "value": 2}],
            }
        ],
    }
    assert [r.get("value") for r in schedule_rows(twice)] == [None, 2]


def test_site_row_keeps_new_fields_and_drops_nested_tables() -> None:
    site = {
        "siteId": SITE,
        "siteName": "S",
        "isOnline": False,
        "reportedAt": "x",
        "timeZone": "UTC",
        "schedules": [],
        "assets": {},
    }
    assert site_row(site, AT) == {
        "site_id": SITE,
        "site_name": "S",
        "is_online": False,
        "reported_at": "x",
        "time_zone": "UTC",
        "last_seen_at": AT,
    }


def test_asset_rows_split_static_fields_from_readings() -> None:
    assets = {
        "bess": {
            "id": "0-bess",
            "type": "bess",
            "ratedPowerUpperLimitkW": 100,
            "availableStorageCapacitykWh": 500,
            "activePowerkW": 30,
            "soc": 75,
        },
        "hydrogen": {
            "id": "0-h2",
            "type": "hydrogen",
            "ratedPowerUpperLimitkW": 80,
            "storedHydrogenKg": 31.5,
        },
    }
    current, readings = asset_rows(SITE, assets, AT)
    assert current == [
        {
            "asset_id": "0-bess",
            "asset_type": "bess",
            "rated_power_upper_limit_kw": 100,
            "available_storage_capacity_kwh": 500,
            "active_power_kw": 30,
            "soc": 75,
            "site_id": SITE,
            "asset_kind": "bess",
            "last_seen_at": AT,
        },
        {
            "asset_id": "0-h2",
            "asset_type": "hydrogen",
            "rated_power_upper_limit_kw": 80,
            "stored_hydrogen_kg": 31.5,
            "site_id": SITE,
            "asset_kind": "hydrogen",
            "last_seen_at": AT,
        },
    ]
    assert readings == [
        {
            "active_power_kw": 30,
            "soc": 75,
            "site_id": SITE,
            "asset_kind": "bess",
            "snapshot_at": AT,
        },
        {"stored_hydrogen_kg": 31.5, "site_id": SITE, "asset_kind": "hydrogen", "snapshot_at": AT},
    ]
    # a list of assets (keyed by type) is read the same way; junk is ignored
    as_list = list(assets.values()) + ["junk"]
    assert asset_rows(SITE, as_list, AT) == (current, readings)
    assert asset_rows(SITE, None, AT) == ([], [])


@pytest.mark.parametrize(
    ("body", "endpoint", "problem"),
    [
        ({"sites": []}, "/api/v1/public/sites", None),
        ({"sites": [{"siteId": SITE}]}, "/api/v1/public/sites", None),
        ({"data": []}, "/api/v1/public/sites", "no 'sites' list"),
        ([], "/api/v1/public/sites", "expected a JSON object, got list"),
        ({"sites": [{"siteName": "x"}]}, "/api/v1/public/sites", "site 0: no 'siteId'"),
        (
            {"siteId": SITE, "schedules": {}},
            f"/api/v1/public/sites/{SITE}",
            "'schedules' is not a list",
        ),
        (
            {"siteId": SITE, "schedules": [{"type": "x", "entries": []}]},
            "/x/sites/1",
            "schedule 0 has no 'asset'",
        ),
        (
            {"siteId": SITE, "schedules": [{"asset": "a", "type": "x", "entries": [{"value": 1}]}]},
            "/x/sites/1",
            "schedule 0 has an entry without 'startAt'",
        ),
        (
            {"siteId": SITE, "schedules": [{"asset": "a", "type": "x", "entries": None}]},
            "/x/sites/1",
            None,
        ),
    ],
)
def test_validate(body: object, endpoint: str, problem: str | None) -> None:
    assert validate(body, endpoint) == problem


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (
            b'{"error": "internal_server_error", "message": "An unexpected error occurred"}',
            ("internal_server_error", "An unexpected error occurred"),
        ),
        (b'{"error": {"code": "x", "message": "y"}}', ("x", "y")),
        (b"<html>", (None, None)),
        (b"[1]", (None, None)),
    ],
)
def test_describe_error(content: bytes, expected: tuple) -> None:
    response = Response()
    response._content = content
    assert describe_error(response) == expected


def test_base_url_and_version() -> None:
    assert split_base_url("https://h.example/", "v1") == ("https://h.example", "v1")
    assert split_base_url("https://h.example/gw/api/v0/public", "v1") == (
        "https://h.example/gw",
        "v0",
    )
    assert split_base_url("https://h.example/api/v1/public/sites/", "v0") == (
        "https://h.example",
        "v1",
    )
    assert [normalize_version(v) for v in ("v1", "V0", "1", 0)] == ["v1", "v0", "v1", "v0"]
    with pytest.raises(ConfigurationError, match="api_version"):
        normalize_version("latest")


def test_type_watch_reports_uncoercible_values_once() -> None:
    known = {"assets": {"soc": {"data_type": "bigint"}, "reported_at": {"data_type": "timestamp"}}}
    watch = TypeWatch(lambda table: known.get(table, {}))
    watch.check("assets", {"soc": 75, "reported_at": "2026-06-01T08:00:00Z", "site_id": "x"})
    watch.check("assets", {"soc": "80", "new_field": 1.5})  # "80" coerces to bigint: fine
    assert watch.changes == []
    watch.check("assets", {"soc": "full", "new_field": "n/a"})
    watch.check("assets", {"soc": "empty"})
    assert watch.changes == [
        "assets.soc: bigint -> text (new values in soc__v_text)",
        "assets.new_field: double -> text (new values in new_field__v_text)",
    ]


def test_numbers_are_floats_whatever_their_spelling() -> None:
    """Acceptance: a whole first value typed the column BIGINT, so a later fraction went to a
    variant column. Every number is a float; identifiers and booleans are left alone."""
    assets = {"grid": {"id": 7, "type": "grid", "ratedPowerUpperLimitkW": 500,
                       "activePowerkW": 120, "online": True}}  # fmt: skip
    (current,), (reading,) = asset_rows(SITE, assets, AT)
    assert current["asset_id"] == 7 and current["online"] is True
    for row in (current, reading):
        assert all(type(row[c]) is float for c in row if c.endswith("_kw")), row
    site = {"siteId": SITE, "siteName": "S", "isOnline": True, "gatewayCount": 3,
            "schedules": [{"asset": "grid", "type": "x", "priority": 2, "entries": [
                {"startAt": "2026-06-01T08:00:00Z", "endAt": "2026-06-01T09:00:00Z",
                 "value": 5, "revision": 1}]}]}  # fmt: skip
    assert type(site_row(site, AT)["gateway_count"]) is float
    (_, entry) = schedule_rows(site)
    assert [type(entry[c]) for c in ("value", "priority", "revision")] == [float] * 3


def test_schedules_missing_from_the_list_are_taken_from_the_detail() -> None:
    """Acceptance: a list that leaves ``schedules`` out (it is the detail's object too) kept
    the site's old schedule active for ever; the detail's schedules count now."""
    entry = {"startAt": "2026-06-01T08:00:00Z", "endAt": "2026-06-01T09:00:00Z", "value": 5}
    listed = {"siteId": SITE, "siteName": "S"}
    detail = {**listed, "schedules": [{"asset": "grid", "type": "x", "entries": [entry]}]}
    marker, row = schedule_rows(listed, detail)
    assert marker == {"site_id": SITE} and row["value"] == 5.0
    cleared = {**listed, "schedules": [{"asset": "grid", "type": "x", "entries": []}]}
    assert schedule_rows(listed, cleared) == [{"site_id": SITE}]  # cleared: retires
    assert schedule_rows(listed, {"siteId": SITE}) == []  # unknown in both: left as is
    assert schedule_rows(listed, None) == []  # the detail vanished (404): left as is
    # the list wins when it has them
    assert schedule_rows({**listed, "schedules": []}, detail) == [{"site_id": SITE}]
