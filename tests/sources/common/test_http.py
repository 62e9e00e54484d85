"""The shared HTTP layer: error taxonomy (with call counts), retries, pacing, guard, redaction."""

from __future__ import annotations

import logging
import time

import pytest

from sources.common import (
    ApiClient,
    AuthenticationError,
    BearerAuth,
    MalformedResponseError,
    RateLimiter,
    ReadOnlyViolation,
    SourceUnavailableError,
    SubscriptionError,
)
from sources.common.errors import ApiError, RateLimitError
from tests.conftest import Reply

SECRET = "sk_SUPERSECRET123"
OK = {"data": [{"id": 1}]}


def client(url: str, **kwargs) -> ApiClient:
    kwargs.setdefault("backoff_factor", 0.01)
    kwargs.setdefault("max_attempts", 3)
    return ApiClient(
        "testapi",
        url,
        auth=BearerAuth(SECRET),
        secrets=[SECRET],
        hints={401: "rotate the key in .dlt/secrets.toml", 402: "renew the subscription"},
        **kwargs,
    )


def envelope(code: str, message: str) -> dict:
    return {"error": {"code": code, "message": message}}


@pytest.mark.parametrize(
    ("status", "code", "error", "hint"),
    [
        (401, "INVALID_KEY", AuthenticationError, "rotate the key"),
        (402, "SUBSCRIPTION_EXPIRED", SubscriptionError, "renew the subscription"),
        (403, "FORBIDDEN", AuthenticationError, None),
        (400, "INVALID_PARAM", ApiError, None),
        (404, "NOT_FOUND", ApiError, None),
    ],
)
def test_client_errors_fail_fast_without_retry(scripted, status, code, error, hint):
    scripted.queue(Reply(status, envelope(code, f"nope {SECRET}")))
    with pytest.raises(error) as info:
        client(scripted.url).get("things")
    assert len(scripted.seen) == 1  # never retried
    text = str(info.value)
    assert text.startswith("testapi /things:")
    assert code in text and str(status) in text
    assert SECRET not in text and SECRET[3:] not in text  # the API's echo is redacted too
    if hint:
        assert hint in text


def test_get_raises_even_though_restclient_get_does_not(scripted):
    scripted.queue(Reply(500, envelope("INTERNAL_ERROR", "boom")))
    scripted.default = Reply(500, envelope("INTERNAL_ERROR", "boom"))
    with pytest.raises(SourceUnavailableError, match="after 3 attempts"):
        client(scripted.url).get("things")
    assert len(scripted.seen) == 3


def test_5xx_and_dropped_connections_are_retried_then_succeed(scripted):
    scripted.queue(Reply(503, {}), Reply(drop=True), Reply(500, {}), Reply(200, OK))
    response = client(scripted.url, max_attempts=5).get("things")
    assert response.json() == OK
    assert len(scripted.seen) == 4


def test_connection_refused_names_source_and_endpoint():
    with pytest.raises(SourceUnavailableError) as info:
        client("http://127.0.0.1:9/api", max_attempts=2).get("things")
    assert "testapi /things" in str(info.value)
    assert "base_url" in str(info.value)


def test_malformed_body_retried_then_fails_clearly(scripted):
    validate = lambda body, endpoint: None if "data" in body else "no data"  # noqa: E731
    scripted.queue(Reply(200, "{not json"), Reply(200, {"nodata": 1}), Reply(200, OK))
    assert client(scripted.url, validate=validate).get("x").json() == OK
    assert len(scripted.seen) == 3

    scripted.seen.clear()
    scripted.default = Reply(200, "<html>proxy error</html>")
    with pytest.raises(MalformedResponseError, match="not valid JSON"):
        client(scripted.url, validate=validate).get("x")
    assert len(scripted.seen) == 3


def test_429_waits_exactly_until_reset_delta_style(scripted):
    scripted.queue(
        Reply(
            429,
            envelope("RATE_LIMITED", "slow down"),
            {"X-RateLimit-Limit": "60", "X-RateLimit-Remaining": "0", "X-RateLimit-Reset": "1"},
        ),
        Reply(200, OK),
    )
    limiter = RateLimiter("t")
    assert client(scripted.url, limiter=limiter).get("x").json() == OK
    gap = scripted.seen[1].at - scripted.seen[0].at
    assert 0.9 <= gap < 3.0  # the reset (1 s + margin), not an exponential backoff ladder


