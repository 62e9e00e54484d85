"""Regression tests for what an independent stand-in of the documented API found: proxy bodies
the shared JSON check refused (NaN literals, ndjson, a bare row), values the warehouse could
not hold, settings given as JSON lists, and misleading messages."""

from __future__ import annotations

import math
from datetime import UTC, datetime

import pytest

from sources.common import MalformedResponseError
from sources.solarassistant import _compact, _member_row
from sources.solarassistant.client import SolarAssistantClient, parse_metrics_body
from sources.solarassistant.metrics import metric_row, metrics_table, poll_sites, typed_value
from sources.solarassistant.options import selectors, zones
from tests.conftest import Reply

AT = datetime(2026, 5, 11, 12, tzinfo=UTC)
ROW = '{"topic":"total/pv_power","group":"Status","name":"PV power","value":1240,"unit":"W"}'


# --------------------------------------------------------------------------- body forms
def test_a_json_array_of_rows_is_read_as_documented():
    body, problem = parse_metrics_body(f"[{ROW}]".encode())
    assert problem is None and body == [
        {"topic": "total/pv_power", "group": "Status", "name": "PV power", "value": 1240,
         "unit": "W"}
    ]  # fmt: skip


def test_nan_and_infinity_literals_do_not_cost_the_site_its_poll():
    # what Python's json.dumps writes for a non-finite float: not JSON, but a whole site's
    # poll must not be lost over one value
    text = '[{"topic": "a/x", "value": NaN}, {"topic": "a/y", "value": -Infinity}, ' + ROW + "]"
    body, problem = parse_metrics_body(text.encode())
    assert problem is None and [r["topic"] for r in body] == ["a/x", "a/y", "total/pv_power"]
    assert math.isnan(body[0]["value"]) and body[1]["value"] == -math.inf
    assert typed_value(body[0]["value"]) == (None, "NaN", "number")
    assert typed_value(body[1]["value"]) == (None, "-Infinity", "number")
    assert typed_value(math.inf) == (None, "Infinity", "number")


def test_ndjson_rows_and_a_bare_row_are_read():
    ndjson = f"{ROW}\n{ROW.replace('pv_power', 'load_power')}\n".encode()
    body, problem = parse_metrics_body(ndjson, "application/x-ndjson")
    assert problem is None and [r["topic"] for r in body] == ["total/pv_power", "total/load_power"]
    assert parse_metrics_body(b"", "application/x-ndjson") == ([], None)  # no row at all
    body, problem = parse_metrics_body(ROW.encode())
    assert problem is None and len(body) == 1


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b"", "not valid JSON"),
        (b"<html>502 Bad Gateway</html>", "not valid JSON"),
        (b'{"error": "site offline"}', "the proxy answered an error: site offline"),
        (b'[{"group": "Status"}]', "row 0 has no 'topic'"),
        (b'{"topic": "a"}\n[1]', "not valid JSON"),
    ],
)
def test_what_is_not_rows_is_still_refused(content, expected):
    body, problem = parse_metrics_body(content)
    assert body == [] and problem is not None and expected in problem


def _client(scripted, monkeypatch) -> SolarAssistantClient:
    """A client whose cloud and proxy are the scripted (plain HTTP) server."""
    root = scripted.url.removesuffix("/api")
    monkeypatch.setattr(
        "sources.solarassistant.client.proxy_base_url", lambda host, site_id=None: root
    )
    return SolarAssistantClient(
        "sa_UNITTOKEN",
        scripted.url + "/v1",
        max_attempts=1,
        backoff_factor=0,
        proxy_max_attempts=2,
        proxy_backoff_factor=0,
    )


AUTHORIZE = Reply(200, {"host": "p", "site_id": 5, "site_key": "KEY-a1s2d3", "token": "TOK-f4g5"})


def test_the_proxy_answer_is_parsed_by_the_source_not_refused_by_the_http_layer(
    scripted, monkeypatch
):
    scripted.queue(AUTHORIZE, Reply(200, '[{"topic": "a/x", "value": NaN}]'))
    (result,) = poll_sites(_client(scripted, monkeypatch), [{"id": 5}], [None], 1, AT)
    assert result.status == "ok" and result.table is not None
    assert result.table.to_pylist()[0]["value_text"] == "NaN"
    metrics_request = scripted.seen[1]
    assert metrics_request.path == "/api/v1/metrics"
    assert metrics_request.headers["Accept"] == "*/*"  # as the documented curl request


def test_a_malformed_proxy_body_is_retried_then_an_error_of_that_site_only(scripted, monkeypatch):
    scripted.queue(AUTHORIZE, Reply(200, "<html>captive portal</html>"), Reply(200, "oops"))
    client = _client(scripted, monkeypatch)
    with pytest.raises(MalformedResponseError) as caught:
        client.metrics(5)
    assert len(scripted.seen) == 3  # authorize + 2 attempts
    message = str(caught.value)
    assert "nothing from this run was loaded" not in message  # the other sites are
    assert "other sites are loaded" in message


