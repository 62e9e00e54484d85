"""Compare the warehouse with the SolarAssistant sandbox's truth."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import duckdb

from sandbox.solarassistant import SolarAssistantSandbox
from sources.solarassistant.metrics import typed_value


def rows(path: Path, sql: str, *params: Any) -> list[dict[str, Any]]:
    con = duckdb.connect(str(path), read_only=True)
    try:
        cur = con.execute(sql, list(params))
        names = [d[0] for d in cur.description]
        return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]
    finally:
        con.close()


def tables(path: Path) -> set[str]:
    found = rows(
        path,
        "select table_name from information_schema.tables where table_schema = 'solarassistant'",
    )
    return {r["table_name"] for r in found if not r["table_name"].startswith("_dlt")}


def assert_cloud_tables_equal(sb: SolarAssistantSandbox, path: Path) -> None:
    """users, sites (list fields + owner/organization of the details), site_members,
    organizations and org_users are exactly what the API serves: no missing, extra,
    duplicated or stale row."""
    (user,) = rows(path, "select * from solarassistant.users")
    assert {k: user[k] for k in sb.account} == sb.account

    sites = rows(path, "select * from solarassistant.sites order by id")
    truth = sorted(sb.truth("sites"), key=lambda s: s["id"])
    assert [s["id"] for s in sites] == [t["id"] for t in truth]
    for site, expected in zip(sites, truth, strict=True):
        detail = sb.site_detail(site["id"])
        for key, value in expected.items():
            if key != "last_seen_at":
                assert site[key] == value, (site["id"], key)
        assert site["last_seen_at"].isoformat().replace("+00:00", "Z") == expected["last_seen_at"]
        assert site["owner__id"] == detail["owner"]["id"]
        assert site["owner__email"] == detail["owner"]["email"]
        org = detail["organization"]
        assert site.get("organization__id") == (org["id"] if org else None)

    members = rows(path, "select site_id, user_id, role, email from solarassistant.site_members")
    keys = [(m["site_id"], m["user_id"]) for m in members]
    assert len(keys) == len(set(keys)), "duplicate members"
    assert sorted((m["site_id"], m["user_id"], m["role"], m["email"]) for m in members) == sorted(
        (t["site_id"], t["id"], t["role"], t["email"]) for t in sb.truth("site_members")
    )

    orgs = rows(path, "select id, name, cloud_host from solarassistant.organizations order by id")
    assert orgs == sb.truth("organizations")

    if sb.has_org:
        org_users = rows(path, "select id, email from solarassistant.org_users")
        assert sorted((u["id"], u["email"]) for u in org_users) == sorted(
            (u["id"], u["email"]) for u in sb.truth("org_users")
        )


def expected_metric(row: dict[str, Any]) -> tuple:
    number, text, kind = typed_value(row["value"])
    return row["topic"], row["group"], row["name"], row["unit"], number, text, kind


def latest_poll(path: Path) -> list[dict[str, Any]]:
    return rows(
        path,
        "select * from solarassistant.metric_polls where polled_at = "
        "(select max(polled_at) from solarassistant.metric_polls) order by site_id",
    )


def assert_latest_metrics_equal(
    sb: SolarAssistantSandbox, path: Path, topic: str | None = None
) -> dict[int, str]:
    """The last poll's metrics of every ``ok`` site equal what the proxy serves now (every
    topic once, value typed); offline sites have no rows in it. Returns status by site."""
    polls = latest_poll(path)
    assert polls, "no poll recorded"
    polled_at = polls[0]["polled_at"]
    got = rows(
        path,
        "select * from solarassistant.metrics where polled_at = ? order by site_id, topic",
        polled_at,
    )
    by_site: dict[int, list[tuple]] = {}
    for r in got:
        by_site.setdefault(r["site_id"], []).append(
            (
                r["topic"],
                r["group"],
                r["name"],
                r["unit"],
                r["value_number"],
                r["value_text"],
                r["value_type"],
            )
        )
    for poll in polls:
        site_id = poll["site_id"]
        if poll["status"] == "ok":
            expected = sorted(expected_metric(m) for m in sb.metrics_truth(site_id, topic))
            assert sorted(by_site.get(site_id, [])) == expected, site_id
            assert poll["metric_count"] == len(expected)
        else:
            assert site_id not in by_site and poll["metric_count"] == 0
            assert poll["reason"]
    return {p["site_id"]: p["status"] for p in polls}