def test_429_epoch_reset_is_read_against_the_server_date(scripted):
    # the server's clock is far ahead of ours: only the Date header makes the epoch usable
    server_now = time.time() + 3600
    date = time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime(server_now))
    scripted.queue(
        Reply(
            429,
            {},
            {
                "X-RateLimit-Remaining": "0",
                "X-RateLimit-Reset": str(int(server_now) + 2),
                "Date": date,
            },
        ),
        Reply(200, OK),
    )
    assert client(scripted.url, limiter=RateLimiter("t")).get("x").json() == OK
    gap = scripted.seen[1].at - scripted.seen[0].at
    assert 0.9 <= gap < 4.0  # ~1-2 s (Date has whole seconds), not an hour


def test_429_storm_has_its_own_budget_then_fails(scripted):
    headers = {"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": "0"}
    scripted.default = Reply(429, envelope("RATE_LIMITED", "no"), headers)
    with pytest.raises(RateLimitError):
        client(scripted.url, max_rate_limit_waits=4).get("x")
    assert len(scripted.seen) == 5  # first try + 4 waits; the 5xx budget (3) did not apply


def test_proactive_pacing_never_provokes_429(scripted):
    # the server announces 2 requests left in a window resetting in 1 s
    budget = [
        Reply(
            200,
            OK,
            {"X-RateLimit-Limit": "3", "X-RateLimit-Remaining": str(r), "X-RateLimit-Reset": "1"},
        )
        for r in (2, 1, 0)
    ]
    scripted.queue(
        *budget, Reply(200, OK, {"X-RateLimit-Remaining": "2", "X-RateLimit-Reset": "1"})
    )
    c = client(scripted.url, limiter=RateLimiter("t"))
    for _ in range(4):
        c.get("x")
    gaps = [b.at - a.at for a, b in zip(scripted.seen, scripted.seen[1:], strict=False)]
    assert gaps[0] < 0.5 and gaps[1] < 0.5  # budget spent at full speed
    assert gaps[2] >= 0.9  # then the limiter waited for the reset instead of sending


def test_limiter_is_shared_per_key():
    from sources.common import limiter_for

    assert limiter_for("a", "k1") is limiter_for("a", "k1")
    assert limiter_for("a", "k1") is not limiter_for("a", "k2")


def test_read_only_guard(scripted):
    c = client(scripted.url)
    for method in ("POST", "PUT", "PATCH", "DELETE"):
        with pytest.raises(ReadOnlyViolation, match="read-only"):
            c.rest.request("knocks", method=method)
    assert scripted.seen == []
    scripted.queue(Reply(200, {"token": "t"}))
    with c.authentication_call():
        c.rest.post("login", json={"user": "x"})
    assert [s.method for s in scripted.seen] == ["POST"]


def test_secret_never_in_logs_repr_or_tracebacks(scripted, caplog):
    from sources.common import install_log_redaction

    install_log_redaction(caplog.handler)
    c = client(scripted.url)
    logging.getLogger("dlt").setLevel(logging.DEBUG)  # RESTClient logs headers at DEBUG
    caplog.set_level(logging.DEBUG)
    scripted.queue(Reply(401, envelope("INVALID_KEY", f"bad key {SECRET}")))
    try:
        c.get("things")
    except AuthenticationError:
        logging.getLogger("x").exception("failed with %s", SECRET)
    assert scripted.seen[0].headers["Authorization"] == f"Bearer {SECRET}"  # it was sent...
    text = caplog.text + repr(c) + repr(c.rest.auth)
    assert SECRET not in text and SECRET[3:] not in text  # ...but never shown
    assert "***" in caplog.text


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"X-RateLimit-Reset": "7"}, 7.0),
        ({"X-RateLimit-Reset": "1000000030", "Date": "Sun, 09 Sep 2001 01:46:40 GMT"}, 30.0),
        ({"Retry-After": "12"}, 12.0),
        ({"Retry-After": "Sun, 09 Sep 2001 01:47:00 GMT"}, 20.0),
        ({}, None),
    ],
)
def test_seconds_until_reset_reads_every_style(headers, expected):
    from sources.common.ratelimit import seconds_until_reset

    assert seconds_until_reset(headers, now=1_000_000_000.0) == expected
