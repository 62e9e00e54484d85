"""Contract tests: the documented SolarKnock payloads, replayed from cassettes, through dlt.

The cassettes in ``cassettes/`` are hand-written from the examples of the API reference
(``/work/shared/apis/solarknock.md``: list envelope, org envelope, error envelope,
``X-RateLimit-*`` headers), with decoded bodies and fixed dates. They replay with record mode
``none``: an unexpected request fails the test instead of reaching the network, and a socket
guard makes sure nothing else does either.

Each test runs the real ``solarknock`` source through dlt into a DuckDB file in ``tmp_path``.
"""

from __future__ import annotations

import json
import re
import socket
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import dlt
import duckdb
import pendulum
import pytest
import vcr
import yaml
from dlt.pipeline.exceptions import PipelineStepFailed
from vcr.cassette import Cassette

from sources.common import (
    ApiError,
    AuthenticationError,
    SolarsyncError,
    SubscriptionError,
    stats_for,
)
from sources.common import solarsync_error_in as find_solarsync_error
from sources.solarknock import solarknock
from sources.solarknock.settings import ORG_SECRET_FIELDS

KEY = "sk_CASSETTEKEY1"  # the test key: must never be written to a cassette
BASE = "https://app.solarknock.com/api/v1/reporting"
BASE_PATH = "/api/v1/reporting"
CASSETTES = Path(__file__).parent / "cassettes"
DATASET = "solarknock"

#: what a recording puts in place of each invite code (invite codes are API keys)
INVITE_PLACEHOLDER = "REDACTED-INVITE-CODE-{n}"
INVITE_PLACEHOLDER_RE = re.compile(r"^REDACTED-INVITE-CODE-\d+$")

#: ``next_cursor`` of page 1 of /knocks; the second one is what page 1 returns after a restart
CURSOR_1 = "eyJ1cGRhdGVkX2F0IjoiMjAyNi0wNC0yOVQxNTo0NTowMC4wMDBaIiwiaWQiOiJrbl8wMDAyIn0="
CURSOR_2 = "eyJ2IjoyLCJ1cGRhdGVkX2F0IjoiMjAyNi0wNC0yOVQxNTo0NTowMC4wMDBaIiwiaWQiOiJrbl8wMDAyIn0="

LIST_TABLES = ("users", "knocks", "leads", "appointments", "daily_stats", "app_opens", "counties")
DLT_TABLES = {"_dlt_loads", "_dlt_pipeline_state", "_dlt_version"}


# --------------------------------------------------------------------------- vcr set-up
def scrub_response(response: dict[str, Any]) -> dict[str, Any]:
    """``before_record_response``: drop cookies, replace invite codes by placeholders.

    Only runs when someone re-records (record mode ``none`` never does); kept here so that a
    re-recording cannot write the org's invite codes, which are API keys, to a cassette.
    """
    headers = response.get("headers") or {}
    for name in [h for h in headers if h.lower() in ("set-cookie", "authorization")]:
        del headers[name]
    raw = (response.get("body") or {}).get("string")
    if not raw:
        return response
    try:
        body = json.loads(raw)
    except (TypeError, ValueError):
        return response
    counter = iter(range(1, 10_000))

    def hide(value: Any) -> Any:
        if isinstance(value, list):
            return [INVITE_PLACEHOLDER.format(n=next(counter)) for _ in value]
        return None if value is None else INVITE_PLACEHOLDER.format(n=next(counter))

    def scrub(node: Any) -> Any:
        if isinstance(node, dict):
            return {k: (hide(v) if k in ORG_SECRET_FIELDS else scrub(v)) for k, v in node.items()}
        if isinstance(node, list):
            return [scrub(v) for v in node]
        return node

    text = json.dumps(scrub(body), indent=2)
    response["body"]["string"] = text.encode() if isinstance(raw, bytes) else text
    return response


CONTRACT_VCR = vcr.VCR(
    cassette_library_dir=str(CASSETTES),
    record_mode="none",  # CI never records and never touches the network
    match_on=["method", "path", "query"],
    filter_headers=["authorization", "cookie", "set-cookie"],
    decode_compressed_response=True,
    before_record_response=scrub_response,
)


