"""Contract tests: the documented SolarAssistant payloads, replayed from cassettes, through dlt.

The cassettes in ``cassettes/`` carry the examples of the vendor's Cloud API and REST API pages
and of the official Python client's tests (``/work/shared/fixtures/solarassistant``), with
decoded bodies and fixed dates. They replay with record mode ``none`` and a socket guard: an
unexpected request fails the test instead of reaching the network.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import dlt
import pytest
import vcr
from vcr.cassette import Cassette

from sources.solarassistant import solarassistant
from tests.pipelines.test_secrets import find_in_tree, find_in_warehouse
from tests.sources.solarassistant.warehouse_check import rows, tables

KEY = "sa_CASSETTE_TOKEN_01"  # the test's API token: never in a cassette
SITE_TOKEN, SITE_KEY = "eyJhbGci...", "9u10PW2b..."  # as the docs print them
CLOUD, PROXY = "solar-assistant.io", "us-htz-1.solar-assistant.io"
CASSETTES = Path(__file__).parent / "cassettes"

CONTRACT_VCR = vcr.VCR(
    cassette_library_dir=str(CASSETTES),
    record_mode="none",
    match_on=["method", "scheme", "host", "port", "path", "query"],
    filter_headers=["authorization", "site-key", "cookie", "set-cookie"],
    decode_compressed_response=True,
)


@dataclass(frozen=True)
class Sent:
    method: str
    host: str
    path: str
    headers: dict[str, str]


@contextmanager
def replay(name: str) -> Iterator[tuple[Cassette, list[Sent]]]:
    with CONTRACT_VCR.use_cassette(name) as cassette:
        sent: list[Sent] = []
        play = cassette.play_response

        def recording_play(request: Any) -> Any:
            sent.append(Sent(request.method, request.host, request.path, dict(request.headers)))
            return play(request)

        cassette.play_response = recording_play  # type: ignore[method-assign]
        yield cassette, sent


@pytest.fixture(autouse=True)
def no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: Any, **kwargs: Any) -> None:
        raise AssertionError(f"contract test tried to reach the network: {args[:2]}")

    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    monkeypatch.setattr(socket.socket, "connect", refuse)


def sync(tmp_path: Path, cassette: str) -> tuple[dlt.Pipeline, Cassette, list[Sent]]:
    pipeline = dlt.pipeline(
        pipeline_name="t",
        destination=dlt.destinations.duckdb(str(tmp_path / "w.duckdb")),
        dataset_name="solarassistant",
    )
    with replay(cassette) as (played, sent):
        source = solarassistant(
            api_token=KEY, concurrency=1, backoff_factor=0, proxy_backoff_factor=0
        )
        pipeline.run(source, loader_file_format="parquet")
        assert played.all_played, f"{cassette}: not every interaction was requested"
    return pipeline, played, sent


def poll_row(tmp_path: Path) -> dict[str, Any]:
    (row,) = rows(tmp_path / "w.duckdb", "select * from solarassistant.metric_polls")
    return row


# --------------------------------------------------------------------------- full sync
def test_full_sync_loads_every_documented_table(tmp_path: Path) -> None:
    started = datetime.now(UTC)
    pipeline, played, sent = sync(tmp_path, "full_sync.yaml")
    db = tmp_path / "w.duckdb"
    assert played.play_count == 8
    assert tables(db) == {
        "users", "sites", "site_members", "organizations", "org_users", "metrics", "metric_polls"
    }  # fmt: skip

    # requests: the API token on every cloud call; the site token, id and key on the proxy's
    cloud = [s for s in sent if s.host == CLOUD]
    assert all(s.headers["Authorization"] == f"Bearer {KEY}" for s in cloud)
    assert [s.path for s in cloud if s.method == "POST"] == ["/api/v1/sites/19489/authorize"]
    (proxy,) = [s for s in sent if s.host == PROXY]
    assert (proxy.method, proxy.path) == ("GET", "/api/v1/metrics")
    assert proxy.headers["Authorization"] == f"Bearer {SITE_TOKEN}"
    assert (proxy.headers["Site-Id"], proxy.headers["Site-Key"]) == ("19489", SITE_KEY)

    (user,) = rows(
        db,
        "select id, email, first_name, last_name, phone_number, locale from solarassistant.users",
    )
    assert user == {
        "id": 1, "email": "me@example.com", "first_name": "Alice", "last_name": "Smith",
        "phone_number": "+1 555 000 0000", "locale": "en",
    }  # fmt: skip
    (site,) = rows(db, "select * exclude (_dlt_load_id, _dlt_id) from solarassistant.sites")
    assert site == {
        "id": 19489, "name": "my-site", "proxy": "us-htz-1",
        "last_seen_at": datetime(2026, 5, 11, 12, tzinfo=UTC),
        "owner__id": 1, "owner__email": "me@example.com",
        "owner__first_name": "Alice", "owner__last_name": "Smith",
        "organization__id": 7, "organization__name": "Acme",
        "organization__cloud_host": "acme.solar-assistant.io",
        "account": "default",  # the single-account configuration (docs/accounts.md)
    }  # fmt: skip
    members = rows(
        db,
        "select site_id, user_id, email, first_name, last_name, role from solarassistant.site_members",
    )
    assert members == [
        {"site_id": 19489, "user_id": 1042, "email": "owner@example.com",
         "first_name": "Jane", "last_name": "Smith", "role": "owner"}
    ]  # fmt: skip
    assert rows(db, "select id, name, cloud_host from solarassistant.organizations") == [
        {"id": 7, "name": "Acme", "cloud_host": "acme.solar-assistant.io"}
    ]
    assert rows(db, "select id, email from solarassistant.org_users") == [
        {"id": 1, "email": "me@example.com"}
    ]

    metrics = rows(db, "select * from solarassistant.metrics order by topic")
    polled = {m["polled_at"] for m in metrics}
    assert len(polled) == 1
    (polled_at,) = polled
    assert started - timedelta(seconds=1) <= polled_at <= datetime.now(UTC)
    assert [
        (m["site_id"], m["topic"], m["device"], m["group"], m["name"], m["unit"])
        + (m["value_number"], m["value_text"], m["value_type"])
        for m in metrics
    ] == [
        (19489, "total/battery_state_of_charge", "total", "Status", "Battery state of charge", "%", 80.0, "80", "number"),
        (19489, "total/load_power", "total", "Status", "Load power", "W", 940.0, "940", "number"),
        (19489, "total/pv_power", "total", "Status", "PV power", "W", 1240.0, "1240", "number"),
    ]  # fmt: skip
    poll = poll_row(tmp_path)
    assert (poll["site_id"], poll["polled_at"], poll["status"], poll["reason"]) == (
        19489, polled_at, "ok", None,
    )  # fmt: skip
    assert (poll["metric_count"], poll["authorized"], poll["http_status"]) == (3, True, None)

    # the site token and key: nowhere in the warehouse, the state or dlt's files
    secrets = [KEY, SITE_TOKEN, SITE_KEY]
    assert find_in_warehouse(db, secrets) == []
    assert find_in_tree(tmp_path, secrets) == []
    assert not any(s in str(pipeline.state) for s in secrets)


# --------------------------------------------------------------------------- quirks
def test_account_without_organization_skips_org_users(tmp_path: Path, caplog) -> None:
    sync(tmp_path, "no_organization.yaml")
    assert "org_users" not in tables(tmp_path / "w.duckdb")
    assert "sites" in tables(tmp_path / "w.duckdb")
    assert "org_users skipped" in caplog.text and "registered organization" in caplog.text
    assert poll_row(tmp_path)["status"] == "ok"


def test_expired_site_token_is_renewed_once(tmp_path: Path) -> None:
    _, played, sent = sync(tmp_path, "proxy_token_expired.yaml")
    assert [s.path for s in sent if s.method == "POST"] == ["/api/v1/sites/19489/authorize"] * 2
    assert len([s for s in sent if s.host == PROXY]) == 2
    poll = poll_row(tmp_path)
    assert (poll["status"], poll["metric_count"], poll["authorized"]) == ("ok", 3, True)


def test_offline_site_is_recorded_not_failed(tmp_path: Path) -> None:
    _, _, sent = sync(tmp_path, "site_offline.yaml")
    assert len([s for s in sent if s.host == PROXY]) == 2  # proxy_max_attempts
    poll = poll_row(tmp_path)
    assert (poll["status"], poll["http_status"], poll["metric_count"]) == ("offline", 502, 0)
    assert "Site offline" in poll["reason"] and "/api/v1/metrics" in poll["reason"]
    assert "metrics" not in tables(tmp_path / "w.duckdb")


def test_device_api_error_is_an_error_for_the_site(tmp_path: Path) -> None:
    _, _, sent = sync(tmp_path, "device_api_error.yaml")
    assert len([s for s in sent if s.host == PROXY]) == 1  # 4xx: not retried
    poll = poll_row(tmp_path)
    assert (poll["status"], poll["http_status"]) == ("error", 422)
    assert "topic: is invalid" in poll["reason"]


def test_client_row_shapes_device_number_and_discovery_fields(tmp_path: Path) -> None:
    sync(tmp_path, "metric_row_shapes.yaml")
    got = rows(
        tmp_path / "w.duckdb",
        'select topic, device, number, "group", name, unit, value_number, value_text '
        "from solarassistant.metrics",
    )
    # the same topic twice in one answer (plain + discovery row): stored once
    assert got == [
        {"topic": "total/pv_power", "device": "total", "number": None, "group": "Info",
         "name": "PV Power", "unit": "W", "value_number": 1234.0, "value_text": "1234"}
    ]  # fmt: skip
