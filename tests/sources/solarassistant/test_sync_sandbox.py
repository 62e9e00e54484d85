"""SolarAssistant end to end against the sandbox (cloud API + HTTPS proxy), through the CLI:
tables equal to the sandbox's truth after members change, sites go offline, tokens expire and
requests fail; the run succeeds whenever only sites fail."""

from __future__ import annotations

import pytest

from pipelines.cli import main
from tests.sources.solarassistant.conftest import ENV
from tests.sources.solarassistant.warehouse_check import (
    assert_cloud_tables_equal,
    assert_latest_metrics_equal,
    latest_poll,
    rows,
    tables,
)

ALL_TABLES = {
    "users",
    "sites",
    "site_members",
    "organizations",
    "org_users",
    "metrics",
    "metric_polls",
}


def run(*args: str) -> int:
    return main(["--no-progress", "run", "solarassistant", *args])


def online(sb) -> list[int]:
    return [s.id for s in sb.sites if sb.offline_mode(s.id) is None]


def test_run_loads_every_table_equal_to_the_api(sa_sandbox, warehouse, capsys):
    assert run() == 0
    assert "solarassistant: ok" in capsys.readouterr().out
    assert tables(warehouse) == ALL_TABLES
    assert_cloud_tables_equal(sa_sandbox, warehouse)
    offline = sa_sandbox.sites[-1].id
    statuses = assert_latest_metrics_equal(sa_sandbox, warehouse)
    assert statuses == {s.id: ("offline" if s.id == offline else "ok") for s in sa_sandbox.sites}
    (polled,) = {r["polled_at"] for r in latest_poll(warehouse)}
    assert polled.utcoffset().total_seconds() == 0  # UTC
    # the offline site: what happened, from the proxy's own answer; 2 attempts, no more
    (row,) = [r for r in latest_poll(warehouse) if r["site_id"] == offline]
    assert row["http_status"] == 502 and "Site offline" in row["reason"]
    assert sa_sandbox.count("proxy", "/metrics$") == len(sa_sandbox.sites) - 1 + 2
    # org users: offset/limit pages of 20 (page_size), the offset advancing by rows received
    offsets = [
        r.query
        for r in sa_sandbox.requests
        if r.server == "cloud" and r.path.endswith("/users") and "/sites/" not in r.path
    ]
    assert [(q.get("offset", "0"), q["limit"]) for q in offsets] == [
        ("0", "20"),
        ("20", "20"),
        ("40", "20"),
        ("45", "20"),
    ]
    # one authorize per site; read-only otherwise
    assert sa_sandbox.authorize_calls == {s.id: 1 for s in sa_sandbox.sites}
    assert sa_sandbox.writes == []
    # every value type of the sandbox landed, typed
    kinds = rows(warehouse, "select value_type, count(*) n from solarassistant.metrics group by 1")
    assert {k["value_type"] for k in kinds} == {"number", "string", "boolean", "null"}


def test_org_users_paging_survives_a_server_cap_below_page_size(sa_sandbox, warehouse, monkeypatch):
    """The API caps ``limit`` at 50 while we ask for 100: no row is skipped."""
    monkeypatch.setenv(ENV + "PAGE_SIZE", "100")
    sa_sandbox._org_users_rows += [
        dict(u, id=u["id"] + 5000) for u in sa_sandbox._org_users_rows[1:]
    ]
    assert len(sa_sandbox.truth("org_users")) == 89
    assert run() == 0
    assert_cloud_tables_equal(sa_sandbox, warehouse)
    offsets = [r.query.get("offset", "0") for r in sa_sandbox.requests if r.path == "/api/v1/users"]
    assert offsets == ["0", "50", "89"]


def test_members_change_and_sites_leave(sa_sandbox, warehouse):
    assert run() == 0
    a, b, c = sa_sandbox.sites[0], sa_sandbox.sites[1], sa_sandbox.sites[2]
    removed = next(uid for uid, role in a.members.items() if role != "owner")
    sa_sandbox.remove_member(a.id, removed)
    sa_sandbox.set_member(b.id, 33, "admin")  # a new member
    owner = next(uid for uid, role in b.members.items() if role == "owner")
    sa_sandbox.set_member(b.id, owner, "admin")  # a role change
    sa_sandbox.remove_site(c.id)  # the site left the account: its members too
    assert run() == 0
    assert_cloud_tables_equal(sa_sandbox, warehouse)
    left = rows(
        warehouse, "select count(*) n from solarassistant.site_members where site_id = ?", c.id
    )
    assert left == [{"n": 0}]
    assert run() == 0  # nothing changed: the same tables
    assert_cloud_tables_equal(sa_sandbox, warehouse)