@dataclass(frozen=True)
class Sent:
    """One request the pipeline sent, as the cassette saw it (before any filtering)."""

    method: str
    endpoint: str  # path under the base URL, e.g. "/knocks"
    query: tuple[tuple[str, str], ...]  # every (name, value), decoded
    authorization: str | None

    @property
    def params(self) -> dict[str, str]:
        assert len({name for name, _ in self.query}) == len(self.query), f"repeated: {self.query}"
        return dict(self.query)


@contextmanager
def replay(name: str) -> Iterator[tuple[Cassette, list[Sent]]]:
    """Replay ``cassettes/<name>``; yields the cassette and the requests it answered, in order."""
    with CONTRACT_VCR.use_cassette(name) as cassette:
        sent: list[Sent] = []
        play = cassette.play_response

        def recording_play(request: Any) -> Any:
            path = request.path
            sent.append(
                Sent(
                    method=request.method,
                    endpoint=path[len(BASE_PATH) :] if path.startswith(BASE_PATH) else path,
                    query=tuple(request.query),
                    authorization=request.headers.get("Authorization"),
                )
            )
            return play(request)

        cassette.play_response = recording_play  # type: ignore[method-assign]
        yield cassette, sent


@pytest.fixture(autouse=True)
def no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    """A DNS lookup or a TCP connection is a test failure: everything comes from a cassette."""
    real_connect = socket.socket.connect
    real_getaddrinfo = socket.getaddrinfo
    local = {None, "localhost", "127.0.0.1", "::1"}

    def guarded_getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
        if host not in local:
            raise AssertionError(f"contract test tried to resolve {host!r}")
        return real_getaddrinfo(host, *args, **kwargs)

    def guarded_connect(self: socket.socket, address: Any) -> None:
        if self.family in (socket.AF_INET, socket.AF_INET6):
            raise AssertionError(f"contract test tried to connect to {address!r}")
        return real_connect(self, address)

    monkeypatch.setattr(socket, "getaddrinfo", guarded_getaddrinfo)
    monkeypatch.setattr(socket.socket, "connect", guarded_connect)


# --------------------------------------------------------------------------- helpers
def make_pipeline(tmp_path: Path) -> dlt.Pipeline:
    return dlt.pipeline(
        pipeline_name="t",
        destination=dlt.destinations.duckdb(str(tmp_path / "w.duckdb")),
        dataset_name=DATASET,
    )


def run(pipeline: dlt.Pipeline, *resources: str) -> None:
    # attachment downloads are not part of these cassettes (tests/sources/solarknock/
    # test_attachments.py covers them against the sandbox)
    source = solarknock(api_key=KEY, base_url=BASE, attachments={"enabled": False})
    if resources:
        source = source.with_resources(*resources)
    pipeline.run(source, loader_file_format="parquet")


Query = Callable[..., list[tuple[Any, ...]]]


@contextmanager
def warehouse(tmp_path: Path) -> Iterator[Query]:
    """``query(sql, *params) -> rows`` on the run's DuckDB file (one read-only connection)."""
    with duckdb.connect(str(tmp_path / "w.duckdb"), read_only=True) as con:
        yield lambda sql, *params: con.execute(sql, list(params)).fetchall()


def tables(query: Query) -> set[str]:
    rows = query("select table_name from information_schema.tables where table_schema = ?", DATASET)
    return {name for (name,) in rows}


def recorded_json(cassette: Cassette, endpoint: str) -> Any:
    """The body of the first interaction of ``endpoint`` in the cassette file."""
    for request, response in zip(cassette.requests, cassette.responses, strict=True):
        if request.path == BASE_PATH + endpoint:
            return json.loads(response["body"]["string"])
    raise AssertionError(f"no {endpoint} in {cassette.path}")


def solarsync_error_in(exc: BaseException) -> SolarsyncError:
    """The SolarsyncError inside dlt's wrappers (as ``pipelines.results`` finds it)."""
    found = find_solarsync_error(exc)
    if found is None:
        raise AssertionError(f"no SolarsyncError in the chain of {exc!r}")
    return found


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def ts(value: str) -> pendulum.DateTime:
    return pendulum.parse(value).in_tz("UTC")


