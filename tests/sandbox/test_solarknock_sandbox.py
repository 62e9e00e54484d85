"""Tests of the SolarKnock sandbox itself: if these pass, pipeline tests can trust its truth."""

from __future__ import annotations

import base64
import hashlib
import http.client
import threading
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from urllib.parse import quote, urlsplit

import orjson
import pytest
import requests

from sandbox.solarknock import KEY_FIELDS, SolarKnockSandbox
from sandbox.solarknock.data import LIST_ENDPOINTS

KEY = "sk_TESTKEY"
AUTH = {"Authorization": f"Bearer {KEY}"}

COUNTS = {"knocks": 1200, "leads": 150, "appointments": 60, "daily-stats": 300, "app-opens": 200}
ANCHOR = datetime(2026, 1, 1, tzinfo=UTC)


def key(endpoint: str, row: dict):
    kf = KEY_FIELDS[endpoint]
    return row[kf[0]] if len(kf) == 1 else tuple(row[f] for f in kf)


def get(sb: SolarKnockSandbox, endpoint: str, session=requests, headers=AUTH, **params):
    return session.get(f"{sb.base_url}/{endpoint}", params=params, headers=headers, timeout=10)


def fetch_all(sb, endpoint, session=None, **params):
    """Page an endpoint to the end like a client would; returns (rows, number of pages)."""
    session = session or requests.Session()
    rows, pages, cursor = [], 0, None
    while True:
        p = dict(params, **({"cursor": cursor} if cursor else {}))
        r = get(sb, endpoint, session, **p)
        assert r.status_code == 200, r.text
        body = r.json()
        pages += 1
        assert body["meta"]["row_count"] == len(body["data"])
        rows += body["data"]
        cursor = body["pagination"]["next_cursor"]
        assert body["pagination"]["has_more"] == (cursor is not None)
        if not cursor:
            return rows, pages


@pytest.fixture(scope="module")
def shared():
    """Read-only sandbox shared by tests that do not mutate or inject faults."""
    with SolarKnockSandbox(seed=7, api_key=KEY, counts=COUNTS, anchor=ANCHOR) as sb:
        yield sb


@pytest.fixture
def sb():
    with SolarKnockSandbox(seed=1, api_key=KEY, counts=COUNTS, anchor=ANCHOR) as sb:
        yield sb


# ---------------------------------------------------------------- paging and filters