# --------------------------------------------------------------------------- poll outcome
def test_authorized_is_recorded_even_when_the_poll_then_fails(scripted, monkeypatch):
    scripted.queue(AUTHORIZE, Reply(502, {"error": "Site offline"}), Reply(502, {}))
    (result,) = poll_sites(_client(scripted, monkeypatch), [{"id": 5}], [None], 1, AT)
    assert result.status == "offline"
    assert result.authorized is True  # a site token was obtained


def test_a_row_the_warehouse_cannot_hold_is_that_sites_error_not_the_runs(scripted, monkeypatch):
    def broken(*args, **kwargs):
        raise OverflowError("Python int too large to convert to C long")

    monkeypatch.setattr("sources.solarassistant.metrics.metrics_table", broken)
    scripted.queue(AUTHORIZE, Reply(200, f"[{ROW}]"))
    (result,) = poll_sites(_client(scripted, monkeypatch), [{"id": 5}], [None], 1, AT)
    assert result.status == "error" and "OverflowError" in result.reason


# --------------------------------------------------------------------------- values
@pytest.mark.parametrize(
    ("number", "stored"),
    [
        (2, 2),
        ("3", 3),
        (4.0, 4),  # an integral float
        (1.5, None),
        (12345678901234567890, None),  # beyond BIGINT (orjson keeps it an int up to 2**64)
        (-(2**63), -(2**63)),
        (True, None),
    ],
)
def test_device_number_fits_the_bigint_column(number, stored):
    row = metric_row(1, AT, {"topic": "inverter_1/x", "value": 1, "number": number})
    assert row["number"] == stored
    assert metrics_table([row]).num_rows == 1


# --------------------------------------------------------------------------- settings
def test_sites_and_topics_given_as_json_lists_in_env_vars():
    # dlt hands a setting typed Any over as the raw string of the env var
    assert selectors('["total/*", "battery_*/power"]') == ["total/*", "battery_*/power"]
    assert selectors('[19489, "my-site"]') == ["19489", "my-site"]
    assert selectors("['total/*', 'grid/*']") == ["total/*", "grid/*"]  # TOML-style quotes
    assert selectors(19489) == ["19489"]  # a single id from TOML
    assert selectors('["all"]') == []


# --------------------------------------------------------------------------- cloud rows
def test_null_fields_are_left_out_of_cloud_rows():
    member = {"id": 9, "email": "a@b.c", "phone_number": None, "role": "viewer"}
    assert _member_row(3, member) == {
        "site_id": 3, "user_id": 9, "email": "a@b.c", "role": "viewer"
    }  # fmt: skip
    assert _compact({"id": 1, "locale": None}) == {"id": 1}


# --------------------------------------------------------------------------- messages
def test_a_non_https_proxy_host_names_the_sites_authorize_endpoint():
    from sources.common import ConfigurationError
    from sources.solarassistant.client import proxy_base_url

    with pytest.raises(ConfigurationError) as caught:
        proxy_base_url("http://localhost:8443", 603)
    assert caught.value.endpoint == "/sites/603/authorize"
    assert "{site_id}" not in str(caught.value)


def test_a_malformed_authorization_is_that_sites_error_with_a_fitting_hint(scripted, monkeypatch):
    scripted.queue(Reply(200, {"host": "p", "site_id": 5, "site_key": "KEY-z9x8c7"}))
    (result,) = poll_sites(_client(scripted, monkeypatch), [{"id": 5}], [None], 1, AT)
    assert result.status == "error"
    assert "the authorization lacks ['token']" in result.reason
    assert "nothing from this run was loaded" not in result.reason
    assert "other sites are loaded" in result.reason


def test_the_topic_filter_holds_even_if_the_proxy_ignores_it(scripted, monkeypatch):
    everything = [
        {"topic": "total/pv_power", "value": 1},
        {"topic": "grid/power", "value": 2},
        {"topic": "Battery_1/State_of_charge", "value": 3},
    ]
    scripted.queue(AUTHORIZE, Reply(200, everything), Reply(200, everything))
    client = _client(scripted, monkeypatch)
    rows, _ = client.metrics(5, ["total/*", "battery_*/state_of_charge"])
    assert [r["topic"] for r in rows] == ["total/pv_power", "Battery_1/State_of_charge"]
    assert [s.path for s in scripted.seen[1:]] == ["/api/v1/metrics?topic=total%2F%2A"] + [
        "/api/v1/metrics?topic=battery_%2A%2Fstate_of_charge"
    ]