# --------------------------------------------------------------------------- 1. full sync
def test_full_sync_loads_every_documented_table(tmp_path: Path) -> None:
    pipeline = make_pipeline(tmp_path)
    with replay("full_sync.yaml") as (cassette, sent):
        run(pipeline)
    assert cassette.all_played and cassette.play_count == len(cassette) == 9
    fetched_at = recorded_json(cassette, "/org")["meta"]["fetched_at"]
    assert fetched_at == "2026-05-01T17:32:14Z"

    # fetched_at has whole seconds: the window ends at the last millisecond of that second
    assert_first_run_requests(sent, server_now="2026-05-01T17:32:14.999Z")
    with warehouse(tmp_path) as query:
        assert_tables_rows_and_ids(query)
        assert_child_tables(query)
        assert_types(query)
        assert_invite_codes_and_key_not_loaded(query, dlt_dir=tmp_path / "dlt")

    # every list checkpoint is the server clock of this run
    resources = pipeline.state["sources"][DATASET]["resources"]
    assert {name: ts(state["checkpoint"]) for name, state in resources.items()} == {
        name: ts("2026-05-01T17:32:14.999Z") for name in LIST_TABLES
    }


def assert_first_run_requests(sent: list[Sent], server_now: str) -> None:
    """GET /org first; then every list endpoint once (knocks twice: page 2 by cursor), each with
    the first run's window: no ``since``, ``until`` = the org's ``meta.fetched_at`` (to the end
    of its second)."""
    assert sent[0].endpoint == "/org" and sent[0].params == {}
    assert all(s.method == "GET" and s.authorization == f"Bearer {KEY}" for s in sent)
    lists = sent[1:]
    assert sorted(s.endpoint for s in lists) == sorted(
        [
            "/users",
            "/knocks",
            "/knocks",
            "/leads",
            "/appointments",
            "/daily-stats",
            "/app-opens",
            "/counties",
        ]
    )
    for s in lists:
        window = {k: v for k, v in s.params.items() if k != "cursor"}
        assert window.keys() == {"until", "include_deleted", "limit"}, s
        assert ts(window["until"]) == ts(server_now), s
        assert window["include_deleted"] == "true" and window["limit"] == "1000", s
    knocks = [s for s in lists if s.endpoint == "/knocks"]
    assert [k.params.get("cursor") for k in knocks] == [None, CURSOR_1]
    assert knocks[0].params["until"] == knocks[1].params["until"]
    assert all("cursor" not in s.params for s in lists if s.endpoint != "/knocks")


def assert_tables_rows_and_ids(query: Query) -> None:
    assert tables(query) == DLT_TABLES | {"org", *LIST_TABLES}
    counts = {
        t: query(f"select count(*) from {DATASET}.{t}")[0][0] for t in tables(query) - DLT_TABLES
    }
    assert counts == {
        "org": 1,
        "users": 3,
        "knocks": 3,
        "leads": 2,
        "appointments": 2,
        "daily_stats": 2,
        "app_opens": 2,
        "counties": 2,
    }
    assert query(f"select id, name from {DATASET}.org") == [
        ("f7a3c2e1-5b6d-4e8f-9a0b-1c2d3e4f5a6b", "Sunrise Solar Co")
    ]
    utc = pendulum.UTC
    assert set(query(f"select id, updated_at, deleted_at from {DATASET}.users")) == {
        ("usr_0001", pendulum.datetime(2026, 3, 2, 10, tz=utc), None),
        ("usr_0002", pendulum.datetime(2026, 4, 12, 8, 30, tz=utc), None),
        (
            "usr_0003",
            pendulum.datetime(2026, 4, 20, 9, tz=utc),
            pendulum.datetime(2026, 4, 20, 9, tz=utc),
        ),  # soft-deleted: kept, marked
    }
    assert set(query(f"select id, updated_at, deleted_at from {DATASET}.knocks")) == {
        ("kn_0001", pendulum.datetime(2026, 4, 28, 17, 40, tz=utc), None),
        ("kn_0002", pendulum.datetime(2026, 4, 29, 15, 45, tz=utc), None),
        (
            "kn_0003",
            pendulum.datetime(2026, 4, 30, 20, tz=utc),
            pendulum.datetime(2026, 4, 30, 20, tz=utc),
        ),  # soft-deleted, on page 2
    }

    def keys(sql: str) -> set[tuple[str, ...]]:
        return {tuple(str(v) for v in row) for row in query(sql)}

    assert keys(f"select id from {DATASET}.leads") == {("ld_0001",), ("ld_0002",)}
    assert keys(f"select id from {DATASET}.appointments") == {("ap_0001",), ("ap_0002",)}
    assert keys(f"select user_id, date from {DATASET}.daily_stats") == {
        ("usr_0002", "2026-04-28"),
        ("usr_0002", "2026-04-29"),
    }
    assert keys(f"select user_id, date from {DATASET}.app_opens") == {
        ("usr_0001", "2026-04-30"),
        ("usr_0002", "2026-04-30"),
    }
    assert keys(f"select county_fips from {DATASET}.counties") == {("06037",), ("06059",)}


