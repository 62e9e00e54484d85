"""``SolarKnockOrgs``: several orgs behind one server, the org picked by the key."""

from __future__ import annotations

import requests

from sandbox.solarknock import SolarKnockOrgs

A, B = "sk_ORGAKEY", "sk_ORGBKEY"


def get(server: SolarKnockOrgs, path: str, key: str | None) -> requests.Response:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    return requests.get(f"{server.base_url}/{path}", headers=headers, timeout=5)


def test_each_key_reads_its_own_org_with_its_own_limit() -> None:
    orgs = {A: {"seed": 1, "counts": {"knocks": 5}}, B: {"seed": 1, "org_id": "org-b"}}
    with SolarKnockOrgs(orgs) as server:
        a, b = server[A], server[B]
        assert get(server, "org", A).json()["data"]["id"] == a.org_id
        assert get(server, "org", B).json()["data"]["id"] == "org-b"
        # one seed: the same record ids, other orgs
        ids_a = {r["id"] for r in get(server, "users", A).json()["data"]}
        ids_b = {r["id"] for r in get(server, "users", B).json()["data"]}
        assert ids_a == ids_b and a.org_id != "org-b"
        assert len(get(server, "knocks", A).json()["data"]) == 5
        assert get(server, "org", "sk_NOBODY").status_code == 401
        assert get(server, "org", None).status_code == 401
        assert len(server.refused) == 2
        b.set_rate_limit(1, burst=1, window=60)
        assert get(server, "org", B).status_code == 200
        assert get(server, "org", B).status_code == 429  # B's own budget is spent
        assert get(server, "org", A).status_code == 200  # A's is not
        b.set_subscription_expired()
        assert get(server, "org", B).status_code == 402
        server.revoke(A)
        assert get(server, "org", A).status_code == 401
        server.restore(A)
        assert get(server, "org", A).status_code == 200
        assert a.count_requests(endpoint="org") >= 3 and "sk_" not in repr(server)