def test_a_site_whose_members_cannot_be_read_keeps_its_rows(sa_sandbox, warehouse, capsys):
    assert run() == 0
    site, other = sa_sandbox.sites[0], sa_sandbox.sites[1]
    members_of = "select user_id from solarassistant.site_members where site_id = ? order by 1"
    before = rows(warehouse, members_of, site.id)
    for s in (site, other):
        sa_sandbox.remove_member(s.id, next(u for u, r in s.members.items() if r != "owner"))
    # site: members endpoint and details both fail; other: only the members endpoint
    sa_sandbox.fail("cloud", rf"^/api/v1/sites/{site.id}(/users)?$", 500, times=-1)
    sa_sandbox.fail("cloud", rf"^/api/v1/sites/{other.id}/users$", 500, times=-1)
    assert run() == 0  # one site's listing failing is not a failed run...
    assert rows(warehouse, members_of, site.id) == before  # ...and does not wipe its members
    err = capsys.readouterr().err
    assert f"site {site.id}: listing its members failed" in err
    assert f"site {other.id}: listing its members failed" in err
    # the other site's members came from its details: already current
    truth_other = sorted(m["id"] for m in sa_sandbox.members_truth(other.id))
    assert [r["user_id"] for r in rows(warehouse, members_of, other.id)] == truth_other
    sa_sandbox.clear_faults()
    assert run() == 0
    assert_cloud_tables_equal(sa_sandbox, warehouse)  # the removal shows once listed again


@pytest.mark.parametrize("answer", ["403", "200 with an error body"])
def test_account_without_organization_skips_org_users(sa_sandbox, warehouse, capsys, answer):
    sa_sandbox.set_has_org(False)
    if answer != "403":
        sa_sandbox.fail("cloud", "^/api/v1/users$", 200, times=-1)
    assert run() == 0
    captured = capsys.readouterr()
    assert "solarassistant: ok" in captured.out
    assert tables(warehouse) == ALL_TABLES - {"org_users"}
    assert "org_users skipped" in captured.err
    assert ("403" if answer == "403" else "injected fault 200") in captured.err
    assert_cloud_tables_equal(sa_sandbox, warehouse)
    assert sa_sandbox.count("cloud", "^/api/v1/users$") == 1  # asked once, not retried


@pytest.mark.parametrize("mode", ["502", "504", "timeout", "drop", "200"])
def test_offline_sites_are_recorded_and_the_others_polled(sa_sandbox, warehouse, mode):
    first, last = sa_sandbox.sites[0].id, sa_sandbox.sites[-1].id
    sa_sandbox.set_offline(first, mode)
    sa_sandbox.set_offline(last, None)
    assert run() == 0
    statuses = assert_latest_metrics_equal(sa_sandbox, warehouse)
    assert statuses[first] == "offline"
    assert [s for site, s in statuses.items() if site != first] == ["ok"] * 5


def test_site_tokens_are_reused_and_renewed_once_on_401(sa_sandbox, warehouse):
    assert run() == 0
    sa_sandbox.tick()
    assert run() == 0  # the same process: the tokens of the first run are reused
    assert sa_sandbox.authorize_calls == {s.id: 1 for s in sa_sandbox.sites}
    assert_latest_metrics_equal(sa_sandbox, warehouse)
    assert {r["authorized"] for r in latest_poll(warehouse)} == {False}

    sa_sandbox.expire_tokens()
    sa_sandbox.tick()
    sa_sandbox.clear_requests()
    assert run() == 0
    up = online(sa_sandbox)
    # each online site: 401, one authorize, then its metrics
    assert sa_sandbox.authorize_calls == {s.id: 1 for s in sa_sandbox.sites}
    # + the offline site: 401, then two 502s with its new token
    assert sa_sandbox.count("proxy", "/metrics$") == 2 * len(up) + 3
    statuses = assert_latest_metrics_equal(sa_sandbox, warehouse)
    assert [statuses[s] for s in up] == ["ok"] * len(up)
    assert {r["authorized"] for r in latest_poll(warehouse) if r["site_id"] in up} == {True}