def assert_child_tables(query: Query) -> None:
    """Nested lists stay in their row as JSON columns, queryable as typed lists."""

    def nested(table: str, expr: str) -> set[tuple[Any, ...]]:
        return set(query(f"select id, unnest({expr}) from {DATASET}.{table}"))

    assert nested("knocks", "CAST(actions_taken AS VARCHAR[])") == {
        ("kn_0001", "price_estimate"),
        ("kn_0001", "proposal_given"),
        ("kn_0003", "price_estimate"),
    }
    assert nested("leads", "CAST(actions_taken AS VARCHAR[])") == {
        ("ld_0001", "price_estimate"),
        ("ld_0001", "qualified"),
    }
    spec = '[{"id": "VARCHAR", "fileName": "VARCHAR", "mimeType": "VARCHAR", "size": "BIGINT"}]'
    rows = query(
        f"select id, a.id, a.fileName, a.mimeType, a.size from "
        f"(select id, unnest(from_json(attachments, '{spec}')) as a from {DATASET}.leads)"
    )
    assert set(rows) == {
        ("ld_0001", "att_0001", "power bill march.pdf", "application/pdf", 183211),
        ("ld_0001", "att_0002", "roof.jpg", "image/jpeg", 402117),
    }
    stamps = query(
        f"select unnest(CAST(knock_timestamps AS TIMESTAMPTZ[])) from {DATASET}.daily_stats"
    )
    assert stamps and all(isinstance(v, datetime) for (v,) in stamps)


def column_types(query: Query) -> dict[tuple[str, str], str]:
    rows = query(
        "select table_name, column_name, data_type from information_schema.columns "
        "where table_schema = ?",
        DATASET,
    )
    return {(t, c): d for t, c, d in rows}


def assert_types(query: Query) -> None:
    types = column_types(query)
    for table in LIST_TABLES:
        for column in ("updated_at", "deleted_at"):
            assert types[(table, column)] == "TIMESTAMP WITH TIME ZONE", (table, column)
    assert types[("knocks", "knock_date")] == "DATE"


def assert_invite_codes_and_key_not_loaded(query: Query, dlt_dir: Path) -> None:
    """The org's invite codes (API keys) reach no table, no column, no cell, no dlt file."""
    types = column_types(query)
    assert not [name for name in tables(query) if "invite" in name]
    assert not [(t, c) for (t, c) in types if "invite" in c or "api_key" in c]
    forbidden = ["REDACTED-INVITE-CODE", KEY, KEY.removeprefix("sk_")]
    for (table, column), data_type in types.items():
        if data_type != "VARCHAR":
            continue
        for needle in forbidden:
            sql = f'select count(*) from {DATASET}."{table}" where contains("{column}", ?)'
            assert query(sql, needle) == [(0,)], f"{needle!r} found in {table}.{column}"
    files = [p for p in dlt_dir.rglob("*") if p.is_file()]  # state, schemas, trace, packages
    assert files
    for path in files:
        data = path.read_bytes()
        assert KEY.removeprefix("sk_").encode() not in data, path
        assert b"REDACTED-INVITE-CODE" not in data, path


