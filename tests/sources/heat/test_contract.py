"""Contract tests: the documented HEAT payloads, replayed from cassettes, through dlt.

The cassettes in ``cassettes/`` are hand-written from the API reference
(``/work/shared/apis/heat.md``: /health, the site list, a site's detail, the error body), with
fixed dates and no Authorization header. Record mode ``none`` plus a socket guard: an
unexpected request fails the test instead of reaching the network.
"""

from __future__ import annotations

import json
import re
import socket
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import dlt
import pytest
import vcr
import yaml
from dlt.pipeline.exceptions import PipelineStepFailed
from vcr.cassette import Cassette

from sources.common import (
    AuthenticationError,
    SolarsyncError,
    SourceUnavailableError,
    solarsync_error_in,
    stats_for,
)
from sources.heat import heat
from tests.sources.heat.conftest import DLT_TABLES, TABLES, columns, rows, tables

KEY = "agk_cassette01.ags_CASSETTESECRET9"
BASE = "https://heat.example.com"
CASSETTES = Path(__file__).parent / "cassettes"
SITE = "123e4567-e89b-12d3-a456-426614174000"

HEAT_VCR = vcr.VCR(
    cassette_library_dir=str(CASSETTES),
    record_mode="none",
    match_on=["method", "path", "query"],
    filter_headers=["authorization", "cookie", "set-cookie"],
    decode_compressed_response=True,
)


@contextmanager
def replay(name: str) -> Iterator[tuple[Cassette, list[tuple[str, str | None]]]]:
    """Replay ``cassettes/<name>``; yields the cassette and (path, Authorization) of each
    request it answered."""
    with HEAT_VCR.use_cassette(name) as cassette:
        sent: list[tuple[str, str | None]] = []
        play = cassette.play_response

        def recording_play(request: Any) -> Any:
            sent.append((request.path, request.headers.get("Authorization")))
            return play(request)

        cassette.play_response = recording_play  # type: ignore[method-assign]
        yield cassette, sent


@pytest.fixture(autouse=True)
def no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    real_getaddrinfo = socket.getaddrinfo

    def guarded_getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
        if host not in (None, "localhost", "127.0.0.1", "::1"):
            raise AssertionError(f"contract test tried to resolve {host!r}")
        return real_getaddrinfo(host, *args, **kwargs)

    def guarded_connect(self: socket.socket, address: Any) -> None:
        raise AssertionError(f"contract test tried to connect to {address!r}")

    monkeypatch.setattr(socket, "getaddrinfo", guarded_getaddrinfo)
    monkeypatch.setattr(socket.socket, "connect", guarded_connect)


def run(tmp_path: Path, **kwargs: Any) -> dlt.Pipeline:
    pipeline = dlt.pipeline(
        pipeline_name="heat_contract",
        destination=dlt.destinations.duckdb(str(tmp_path / "w.duckdb")),
        dataset_name="heat",
    )
    source = heat(base_url=BASE, api_key=KEY, backoff_factor=0.01, **kwargs)
    pipeline.run(source, loader_file_format="parquet")
    return pipeline


# --------------------------------------------------------------------------- 1. full sync
def test_documented_payloads_land_as_documented(tmp_path: Path) -> None:
    with replay("full_sync.yaml") as (cassette, sent):
        pipeline = run(tmp_path)
    assert cassette.all_played and cassette.play_count == 3
    assert [p for p, _ in sent] == [
        "/health",
        "/api/v1/public/sites",
        f"/api/v1/public/sites/{SITE}",
    ]
    assert [a for _, a in sent] == [None, f"Bearer {KEY}", f"Bearer {KEY}"]  # /health: no auth

    wh = tmp_path / "w.duckdb"
    assert tables(wh) == TABLES | DLT_TABLES
    (at,) = {r["snapshot_at"] for r in rows(wh, "select snapshot_at from heat.site_status_history")}
    reported = datetime(2025, 6, 1, 8, tzinfo=UTC)
    assert rows(wh, "select * exclude (_dlt_load_id, _dlt_id) from heat.sites") == [
        {
            "site_id": SITE,
            "site_name": "Site 1",
            "is_online": True,
            "reported_at": reported,
            "last_seen_at": at,
            "account": "default",  # the single-account configuration (docs/accounts.md)
        }
    ]

    def t(hour: int) -> datetime:
        return datetime(2026, 6, 1, hour, tzinfo=UTC)

    entries = rows(
        wh,
        "select site_id, asset, type, start_at, end_at, value, _dlt_valid_from, "
        "_dlt_valid_to from heat.schedule_entries order by asset, type",
    )
    assert [tuple(e.values()) for e in entries] == [
        (SITE, "bess", "activePowerkW", t(8), t(10), -50.0, at, None),
        (SITE, "bess", "optimalSocPcnt", t(10), t(12), 80.0, at, None),
        (SITE, "grid", "activePowerkW", t(10), t(12), 30.0, at, None),
        (SITE, "grid", "lowerLimitkW", t(8), t(10), -20.0, at, None),
        (SITE, "grid", "upperLimitkW", t(8), t(10), 50.0, at, None),
        (SITE, "solar", "solarCurtailmentPcnt", t(8), t(12), 10.0, at, None),
    ]
    assets = rows(
        wh,
        "select asset_kind, asset_id, asset_type, rated_power_upper_limit_kw, "
        "rated_power_lower_limit_kw, active_power_kw, available_storage_capacity_kwh, "
        "soc from heat.assets order by asset_kind",
    )
    assert [tuple(a.values()) for a in assets] == [
        ("bess", "0-bess", "bess", 100, -100, 30, 500, 75),
        ("ev", "0-ev", "ev", 50, 0, 22, None, None),
        ("genset", "0-genset", "genset", 300, 0, 0, None, None),
        ("grid", "0-grid", "grid", 500, -500, 120, None, None),
        ("heatpump", "0-heatpump", "heatpump", 20, 0, 10, None, None),
        ("load", "0-load", "load", 400, 0, 250, None, None),
        ("solar", "0-solar", "solar", 200, 0, 150, None, None),
    ]
    readings = rows(
        wh,
        "select * exclude (_dlt_load_id, _dlt_id) from heat.asset_readings "
        "where asset_kind = 'bess'",
    )
    assert readings == [
        {
            "site_id": SITE,
            "asset_kind": "bess",
            "snapshot_at": at,
            "active_power_kw": 30,
            "soc": 75,
            "account": "default",
        }
    ]
    assert set(columns(wh, "asset_readings")) == {
        "site_id",
        "asset_kind",
        "snapshot_at",
        "active_power_kw",
        "soc",
        "account",
        "_dlt_load_id",
        "_dlt_id",
    }
    types = columns(wh, "schedule_entries")
    assert (types["start_at"], types["_dlt_valid_from"], types["value"]) == (
        "TIMESTAMP WITH TIME ZONE",
        "TIMESTAMP WITH TIME ZONE",
        "DOUBLE",
    )
    assert_key_nowhere(wh, tmp_path / "dlt")
    state = pipeline.state["sources"]["heat"]["resources"]
    assert state["schedule_entries"]["last_sync"]["rows"] == 6