def test_a_site_token_refused_twice_is_an_error_for_that_site_only(
    sa_sandbox, warehouse, monkeypatch
):
    monkeypatch.setenv(ENV + "CONCURRENCY", "1")  # sites in list order: the first gets the 401s
    bad = sa_sandbox.sites[0].id
    sa_sandbox.set_offline(sa_sandbox.sites[-1].id, None)
    sa_sandbox.fail("proxy", "/metrics$", 401, times=2)
    assert run() == 0
    statuses = {r["site_id"]: r for r in latest_poll(warehouse)}
    assert statuses[bad]["status"] == "error" and statuses[bad]["http_status"] == 401
    assert "rejected the site token" in statuses[bad]["reason"]
    assert sa_sandbox.authorize_calls[bad] == 2  # authorized again once, not more
    assert [r["status"] for s, r in statuses.items() if s != bad] == ["ok"] * 5


def test_concurrency_is_bounded(monkeypatch, tmp_path, warehouse):
    from sandbox.solarassistant import SolarAssistantSandbox
    from tests.sources.solarassistant.conftest import SA_TOKEN, point_at

    with SolarAssistantSandbox(
        seed=5, api_token=SA_TOKEN, sites=12, proxy_latency=0.1, cert_dir=str(tmp_path / "c")
    ) as sb:
        point_at(sb, monkeypatch)
        monkeypatch.setenv(ENV + "CONCURRENCY", "4")
        assert run() == 0
        assert 2 <= sb.max_in_flight <= 4
        assert [r["status"] for r in latest_poll(warehouse)] == ["ok"] * 12


def test_tls_is_verified_and_a_poll_no_site_answered_fails_the_run(
    sa_sandbox, warehouse, monkeypatch, capsys
):
    """Without the sandbox's certificate in REQUESTS_CA_BUNDLE the proxy is not trusted: no
    site can be read because of our side, so the run fails (exit 1), its polls still loaded."""
    ca_bundle = sa_sandbox.ca_bundle
    monkeypatch.delenv("REQUESTS_CA_BUNDLE")
    monkeypatch.setenv("CURL_CA_BUNDLE", "")
    assert run() == 1
    out = capsys.readouterr().out
    assert "solarassistant: FAILED" in out
    assert "no site could be read: 6 of 6 failed with an error" in out
    assert "point REQUESTS_CA_BUNDLE at it" in out
    polls = latest_poll(warehouse)  # every site's outcome is loaded all the same
    assert [r["site_id"] for r in polls] == sorted(s.id for s in sa_sandbox.sites)
    assert {r["status"] for r in polls} == {"error"}
    assert all("TLS verification" in r["reason"] and "SSLError" in r["reason"] for r in polls)
    assert "metrics" not in tables(warehouse)  # no site answered: no metric row at all
    # the certificate trusted again: the next run succeeds (no error left over in the state)
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", ca_bundle)
    assert run() == 0
    assert "solarassistant: ok" in capsys.readouterr().out


def test_topic_and_site_filters(sa_sandbox, warehouse, monkeypatch):
    chosen = [sa_sandbox.sites[0], sa_sandbox.sites[3]]
    monkeypatch.setenv(ENV + "SITES", f"{chosen[0].id}, {chosen[1].name}")
    monkeypatch.setenv(ENV + "TOPICS", "total/*")
    # the base URL as the docs name it, a bare host: the /api/v1 root is implied
    monkeypatch.setenv(ENV + "BASE_URL", sa_sandbox.base_url.removesuffix("/api/v1"))
    assert run() == 0
    statuses = assert_latest_metrics_equal(sa_sandbox, warehouse, topic="total/*")
    assert statuses == {chosen[0].id: "ok", chosen[1].id: "ok"}
    queries = [r.query for r in sa_sandbox.requests if r.server == "proxy"]
    assert queries == [{"topic": "total/*"}] * 2
    assert_cloud_tables_equal(sa_sandbox, warehouse)  # the cloud tables still cover every site