# --------------------------------------------------------------------------- 2. error envelopes
@pytest.mark.parametrize(
    ("cassette_name", "error_type", "status", "code", "endpoint", "expected_requests"),
    [
        ("error_invalid_key.yaml", AuthenticationError, 401, "INVALID_KEY", "/org", ["/org"]),
        (
            "error_subscription_expired.yaml",
            SubscriptionError,
            402,
            "SUBSCRIPTION_EXPIRED",
            "/org",
            ["/org"],
        ),
        # /org must succeed before any list endpoint is asked: the 400 comes on the 2nd request
        ("error_invalid_param.yaml", ApiError, 400, "INVALID_PARAM", "/users", ["/org", "/users"]),
    ],
    ids=["401-INVALID_KEY", "402-SUBSCRIPTION_EXPIRED", "400-INVALID_PARAM"],
)
def test_error_envelope_fails_the_run_after_one_request(
    tmp_path: Path,
    cassette_name: str,
    error_type: type[SolarsyncError],
    status: int,
    code: str,
    endpoint: str,
    expected_requests: list[str],
) -> None:
    pipeline = make_pipeline(tmp_path)
    with replay(cassette_name) as (cassette, sent):
        with pytest.raises(PipelineStepFailed) as info:
            run(pipeline)

    # one request to the failing endpoint, never retried, nothing asked after it
    assert [s.endpoint for s in sent] == expected_requests
    assert cassette.all_played and cassette.play_count == len(expected_requests)
    assert stats_for("solarknock").retries == 0

    error = solarsync_error_in(info.value)
    assert type(error) is error_type
    assert (error.source, error.endpoint, error.status, error.code) == (
        "solarknock",
        endpoint,
        status,
        code,
    )
    message = str(error)
    assert message.startswith(f"solarknock {endpoint}: ")
    assert f"[{status} {code}]" in message
    everything = "".join(traceback.format_exception(info.value)) + str(info.value)
    assert message in everything  # what the user sees carries the same text
    assert KEY not in everything and KEY.removeprefix("sk_") not in everything

    # nothing was loaded and no checkpoint moved
    with warehouse(tmp_path) as query:
        assert tables(query) <= DLT_TABLES
    assert not pipeline.state.get("sources")


# --------------------------------------------------------------------------- 3. INVALID_CURSOR
def _run_with_cursor_restart(tmp_path: Path) -> tuple[dlt.Pipeline, list[Sent]]:
    pipeline = make_pipeline(tmp_path)
    with replay("invalid_cursor_restart.yaml") as (cassette, sent):
        run(pipeline, "knocks")
    assert cassette.all_played and cassette.play_count == len(cassette) == 5
    return pipeline, sent


def test_invalid_cursor_restarts_the_window_once_and_loads_each_row_once(tmp_path: Path) -> None:
    pipeline, sent = _run_with_cursor_restart(tmp_path)

    assert [(s.endpoint, s.params.get("cursor")) for s in sent] == [
        ("/org", None),
        ("/knocks", None),
        ("/knocks", CURSOR_1),  # -> 400 INVALID_CURSOR
        ("/knocks", None),  # the same window again, from its start
        ("/knocks", CURSOR_2),
    ]
    windows = [{k: v for k, v in s.params.items() if k != "cursor"} for s in sent[1:]]
    assert all(w == windows[0] for w in windows)  # same (since, until] every time
    assert "since" not in windows[0]

    with warehouse(tmp_path) as query:
        assert tables(query) == DLT_TABLES | {"knocks"}
        assert sorted(query(f"select id from {DATASET}.knocks")) == [
            ("kn_0001",),
            ("kn_0002",),
            ("kn_0003",),
        ]
        assert sorted(
            query(f"select id, unnest(CAST(actions_taken AS VARCHAR[])) from {DATASET}.knocks")
        ) == [
            ("kn_0001", "price_estimate"),
            ("kn_0001", "proposal_given"),
            ("kn_0003", "price_estimate"),
        ]
    state = pipeline.state["sources"][DATASET]["resources"]["knocks"]
    assert ts(state["checkpoint"]) == ts("2026-05-01T17:32:14.999Z")