@pytest.mark.parametrize("include_deleted", [False, True])
@pytest.mark.parametrize("endpoint", LIST_ENDPOINTS)
def test_paging_yields_every_row_exactly_once_in_order(shared, endpoint, include_deleted):
    truth = shared.truth(endpoint)
    expected = [r for r in truth if include_deleted or r["deleted_at"] is None]
    rows, pages = fetch_all(
        shared, endpoint, limit=97, include_deleted=str(include_deleted).lower()
    )
    keys = [key(endpoint, r) for r in rows]
    assert len(keys) == len(set(keys))
    assert rows == expected  # same rows, same values, same (updated_at, key) order
    assert pages == max(1, -(-len(expected) // 97))
    order = [(r["updated_at"], "|".join(r[f] for f in KEY_FIELDS[endpoint])) for r in rows]
    assert order == sorted(order)  # (updated_at, key): ties broken by key
    if include_deleted and endpoint in ("knocks", "leads"):
        assert any(r["deleted_at"] for r in rows)


def test_data_has_tie_groups_larger_than_a_page_and_awkward_values(shared):
    knocks = shared.truth("knocks")
    ties = Counter(r["updated_at"] for r in knocks)
    assert max(ties.values()) > 97  # the bulk import group spans pages in the test above
    assert sum(1 for c in ties.values() if c > 1) > 5
    text = orjson.dumps(knocks + shared.truth("leads")).decode()
    for needle in ("王", "Zoë", "\\n", '\\"', "😀", "DROP TABLE"):
        assert needle in text
    assert any(r["notes"] is None for r in knocks) and any(r["notes"] == "" for r in knocks)
    assert any(r["actions_taken"] == [] for r in knocks)
    assert all(len(r["county_fips"]) == 5 for r in knocks)
    names = {a["fileName"] for r in shared.truth("leads") for a in r["attachments"]}
    assert "../../etc/passwd" in names or "a/b\\c.pdf" in names
    assert all(r["updated_at"] < "2026-01-01" for r in knocks)
    assert min(r["created_at"] for r in knocks) < "2024-03-01"


def test_since_is_strict_and_until_inclusive_in_any_iso_format(shared):
    truth = [r for r in shared.truth("knocks") if r["deleted_at"] is None]
    ties = Counter(r["updated_at"] for r in truth)
    t = next(u for u, c in ties.items() if c > 1)  # a timestamp several rows share
    dt = datetime.strptime(t, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)
    after = [r for r in truth if r["updated_at"] > t]
    upto = [r for r in truth if r["updated_at"] <= t]
    forms = [
        t,
        (dt + timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "+02:00",
        dt.strftime("%Y-%m-%dT%H:%M:%S.%f") + "Z",  # microseconds
        (dt - timedelta(hours=5)).isoformat().replace("+00:00", "-05:00"),
    ]
    for form in forms:
        assert fetch_all(shared, "knocks", limit=1000, since=form)[0] == after, form
        assert fetch_all(shared, "knocks", limit=1000, until=form)[0] == upto, form
    whole = dt.replace(microsecond=0).strftime("%Y-%m-%dT%H:%M:%SZ")  # no fraction
    assert fetch_all(shared, "knocks", limit=1000, since=whole)[0] == [
        r for r in truth if r["updated_at"] > whole[:-1] + ".000Z"
    ]
    lo, hi = sorted(ties)[10], sorted(ties)[len(ties) // 2]
    window = fetch_all(shared, "knocks", limit=50, since=lo, until=hi)[0]
    assert window == [r for r in truth if lo < r["updated_at"] <= hi]


def test_filters(shared):
    truth = [r for r in shared.truth("knocks") if r["deleted_at"] is None]
    fips = truth[0]["county_fips"]
    rows = fetch_all(shared, "knocks", limit=100, county_fips=fips, status="lead")[0]
    assert rows == [r for r in truth if r["county_fips"] == fips and r["status"] == "lead"]
    rows = fetch_all(shared, "knocks", knock_date_from="2025-03-01", knock_date_to="2025-03-31")[0]
    assert rows and all("2025-03-01" <= r["knock_date"] <= "2025-03-31" for r in rows)
    leads = fetch_all(shared, "leads", status="qualified")[0]
    assert leads and {r["status"] for r in leads} == {"qualified"}
    uid = shared.truth("users")[0]["id"]
    stats = fetch_all(shared, "daily-stats", user_id=uid)[0]
    assert stats and {r["user_id"] for r in stats} == {uid}


@pytest.mark.parametrize(
    "params",
    [
        {"limit": "0"},
        {"limit": "1001"},
        {"limit": "ten"},
        {"limit": "-5"},
        {"since": "yesterday"},
        {"until": "2024-13-01T00:00:00Z"},
        {"include_deleted": "maybe"},
        {"status": "teleported"},
        {"county_fips": "6037"},
        {"knock_date_from": "03/01/2025"},
    ],
)
def test_bad_params_are_invalid_param(shared, params):
    r = get(shared, "knocks", **params)
    assert r.status_code == 400
    err = r.json()["error"]
    assert err["code"] == "INVALID_PARAM" and err["message"]


def test_unencoded_plus_offset_is_rejected(shared):
    r = requests.get(f"{shared.base_url}/knocks?since=2025-01-01T00:00:00+02:00", headers=AUTH)
    assert r.status_code == 400 and r.json()["error"]["code"] == "INVALID_PARAM"
    ok = requests.get(
        f"{shared.base_url}/knocks?since={quote('2025-01-01T00:00:00+02:00')}", headers=AUTH
    )
    assert ok.status_code == 200


def test_limit_bounds_and_default(shared):
    assert len(get(shared, "knocks").json()["data"]) == 500
    assert len(get(shared, "knocks", limit=1000).json()["data"]) == 1000
    assert len(get(shared, "knocks", limit=1).json()["data"]) == 1


def test_cursor_is_opaque_endpoint_bound_and_validated(shared):
    body = get(shared, "knocks", limit=5).json()
    cursor = body["pagination"]["next_cursor"]
    decoded = orjson.loads(base64.urlsafe_b64decode(cursor))
    assert decoded["e"] == "knocks" and decoded["k"] == body["data"][-1]["id"]
    for bad, endpoint in [(cursor, "leads"), ("not-a-cursor!!", "knocks"), ("e30=", "knocks")]:
        r = get(shared, endpoint, cursor=bad)
        assert r.status_code == 400 and r.json()["error"]["code"] == "INVALID_CURSOR"


def test_org_endpoint_and_envelope_meta(shared):
    r = get(shared, "org")
    body = r.json()
    assert set(body) == {"data", "meta"}
    org = body["data"]
    assert org == shared.truth("org")[0] and org["id"] == shared.org_id
    assert org["invite_codes"] and KEY not in org["invite_codes"]
    assert body["meta"]["org_id"] == shared.org_id and body["meta"]["row_count"] == 1
    page = get(shared, "users", limit=3).json()
    assert set(page) == {"data", "pagination", "meta"}
    assert page["meta"]["fetched_at"].endswith("Z")


def test_unknown_path_is_404_envelope(shared):
    for path in ("nope", "knocks/abc", "attachments/x"):
        r = requests.get(f"{shared.base_url}/{path}", headers=AUTH)
        assert r.status_code == 404 and r.json()["error"]["code"] == "NOT_FOUND"


def test_connections_are_kept_alive(shared):
    u = urlsplit(shared.base_url)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=5)
    socks = set()
    for _ in range(3):
        conn.request("GET", f"{u.path}/users?limit=2", headers=AUTH)
        resp = conn.getresponse()
        assert resp.status == 200 and int(resp.getheader("Content-Length")) == len(resp.read())
        socks.add(id(conn.sock))
    assert len(socks) == 1 and conn.sock is not None
    conn.close()


def test_same_seed_same_data_other_seed_other_data():
    a = SolarKnockSandbox(seed=3, counts={"knocks": 300}, anchor=ANCHOR)
    b = SolarKnockSandbox(seed=3, counts={"knocks": 300}, anchor=ANCHOR)
    c = SolarKnockSandbox(seed=4, counts={"knocks": 300}, anchor=ANCHOR)
    for endpoint in ["org", *LIST_ENDPOINTS]:
        assert a.truth(endpoint) == b.truth(endpoint)
    assert a.truth("knocks") != c.truth("knocks")


# ---------------------------------------------------------------- auth


def test_auth_errors_and_key_forms(sb):
    assert get(sb, "users", headers={}).json()["error"]["code"] == "UNAUTHENTICATED"
    assert get(sb, "users", headers={}).status_code == 401
    for bad in ("Bearer sk_WRONG", "Bearer ", "Basic abc", "TESTKEY"):
        r = get(sb, "users", headers={"Authorization": bad})
        assert r.status_code == 401 and r.json()["error"]["code"] == "INVALID_KEY"
    for good in ("Bearer sk_TESTKEY", "Bearer TESTKEY", "bearer TESTKEY"):
        assert get(sb, "users", headers={"Authorization": good}).status_code == 200
    sb.set_subscription_expired(True)
    r = get(sb, "users")
    assert r.status_code == 402 and r.json()["error"]["code"] == "SUBSCRIPTION_EXPIRED"
    sb.set_subscription_expired(False)
    assert get(sb, "users").status_code == 200
    # the key is never echoed nor logged
    requests.get(f"{sb.base_url}/users?api_key={KEY}", headers=AUTH)
    assert "TESTKEY" not in repr(sb.requests) and "TESTKEY" not in repr(sb)
    assert "TESTKEY" not in requests.get(f"{sb.admin_url}/requests").text
    assert all(isinstance(r.auth_present, bool) for r in sb.requests)
    assert sb.requests[0].auth_present is False and sb.requests[-1].auth_present is True


def test_writes_are_refused_and_logged(sb):
    r = requests.post(f"{sb.base_url}/knocks", json={"homeowner_name": "x"}, headers=AUTH)
    assert r.status_code == 403 and r.json()["error"]["code"] == "WRITES_DISABLED"
    r = requests.patch(f"{sb.base_url}/knocks/abc", json={"status": "lead"}, headers=AUTH)
    assert r.status_code == 403
    assert [q.method for q in sb.requests] == ["POST", "PATCH"]
    assert sb.count_requests(status=403) == 2


# ---------------------------------------------------------------- rate limit


def _align_to_minute(sb, second: float = 1.0) -> None:
    """Skew the server clock so that it now reads hh:mm:01 (keeps the fixed window still)."""
    now = time.time()
    sb.set_clock_skew((60 - now % 60) + second)


def test_rate_limit_fixed_window_headers_and_429(sb):
    _align_to_minute(sb)
    sb.set_rate_limit(5)
    s = requests.Session()
    statuses, last = [], None
    for _ in range(7):
        last = get(sb, "users", s, limit=1)
        statuses.append(last.status_code)
    assert statuses == [200] * 5 + [429, 429]
    assert last.json()["error"]["code"] == "RATE_LIMITED"
    assert "Retry-After" not in last.headers
    assert last.headers["X-RateLimit-Limit"] == "5"
    assert last.headers["X-RateLimit-Remaining"] == "0"
    server_now = sb.now().timestamp()
    reset = int(last.headers["X-RateLimit-Reset"])
    assert reset % 60 == 0 and 0 < reset - server_now <= 60
    date = parsedate_to_datetime(last.headers["Date"]).timestamp()
    assert abs(date - server_now) < 3  # the Date header follows the (skewed) server clock
    assert sb.count_requests(status=429) == 2 and sb.max_requests_in_window(60) == 7
    assert sb.max_requests_in_window(60, status=200) == 5
    # next window: 5 more, so 10 (= the documented 2x burst) within one sliding minute
    sb.set_clock_skew(sb._skew + 60)
    assert [get(sb, "users", s, limit=1).status_code for _ in range(6)] == [200] * 5 + [429]
    assert sb.max_requests_in_window(60, status=200) == 10


def test_rate_limit_burst_cap_and_delta_reset(sb):
    _align_to_minute(sb)
    sb.set_rate_limit(5, burst=3, reset_style="delta")
    rs = [get(sb, "users", limit=1) for _ in range(4)]
    assert [r.status_code for r in rs] == [200, 200, 200, 429]
    assert [r.headers["X-RateLimit-Remaining"] for r in rs] == ["2", "1", "0", "0"]
    assert 55 <= int(rs[-1].headers["X-RateLimit-Reset"]) <= 60  # seconds until a slot frees
    # errors carry the headers too, and unauthenticated requests do not consume quota
    r = get(sb, "users", headers={})
    assert r.status_code == 401 and "X-RateLimit-Reset" in r.headers
    sb.set_rate_limit(None)
    r = get(sb, "users", limit=1)
    assert r.status_code == 200 and int(r.headers["X-RateLimit-Limit"]) >= 100_000


# ---------------------------------------------------------------- faults


def test_fail_next_and_drop_next(sb):
    sb.fail_next(2, endpoint="knocks")
    sb.fail_next(1, status=503, code="UNAVAILABLE")
    assert get(sb, "users").status_code == 503  # endpoint=None matches anything
    assert [get(sb, "knocks").status_code for _ in range(3)] == [500, 500, 200]
    r = get(sb, "knocks", limit=1)
    assert r.status_code == 200
    sb.fail_next(1, status=500)
    err = get(sb, "leads")
    assert err.json() == {"error": {"code": "INTERNAL_ERROR", "message": "Injected fault."}}
    assert "X-RateLimit-Limit" in err.headers
    sb.drop_next(1, endpoint="leads")
    s = requests.Session()
    assert get(sb, "knocks", s, limit=1).status_code == 200
    with pytest.raises(requests.ConnectionError):
        get(sb, "leads", s, limit=1)
    assert get(sb, "leads", s, limit=1).status_code == 200
    assert [r.fault for r in sb.requests].count("drop") == 1


@pytest.mark.parametrize("kind", ["json", "no_data", "row_without_id", "html"])
def test_malformed_next(sb, kind):
    sb.malformed_next(1, kind=kind, endpoint="knocks")
    assert get(sb, "users", limit=3).json()["data"]  # other endpoints unaffected
    r = get(sb, "knocks", limit=10)
    assert r.status_code == 200
    if kind == "json":
        with pytest.raises(ValueError):
            orjson.loads(r.content)
    elif kind == "no_data":
        assert "data" not in r.json() and "pagination" in r.json()
    elif kind == "row_without_id":
        assert sum("id" not in row for row in r.json()["data"]) == 1
    else:
        assert r.headers["Content-Type"].startswith("text/html") and b"<html>" in r.content
    assert len(get(sb, "knocks", limit=10).json()["data"]) == 10  # one-shot


def test_invalid_cursor_next_slow_and_reset(sb):
    body = get(sb, "knocks", limit=5).json()
    sb.invalid_cursor_next(1)
    assert get(sb, "knocks", limit=5).status_code == 200  # no cursor: not affected
    cursor = body["pagination"]["next_cursor"]
    r = get(sb, "knocks", limit=5, cursor=cursor)
    assert r.status_code == 400 and r.json()["error"]["code"] == "INVALID_CURSOR"
    assert get(sb, "knocks", limit=5, cursor=cursor).status_code == 200
    sb.slow(0.2)
    t0 = time.monotonic()
    get(sb, "users", limit=1)
    assert time.monotonic() - t0 >= 0.2
    sb.fail_next(5)
    sb.set_clock_skew(3600)
    sb.reset_faults()
    t0 = time.monotonic()
    assert get(sb, "users", limit=1).status_code == 200
    assert time.monotonic() - t0 < 0.2 and abs((sb.now() - datetime.now(UTC)).total_seconds()) < 1


# ---------------------------------------------------------------- mutations and time


def test_update_insert_soft_delete_show_up_incrementally(sb):
    start = sb.now()
    time.sleep(0.002)
    updated = sb.update("knocks", n=3)
    inserted = sb.insert("leads", n=2)
    deleted = sb.soft_delete("appointments", n=1)
    stats_keys = sb.insert("daily-stats", n=2)
    assert len(set(updated)) == 3 and len(inserted) == 2 and len(deleted) == 1
    assert all(isinstance(k, tuple) and len(k) == 2 for k in stats_keys)
    since = start.isoformat().replace("+00:00", "Z")
    rows = fetch_all(sb, "knocks", since=since)[0]
    assert sorted(r["id"] for r in rows) == sorted(updated)
    assert all(r["updated_at"] >= since[:23] for r in rows)
    assert {r["id"] for r in fetch_all(sb, "leads", since=since)[0]} == set(inserted)
    assert fetch_all(sb, "appointments", since=since)[0] == []  # deleted rows hidden...
    gone = fetch_all(sb, "appointments", since=since, include_deleted="true")[0]
    assert [r["id"] for r in gone] == deleted and gone[0]["deleted_at"] == gone[0]["updated_at"]
    assert {key("daily-stats", r) for r in fetch_all(sb, "daily-stats", since=since)[0]} == set(
        stats_keys
    )
    # explicit ids, compound keys in any form
    uid, day = stats_keys[0]
    assert sb.update("daily-stats", ids=[(uid, day)]) == [(uid, day)]
    assert sb.update("daily-stats", ids=[{"user_id": uid, "date": day}]) == [(uid, day)]
    with pytest.raises(KeyError):
        sb.update("knocks", ids=["no-such-id"])
    # truth tracks everything
    truth = {r["id"]: r for r in sb.truth("knocks")}
    assert all(truth[i]["updated_at"] >= since[:23] for i in updated)


def test_rows_updated_during_a_sync_move_to_the_end(sb):
    seen_first: list[str] = []

    def mutate(sb_, info):
        if info.endpoint == "knocks" and sb_.count_requests(endpoint="knocks") == 3:
            sb_.update("knocks", ids=seen_first[:2])  # rows already delivered on page 1
            sb_.insert("knocks", n=1)

    session = requests.Session()
    first = get(sb, "knocks", session, limit=100).json()
    seen_first += [r["id"] for r in first["data"]]
    sb.on_request(mutate)
    rest, _ = fetch_all(sb, "knocks", session, limit=100, cursor=first["pagination"]["next_cursor"])
    rows = first["data"] + rest
    counts = Counter(r["id"] for r in rows)
    assert counts[seen_first[0]] == 2 and counts[seen_first[1]] == 2  # seen again, later
    final = {}
    for r in rows:
        final[r["id"]] = r  # last version wins, like a merge
    live = [r for r in sb.truth("knocks") if r["deleted_at"] is None]
    assert final == {r["id"]: r for r in live}
    sb.on_request(None)


def test_visibility_delay_models_late_commits(sb):
    sb.set_visibility_delay(0.4)
    before = {r["id"]: r for r in sb.truth("leads")}
    t_mut = sb.now()
    [lead_id] = sb.update("leads", n=1)
    [new_id] = sb.insert("leads", n=1)
    assert {r["id"]: r for r in sb.truth("leads")} == before  # not committed yet
    assert new_id not in {r["id"] for r in fetch_all(sb, "leads", limit=1000)[0]}
    assert sb.pending_count() == 2
    time.sleep(0.45)
    after = {r["id"]: r for r in sb.truth("leads")}
    assert new_id in after and after[lead_id] != before[lead_id]
    # updated_at is the mutation time, already in the past when the row appears
    stamp = datetime.strptime(after[lead_id]["updated_at"], "%Y-%m-%dT%H:%M:%S.%fZ")
    assert abs(stamp.replace(tzinfo=UTC) - t_mut) < timedelta(seconds=0.2)
    assert sb.now() - stamp.replace(tzinfo=UTC) >= timedelta(seconds=0.4)
    assert sb.pending_count() == 0


def test_clock_skew_moves_server_time(sb):
    sb.set_clock_skew(-7200)
    r = get(sb, "users", limit=1)
    fetched = datetime.strptime(r.json()["meta"]["fetched_at"], "%Y-%m-%dT%H:%M:%SZ")
    assert abs(fetched.replace(tzinfo=UTC) - (datetime.now(UTC) - timedelta(hours=2))) < timedelta(
        seconds=3
    )
    date = parsedate_to_datetime(r.headers["Date"])
    assert abs(date - (datetime.now(UTC) - timedelta(hours=2))) < timedelta(seconds=3)
    [uid] = sb.update("users", n=1)
    row = next(r for r in sb.truth("users") if r["id"] == uid)
    assert row["updated_at"] < (datetime.now(UTC) - timedelta(hours=1)).isoformat()


# ---------------------------------------------------------------- attachments


def test_attachments_download_and_404(sb):
    leads = sb.truth("leads")
    att_lead = next(r for r in leads if any(a["size"] > 1000 for a in r["attachments"]))
    att = next(a for a in att_lead["attachments"] if a["size"] > 1000)
    assert att["download_url"] == f"{sb.base_url}/attachments/{att_lead['id']}/{att['id']}"
    assert set(att) == {
        "id",
        "fileName",
        "mimeType",
        "size",
        "uploadedAt",
        "uploadedBy",
        "download_url",
    }
    r = requests.get(att["download_url"], headers=AUTH)
    assert r.status_code == 200 and len(r.content) == att["size"]
    assert r.content == sb.attachment_bytes(att_lead["id"], att["id"])
    assert r.headers["Content-Type"] == att["mimeType"]
    assert r.headers["Content-Disposition"].startswith("attachment; filename=")
    assert requests.get(att["download_url"]).status_code == 401
    r = requests.get(f"{sb.base_url}/attachments/{att_lead['id']}/nope", headers=AUTH)
    assert r.status_code == 404 and r.json()["error"]["code"] == "NOT_FOUND"
    r = requests.get(f"{sb.base_url}/attachments/other-org-lead/{att['id']}", headers=AUTH)
    assert r.status_code == 404


def test_set_attachments_hostile_names_and_big_streamed_file(sb):
    lead_id = sb.truth("leads")[0]["id"]
    atts = sb.set_attachments(
        lead_id,
        [
            {"fileName": "../../etc/passwd", "size": 10},
            {"fileName": "contract\nsigned ☀️.pdf", "size": 0},
        ],
    )
    lead = next(r for r in sb.truth("leads") if r["id"] == lead_id)
    assert lead["attachments"] == atts and atts[0]["mimeType"] == "application/octet-stream"
    r = requests.get(atts[1]["download_url"], headers=AUTH)
    assert r.status_code == 200 and r.content == b""
    cd = r.headers["Content-Disposition"]
    assert "\n" not in cd and "filename*=UTF-8''contract%0Asigned" in cd
    sb.set_attachment_size(lead_id, atts[0]["id"], 5_000_003)
    h = hashlib.sha256()
    with requests.get(atts[0]["download_url"], headers=AUTH, stream=True) as r:
        assert int(r.headers["Content-Length"]) == 5_000_003
        for chunk in r.iter_content(1 << 16):
            h.update(chunk)
    assert h.hexdigest() == sb.attachment_sha256(lead_id, atts[0]["id"])
    sb.malformed_next(1, kind="json", endpoint="attachments")  # truncated download
    with pytest.raises(requests.exceptions.ChunkedEncodingError):
        requests.get(atts[0]["download_url"], headers=AUTH).content  # noqa: B018


# ---------------------------------------------------------------- admin, log, threads


def test_admin_over_http_is_not_logged(sb):
    r = requests.post(f"{sb.admin_url}/update", json={"endpoint": "knocks", "n": 2})
    ids = r.json()["result"]
    assert len(ids) == 2
    truth = requests.get(f"{sb.admin_url}/truth/knocks").json()
    assert truth == sb.truth("knocks")
    requests.post(f"{sb.admin_url}/fail_next", json={"n": 1, "status": 502})
    assert get(sb, "users").status_code == 502
    stats = requests.get(f"{sb.admin_url}/stats").json()
    assert stats["requests"] == 1 and stats["by_status"] == {"502": 1}
    bad = requests.post(f"{sb.admin_url}/update", json={"endpoint": "nope"})
    assert bad.status_code == 400
    assert requests.post(f"{sb.admin_url}/truth", json={}).status_code == 404
    assert sb.count_requests() == 1


def test_concurrent_clients_and_writers(sb):
    errors: list[str] = []

    seen: list[set[str]] = []

    def reader():
        try:
            rows, _ = fetch_all(sb, "knocks", limit=200)
            seen.append({r["id"] for r in rows})
        except Exception as e:  # pragma: no cover - reported below
            errors.append(repr(e))

    threads = [threading.Thread(target=reader) for _ in range(4)]
    for t in threads:
        t.start()
    for _ in range(20):
        sb.update("knocks", n=5)
    for t in threads:
        t.join()
    assert errors == []
    live = {r["id"] for r in sb.truth("knocks") if r["deleted_at"] is None}
    assert len(seen) == 4 and all(ids == live for ids in seen)  # updates never hide a row
    assert sb.count_requests(endpoint="knocks", status=200) == sb.count_requests()


def test_cli_runs_in_foreground_until_interrupted(tmp_path):
    import signal
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    proc = subprocess.Popen(
        [sys.executable, "-m", "sandbox", "solarknock", "--port", "0", "--api-key", "sk_DEMO",
         "--knocks", "100", "--leads", "30", "--rate-limit", "60", "--burst", "120"],
        cwd=root, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    try:
        lines = []
        while not any(line.startswith("base URL:") for line in lines):
            line = proc.stdout.readline()
            assert line, "".join(lines)
            lines.append(line)
        base = lines[-1].split()[-1]
        assert "DEMO" not in "".join(lines)
        r = requests.get(
            f"{base}/knocks?include_deleted=true",
            headers={"Authorization": "Bearer DEMO"},
            timeout=5,
        )
        assert len(r.json()["data"]) == 100 and r.headers["X-RateLimit-Limit"] == "60"
    finally:
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=10) == 0