def test_wrong_api_token_fails_the_run_with_a_hint(sa_sandbox, warehouse, monkeypatch, capsys):
    monkeypatch.setenv(ENV + "API_TOKEN", "sa_WRONG_TOKEN_123")
    assert run() == 1
    out = capsys.readouterr().out
    assert "solarassistant: FAILED" in out
    assert "API token was rejected" in out and "SOURCES__SOLARASSISTANT__API_TOKEN" in out
    assert "sa_WRONG_TOKEN_123" not in out


def test_missing_token_is_a_configuration_error(sa_sandbox, warehouse, monkeypatch, capsys):
    monkeypatch.delenv(ENV + "API_TOKEN")
    assert run() == 1
    assert "api_token" in capsys.readouterr().out


def test_an_interrupted_load_is_completed_without_duplicates(sa_sandbox, warehouse):
    """A poll extracted but never loaded (the process died) is loaded by the next run, once."""
    import dlt

    from pipelines.destinations.duckdb import DuckDBWarehouse
    from pipelines.sync import pipeline_name
    from sources.solarassistant import solarassistant

    pipeline = dlt.pipeline(
        pipeline_name("solarassistant"),
        destination=DuckDBWarehouse(warehouse).dlt_destination(),
        dataset_name="solarassistant",
    )
    pipeline.extract(solarassistant(), loader_file_format="parquet")
    assert pipeline.has_pending_data
    sa_sandbox.tick()
    assert run() == 0
    polls = rows(
        warehouse, "select polled_at, count(*) n from solarassistant.metric_polls group by 1"
    )
    assert len(polls) == 2 and {p["n"] for p in polls} == {len(sa_sandbox.sites)}
    dupes = rows(
        warehouse,
        "select count(*) n from (select site_id, topic, polled_at from solarassistant.metrics "
        "group by all having count(*) > 1)",
    )
    assert dupes == [{"n": 0}]
    assert_latest_metrics_equal(sa_sandbox, warehouse)


def test_views(sa_sandbox, warehouse):
    assert run() == 0
    sa_sandbox.tick()
    assert run() == 0
    latest = rows(warehouse, "select * from analytics.solarassistant_latest_metrics")
    ok_sites = online(sa_sandbox)
    assert len(latest) == sum(len(sa_sandbox.metrics_truth(s)) for s in ok_sites)
    site = ok_sites[0]
    truth = {m["topic"]: m["value"] for m in sa_sandbox.metrics_truth(site)}
    got = {r["topic"]: r["value_text"] for r in latest if r["site_id"] == site}
    assert got == {
        t: (None if v is None else str(v).lower() if isinstance(v, bool) else str(v))
        for t, v in truth.items()
    }
    status = rows(warehouse, "select * from analytics.solarassistant_site_status order by site_id")
    assert [r["site_id"] for r in status] == sorted(s.id for s in sa_sandbox.sites)
    offline = sa_sandbox.sites[-1].id
    assert {r["site_id"]: r["last_status"] for r in status}[offline] == "offline"


@pytest.mark.parametrize("status", [401, 404])
def test_org_users_skip_message_has_no_misleading_hint(sa_sandbox, warehouse, capsys, status):
    # /user and /sites accepted the token: a 401/404 of GET /users is the "no organization"
    # answer, not a bad token or a wrong base_url
    sa_sandbox.set_has_org(False)
    sa_sandbox.fail("cloud", "^/api/v1/users$", status, times=-1)
    assert run() == 0
    err = capsys.readouterr().err
    assert "org_users skipped" in err and f"refused ({status}" in err
    assert "generate a new one" not in err and "check sources.solarassistant.base_url" not in err


def test_an_offline_site_that_was_authorized_says_so(sa_sandbox, warehouse):
    assert run() == 0
    offline = sa_sandbox.sites[-1].id  # 502 in the fixture
    polls = {r["site_id"]: r for r in latest_poll(warehouse)}
    assert polls[offline]["status"] == "offline"
    assert sa_sandbox.authorize_calls[offline] == 1
    assert polls[offline]["authorized"] is True
