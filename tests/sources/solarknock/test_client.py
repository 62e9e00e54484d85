"""Unit tests of the SolarKnock client's pure parts: windows, validation, paging rules."""

from __future__ import annotations

import pendulum
import pytest
from requests import Response

from sources.common import MalformedResponseError
from sources.solarknock import next_window
from sources.solarknock.client import EnvelopeCursorPaginator, Window, iso, make_validator

NOW = pendulum.datetime(2026, 5, 1, 17, 32, 14, tz="UTC")


def test_first_window_reads_from_the_beginning():
    assert next_window(None, NOW, 600) == Window(since=None, until=NOW)
    assert Window(None, NOW).params() == {"until": "2026-05-01T17:32:14.000Z"}


def test_next_window_starts_lookback_before_the_checkpoint():
    window = next_window("2026-05-01T02:00:00.000Z", NOW, 600)
    assert iso(window.since) == "2026-05-01T01:50:00.000Z" and window.until == NOW


def test_server_clock_behind_the_checkpoint_never_inverts_the_window():
    window = next_window("2026-05-01T18:00:00.000Z", NOW, 600)  # checkpoint after "now"
    assert window.since < window.until
    assert iso(window.since) == "2026-05-01T17:22:14.000Z"


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        ([], "expected a JSON object"),
        ({"pagination": {}}, "no 'data' list"),
        ({"data": {}}, "no 'data' list"),
        ({"data": [], "pagination": []}, "'pagination' is not an object"),
        ({"data": [1]}, "row 0 is not an object"),
        ({"data": [{"id": "a"}]}, "row 0 has no 'updated_at'"),
        ({"data": [{"id": "a", "updated_at": "x"}, {"updated_at": "x"}]}, "row 1 has no key (id)"),
        ({"data": [{"id": "a", "updated_at": "x"}]}, None),
    ],
)
def test_validator(body, problem):
    validate = make_validator({"/knocks": (("id",),)})
    result = validate(body, "/knocks")
    assert result == problem if problem is None else problem in result


def test_validator_accepts_the_org_object_with_or_without_envelope():
    validate = make_validator({})
    assert validate({"id": "o", "name": "x"}, "/org") is None
    assert validate({"data": {"id": "o"}, "meta": {}}, "/org") is None


def test_paginator_stops_on_missing_has_more_and_rejects_a_stuck_cursor():
    def response(body: dict) -> Response:
        r = Response()
        r.json = lambda **_: body  # type: ignore[method-assign]
        return r

    p = EnvelopeCursorPaginator()
    p.update_state(response({"data": [], "pagination": {"next_cursor": None}}))
    assert not p.has_next_page
    p = EnvelopeCursorPaginator()
    p.update_state(response({"data": [], "pagination": {"next_cursor": "c1", "has_more": False}}))
    assert not p.has_next_page
    p = EnvelopeCursorPaginator()
    p.update_state(response({"pagination": {"next_cursor": "c1", "has_more": True}}))
    assert p.has_next_page
    with pytest.raises(MalformedResponseError, match="same cursor"):
        p.update_state(response({"pagination": {"next_cursor": "c1", "has_more": True}}))


@pytest.mark.parametrize(
    ("fetched_at", "date", "expected"),
    [
        ("2026-05-01T17:32:14Z", None, "2026-05-01T17:32:14.999Z"),  # whole seconds: round up
        ("2026-05-01T17:32:14.250Z", None, "2026-05-01T17:32:14.250Z"),  # precise: as is
        ("2026-05-01T19:32:14+02:00", None, "2026-05-01T17:32:14.999Z"),
        (None, "Fri, 01 May 2026 17:32:14 GMT", "2026-05-01T17:32:14.999Z"),
    ],
)
def test_server_time_is_the_end_of_the_reported_second(fetched_at, date, expected):
    from sources.solarknock.client import server_time

    response = Response()
    body = {"data": {}, "meta": {"fetched_at": fetched_at}} if fetched_at else {}
    response.json = lambda **_: body  # type: ignore[method-assign]
    if date:
        response.headers["Date"] = date
    assert iso(server_time(response)) == expected