# --------------------------------------------------------------------------- numbers as sent
def test_numbers_are_read_exactly_and_kept_as_sent():
    # orjson reads integers beyond 64 bits as floats: '1.2345678901234568e+29' was stored
    huge = "123456789012345678901234567890"
    body, problem = parse_metrics_body(
        (
            f'[{{"topic": "a/huge", "value": {huge}}}, {{"topic": "a/neg", "value": -{huge}}},'
            ' {"topic": "a/frac", "value": 12.50, "number": 2.0},'
            ' {"topic": "a/exp", "value": 1e3}, {"topic": "a/far", "value": 1e400},'
            f' {{"topic": "a/nested", "value": {{"x": 1.50}}}}, {{"topic": "a/nan", "value": NaN}},'
            f' {{"topic": "a/long", "value": {"9" * 400}}}]'
        ).encode()
    )
    assert problem is None
    got = {r["topic"]: metric_row(1, AT, r) for r in body}
    typed = {t: (r["value_number"], r["value_text"], r["value_type"]) for t, r in got.items()}
    assert typed == {
        "a/huge": (1.2345678901234568e29, huge, "number"),
        "a/neg": (-1.2345678901234568e29, "-" + huge, "number"),
        "a/frac": (12.5, "12.50", "number"),
        "a/exp": (1000.0, "1e3", "number"),
        "a/far": (None, "1e400", "number"),  # beyond a double: no number, the text
        "a/nested": (None, '{"x":1.5}', "json"),
        "a/nan": (None, "NaN", "number"),
        "a/long": (None, "9" * 400, "number"),
    }
    assert got["a/frac"]["number"] == 2
    table = metrics_table(got.values())
    assert table.column("value_text").to_pylist()[0] == huge
    # newline-delimited rows are read exactly too
    body, problem = parse_metrics_body(f'{{"topic": "a/huge", "value": {huge}}}\n'.encode())
    assert problem is None and typed_value(body[0]["value"])[1] == huge


# --------------------------------------------------------------------------- failed polls
def _poll(site_id: int, status: str, reason: str | None = None):
    from sources.solarassistant.metrics import SitePoll

    return SitePoll(site_id=site_id, site_name=f"s{site_id}", status=status, reason=reason)


@pytest.mark.parametrize(
    ("statuses", "failed"),
    [
        ([], False),  # no site polled
        (["ok", "error"], False),  # data came in
        (["offline", "offline"], False),  # the sites' side: normal
        (["error", "error"], True),
        (["offline", "error"], True),  # no data, and an error on our side
    ],
)
def test_a_poll_fails_when_no_site_could_be_read_and_one_failed_with_an_error(statuses, failed):
    from sources.solarassistant.metrics import poll_errors

    results = [_poll(i, s, None if s == "ok" else f"{s} reason") for i, s in enumerate(statuses)]
    errors = poll_errors(results)
    assert bool(errors) is failed
    if failed:
        (message,) = errors
        assert message.startswith("solarassistant /api/v1/metrics: no site could be read")
        assert "error reason (site" in message and "metric_polls" in message


def test_the_failed_poll_message_groups_sites_by_reason_and_stays_short():
    from sources.solarassistant.metrics import poll_errors

    results = [_poll(i, "error", "TLS failed") for i in range(8)]
    results += [_poll(100 + i, "error", f"odd {i}") for i in range(4)]
    (message,) = poll_errors(results)
    assert "12 of 12 failed with an error" in message
    assert "TLS failed (sites 0, 1, 2, 3, 4, ...)" in message
    assert "odd 0 (site 100); odd 1 (site 101); and 2 other reason(s)" in message


# --------------------------------------------------------------------------- time zones
def test_site_time_zones_by_id_then_name_then_default():
    zone_of, named = zones("Europe/Berlin", '{"my-site": "Africa/Johannesburg", "7": "UTC"}')
    assert named == {"my-site", "7"}
    assert zone_of(_poll(7, "ok")) == "UTC"
    site = _poll(8, "ok")
    site.site_name = "my-site"
    assert zone_of(site) == "Africa/Johannesburg"
    assert zone_of(_poll(9, "ok")) == "Europe/Berlin"
    zone_of, _ = zones(None, {"9": "Asia/Tokyo"})  # a table in config.toml
    assert zone_of(_poll(9, "ok")) == "Asia/Tokyo" and zone_of(_poll(1, "ok")) is None


@pytest.mark.parametrize(
    ("default", "per_site", "named"),
    [
        ("Mars/Olympus", None, "timezone = 'Mars/Olympus'"),
        (None, {"my-site": "CEST"}, "site_timezones['my-site'] = 'CEST'"),
        (None, "[1, 2]", "site_timezones is not a mapping"),
    ],
)
def test_a_wrong_time_zone_is_a_configuration_error(default, per_site, named):
    from sources.common import ConfigurationError

    with pytest.raises(ConfigurationError) as caught:
        zones(default, per_site)
    assert named in str(caught.value)