def assert_key_nowhere(warehouse: Path, dlt_dir: Path) -> None:
    for schema, table in [("heat", t) for t in tables(warehouse)]:
        for row in rows(warehouse, f'select * from {schema}."{table}"'):
            assert "CASSETTESECRET9" not in repr(row), table
    files = [p for p in dlt_dir.rglob("*") if p.is_file()]
    assert files
    for path in files:
        assert b"CASSETTESECRET9" not in path.read_bytes(), path


# --------------------------------------------------------------------------- 2. errors
@pytest.mark.parametrize(
    ("cassette_name", "error_type", "endpoint", "expected", "text"),
    [
        (
            "error_revoked_key.yaml",
            AuthenticationError,
            "/api/v1/public/sites",
            ["/health", "/api/v1/public/sites"],
            "API key revoked or expired [401 unauthorized]. the API key was rejected (revoked or "
            "expired): create a new key in the access group and set SOURCES__HEAT__API_KEY",
        ),
        (
            "health_unavailable.yaml",
            SourceUnavailableError,
            "/health",
            ["/health", "/health"],
            "the HEAT API reports it is unavailable (HTTP 503) [503]. nothing was loaded",
        ),
        (
            "detail_server_error.yaml",
            SourceUnavailableError,
            f"/api/v1/public/sites/{SITE}",
            ["/health", "/api/v1/public/sites", *[f"/api/v1/public/sites/{SITE}"] * 2],
            "An unexpected error occurred (after 2 attempts) [500 internal_server_error]",
        ),
    ],
    ids=["401-revoked", "health-503", "detail-500"],
)
def test_errors_fail_the_run_clearly_and_load_nothing(
    tmp_path: Path,
    cassette_name: str,
    error_type: type[SolarsyncError],
    endpoint: str,
    expected: list[str],
    text: str,
) -> None:
    with replay(cassette_name) as (cassette, sent):
        with pytest.raises((PipelineStepFailed, SolarsyncError)) as info:
            run(tmp_path, max_attempts=2)
    assert [p for p, _ in sent] == expected and cassette.all_played
    error = solarsync_error_in(info.value)
    assert type(error) is error_type
    assert (error.source, error.endpoint) == ("heat", endpoint)
    assert str(error).startswith(f"heat {endpoint}: ") and text in str(error)
    if error_type is AuthenticationError:
        assert stats_for("heat").retries == 0
    everything = "".join(traceback.format_exception(info.value))
    assert "CASSETTESECRET9" not in everything
    wh = tmp_path / "w.duckdb"
    assert not wh.exists() or not tables(wh) - DLT_TABLES  # nothing loaded


# --------------------------------------------------------------------------- 3. no secrets
def secrets_in_cassette(text: str) -> list[str]:
    problems = [f"a key-shaped string {m!r}" for m in re.findall(r"\bag[ks]_[A-Za-z0-9]{3,}", text)]
    if re.search(r"\bbearer\s+\S", text, re.IGNORECASE):
        problems.append("a Bearer token")
    for index, interaction in enumerate(yaml.safe_load(text)["interactions"]):
        for side in ("request", "response"):
            for name in interaction[side].get("headers") or {}:
                if name.lower() in ("authorization", "cookie", "set-cookie"):
                    problems.append(f"interaction {index}: {side} header {name}")
        body = interaction["response"]["body"]["string"]
        if body:
            json.loads(body)  # readable, decoded JSON
    return problems


def test_no_cassette_contains_a_secret_and_the_scan_has_teeth() -> None:
    files = sorted(CASSETTES.glob("*.yaml"))
    assert {f.name for f in files} == {
        "full_sync.yaml",
        "error_revoked_key.yaml",
        "health_unavailable.yaml",
        "detail_server_error.yaml",
    }
    assert {f.name: secrets_in_cassette(f.read_text()) for f in files} == {
        f.name: [] for f in files
    }
    clean = (CASSETTES / "full_sync.yaml").read_text()
    leaks = [
        clean.replace("Site 1", KEY, 1),
        clean.replace("Accept: [application/json]", "Authorization: [x]\n      Accept: [y]", 1),
        clean.replace('"Site 1"', '"Bearer abc"', 1),
    ]
    assert all(secrets_in_cassette(text) for text in leaks)