def test_last_sync_counts_each_row_once_after_a_cursor_restart(tmp_path: Path) -> None:
    pipeline, _ = _run_with_cursor_restart(tmp_path)
    last_sync = pipeline.state["sources"][DATASET]["resources"]["knocks"]["last_sync"]
    assert {k: v for k, v in last_sync.items() if k != "until"} == {
        "rows": 3,
        "new": 2,
        "updated": 0,
        "deleted": 1,
    }


# --------------------------------------------------------------------------- 4. no secrets
def secrets_in_cassette(text: str) -> list[str]:
    """Every secret-looking thing in one cassette file's text (empty list: clean)."""
    problems = [f"the test key {n!r}" for n in (KEY, KEY.removeprefix("sk_")) if n in text]
    problems += [f"a key-shaped string {m!r}" for m in re.findall(r"\bsk_[A-Za-z0-9]{3,}", text)]
    if re.search(r"\bbearer\s+\S", text, re.IGNORECASE):
        problems.append("a Bearer token")
    document = yaml.safe_load(text)
    for index, interaction in enumerate(document["interactions"]):
        for side in ("request", "response"):
            for name in interaction[side].get("headers") or {}:
                if name.lower() in ("authorization", "cookie", "set-cookie"):
                    problems.append(f"interaction {index}: {side} header {name}")
        try:
            body = json.loads(interaction["response"]["body"]["string"] or "null")
        except ValueError:
            continue
        stack = [body]
        while stack:
            node = stack.pop()
            if isinstance(node, dict):
                for name, value in node.items():
                    if name in ORG_SECRET_FIELDS:
                        problems += [
                            f"interaction {index}: {name} value {code!r}"
                            for code in _as_list(value)
                            if not (isinstance(code, str) and INVITE_PLACEHOLDER_RE.match(code))
                        ]
                    else:
                        stack.append(value)
            elif isinstance(node, list):
                stack.extend(node)
    return problems


def test_no_cassette_contains_a_secret() -> None:
    files = sorted(CASSETTES.glob("*.yaml"))
    assert {f.name for f in files} >= {
        "full_sync.yaml",
        "error_invalid_key.yaml",
        "error_subscription_expired.yaml",
        "error_invalid_param.yaml",
        "invalid_cursor_restart.yaml",
    }
    found = {f.name: secrets_in_cassette(f.read_text()) for f in files}
    assert found == {f.name: [] for f in files}
    # the org payloads do carry invite codes, as placeholders: the "not loaded" check has teeth
    assert "REDACTED-INVITE-CODE-1" in (CASSETTES / "full_sync.yaml").read_text()


def test_the_secret_scan_and_the_recording_scrubber_catch_leaks() -> None:
    clean = (CASSETTES / "full_sync.yaml").read_text()
    leaks = {
        "key": clean.replace("REDACTED-INVITE-CODE-1", KEY),
        "bare key": clean.replace("REDACTED-INVITE-CODE-1", KEY.removeprefix("sk_")),
        "other invite code": clean.replace("REDACTED-INVITE-CODE-2", "ZX81MGR"),
        "auth header": clean.replace(
            "Accept: [application/json]",
            "Authorization: [xyz]\n      Accept: [application/json]",
            1,
        ),
    }
    for what, text in leaks.items():
        assert secrets_in_cassette(text), what

    # what a live recording of GET /org would hold, after the recording hook
    recorded = {
        "status": {"code": 200, "message": "OK"},
        "headers": {"Content-Type": ["application/json"], "Set-Cookie": ["session=abc"]},
        "body": {
            "string": json.dumps(
                {"data": {"id": "org1", "invite_codes": [KEY, "ZX81MGR"]}, "meta": {}}
            ).encode()
        },
    }
    scrubbed = scrub_response(recorded)
    assert "Set-Cookie" not in scrubbed["headers"]
    body = json.loads(scrubbed["body"]["string"])
    assert body["data"]["invite_codes"] == ["REDACTED-INVITE-CODE-1", "REDACTED-INVITE-CODE-2"]
    assert KEY.removeprefix("sk_").encode() not in scrubbed["body"]["string"]
