"""Pure functions of the SolarAssistant source: value typing, outcome classification, site
selection, response shapes, token handling."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from sources.common import (
    ApiError,
    AuthenticationError,
    ConfigurationError,
    SourceUnavailableError,
    redact,
)
from sources.solarassistant import _site_row
from sources.solarassistant.client import (
    SiteAccess,
    SiteAuth,
    cloud_base_url,
    proxy_base_url,
)
from sources.solarassistant.metrics import _is_fatal, classify, metric_row, typed_value
from sources.solarassistant.options import select, selectors
from sources.solarassistant.shapes import validate_cloud


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (1240, (1240.0, "1240", "number")),
        (-312, (-312.0, "-312", "number")),
        (12.5, (12.5, "12.5", "number")),
        (True, (1.0, "true", "boolean")),
        (False, (0.0, "false", "boolean")),
        ("Solar/Battery", (None, "Solar/Battery", "string")),
        ("462.4", (462.4, "462.4", "string")),  # numeric text is queryable as a number
        (" -3e2 ", (-300.0, " -3e2 ", "string")),
        ("1e999", (None, "1e999", "string")),  # not a finite number
        ("nan", (None, "nan", "string")),
        ("", (None, "", "string")),
        (None, (None, None, "null")),
        ([1, "a"], (None, '[1,"a"]', "json")),
        ({"a": 1}, (None, '{"a":1}', "json")),
    ],
)
def test_typed_value(value, expected):
    assert typed_value(value) == expected


def test_metric_row_keeps_api_fields_and_derives_device_from_topic():
    at = datetime(2026, 5, 11, 12, tzinfo=UTC)
    plain = metric_row(7, at, {"topic": "battery_2/voltage", "group": "Status", "value": 52.1})
    assert plain == {
        "site_id": 7, "topic": "battery_2/voltage", "polled_at": at, "device": "battery_2",
        "group": "Status", "name": None, "unit": None, "number": None,
        "value_number": 52.1, "value_text": "52.1", "value_type": "number",
    }  # fmt: skip
    rich = metric_row(7, at, {"topic": "inverter_1/x", "device": "Inverter 1", "number": "1"})
    assert (rich["device"], rich["number"], rich["value_type"]) == ("Inverter 1", 1, "null")


@pytest.mark.parametrize(
    ("exc", "status"),
    [
        (SourceUnavailableError("could not get a response (ConnectTimeout)"), "offline"),
        (SourceUnavailableError("Bad Gateway", status=502), "offline"),
        (SourceUnavailableError("Gateway Timeout", status=504), "offline"),
        (ApiError("Site is offline", status=404), "offline"),
        (ApiError("Site not found", status=404), "error"),
        (ApiError("topic: is invalid", status=422), "error"),
        (AuthenticationError("Unauthorized", status=401), "error"),
        (SourceUnavailableError("could not get a response after 2 attempts (SSLError)"), "error"),
        (SourceUnavailableError("Internal Server Error", status=500), "error"),
    ],
)
def test_classify(exc, status):
    assert classify(exc) == status


def test_only_the_account_token_rejected_at_authorize_is_fatal():
    assert _is_fatal(AuthenticationError("x", status=401, endpoint="/sites/1/authorize"))
    assert not _is_fatal(AuthenticationError("x", status=403, endpoint="/sites/1/authorize"))
    assert not _is_fatal(AuthenticationError("x", status=401, endpoint="/api/v1/metrics"))


def test_site_selection():
    sites = [{"id": 1, "name": "home"}, {"id": 22, "name": "barn"}, {"id": 3, "name": "x"}]
    assert selectors(None) == [] and selectors("all") == [] and selectors(["*"]) == []
    assert selectors(" 22, home ,") == ["22", "home"]
    assert selectors([22, "x"]) == ["22", "x"]
    assert select(sites, []) == sites
    assert select(sites, ["22", "home", "nope"]) == [sites[0], sites[1]]


def test_site_row_merges_details_and_moves_members_out():
    row = _site_row(
        {"id": 1, "name": "a", "inverter": "Deye"},
        {"id": 1, "name": "a", "organization": None, "owner": {"id": 9}, "users": [{"id": 9}]},
    )
    assert row == {"id": 1, "name": "a", "inverter": "Deye", "owner": {"id": 9}}
    assert _site_row({"id": 2}, None) == {"id": 2}  # details failed: the list row alone


@pytest.mark.parametrize(
    ("endpoint", "body", "problem"),
    [
        ("/user", {"id": 1}, None),
        ("/user", [], "expected an object with an 'id'"),
        ("/sites", [{"id": 1}], None),
        ("/sites", {"error": "x"}, "expected a JSON array, got dict"),
        ("/sites", [{"name": "no id"}], "row 0 has no 'id'"),
        ("/sites/5", {"id": 5}, None),
        ("/sites/5/users", [{"id": 1, "role": "owner"}], None),
        ("/users", [], None),
        ("/sites/5/authorize", {"host": "h", "token": "t", "site_key": "k"}, None),
        ("/sites/5/authorize", {"host": "h", "token": "t"}, "the authorization lacks ['site_key']"),
    ],
)
def test_cloud_response_shapes(endpoint, body, problem):
    assert validate_cloud(body, endpoint) == problem


def test_site_access_never_shows_its_secrets():
    access = SiteAccess(19489, "h", site_key="KEY-abc123", token="TOKEN-xyz789", expires_at=0)
    assert "KEY-abc123" not in repr(access) and "TOKEN-xyz789" not in repr(access)
    assert repr(SiteAuth(access)) == "SiteAuth(***)"
    assert not access.valid()
    assert SiteAccess(1, "h", "k", "t", expires_at=10**10).valid()


def test_token_expiry_from_the_answer_or_seven_days():
    from sources.solarassistant.client import _expiry

    assert _expiry({}, 1000.0) == 1000.0 + 7 * 24 * 3600
    assert _expiry({"expires_in": 60}, 1000.0) == 1060.0
    assert _expiry({"expires_at": "1970-01-01T00:30:00Z"}, 1000.0) == 1800.0
    short = SiteAccess(1, "h", "k", "t", expires_at=1060.0, issued_at=1000.0)
    assert short.valid(now=1050.0) and not short.valid(now=1055.0)  # renewed 6 s early


def test_authorize_registers_secrets_for_redaction(scripted):
    from sources.solarassistant.client import SolarAssistantClient
    from tests.conftest import Reply

    scripted.queue(
        Reply(
            200,
            {"host": "p.example", "site_id": 5, "site_key": "KEY-q1w2e3", "token": "TOK-r4t5y6"},
        )
    )
    client = SolarAssistantClient("sa_UNITTOKEN", scripted.url + "/v1", max_attempts=1)
    access, fresh = client.site_access(5)
    assert fresh and access.host == "p.example"
    assert redact("a TOK-r4t5y6 b KEY-q1w2e3 c") == "a *** b *** c"
    assert (
        scripted.seen[0].method == "POST" and scripted.seen[0].path == "/api/v1/sites/5/authorize"
    )
    assert client.site_access(5) == (access, False)  # reused, no second request
    assert len(scripted.seen) == 1


def test_cloud_base_url_takes_the_host_or_the_api_root():
    assert cloud_base_url("https://solar-assistant.io") == "https://solar-assistant.io/api/v1"
    assert cloud_base_url("http://127.0.0.1:8080/") == "http://127.0.0.1:8080/api/v1"
    assert cloud_base_url("https://x.io/api/v1/") == "https://x.io/api/v1"
    assert cloud_base_url("https://x.io/custom/root") == "https://x.io/custom/root"
    with pytest.raises(ConfigurationError, match="not an http"):
        cloud_base_url("solar-assistant.io")


def test_proxy_is_https_only():
    assert proxy_base_url("us-htz-1.solar-assistant.io") == "https://us-htz-1.solar-assistant.io"
    assert proxy_base_url("https://127.0.0.1:8443/") == "https://127.0.0.1:8443"
    with pytest.raises(ConfigurationError, match="not HTTPS"):
        proxy_base_url("http://us-htz-1.solar-assistant.io")
