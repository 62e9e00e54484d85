"""Several accounts of one source in one warehouse (docs/accounts.md), on every destination.

The stand-in differs from what the code could assume: two SolarKnock orgs built from ONE seed
have the very same record ids (only their org ids differ), behind ONE server that picks the
org by the key (``sandbox.solarknock.orgs``), each key with its own rate limit.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import dlt
import pytest

from pipelines import registry
from pipelines.accounts import Account, select
from pipelines.sync import run_accounts, run_source
from sandbox.solarknock import SolarKnockOrgs
from tests.conftest import SK_COUNTS, SK_TABLES

NORTH, SOUTH, MAIN = "sk_NORTHKEY1", "sk_SOUTHKEY2", "sk_MAINKEY3"
COUNTS = {k: min(v, 150) for k, v in SK_COUNTS.items()}
SPEC = registry.get("solarknock")


@pytest.fixture
def offices(monkeypatch: pytest.MonkeyPatch):
    """Two named accounts (north, south: same seed, other org ids) and the default one (its
    own seed), on one server; settings by the documented environment variables."""
    orgs = {
        NORTH: {"seed": 7, "counts": COUNTS, "org_id": "org-north"},
        SOUTH: {"seed": 7, "counts": COUNTS, "org_id": "org-south"},
        MAIN: {"seed": 3, "counts": COUNTS},
    }
    with SolarKnockOrgs(orgs) as server:
        monkeypatch.setenv("SOURCES__SOLARKNOCK__BASE_URL", server.base_url)
        monkeypatch.setenv("SOURCES__SOLARKNOCK__PAGE_SIZE", "100")
        monkeypatch.setenv("SOURCES__SOLARKNOCK__BACKOFF_FACTOR", "0.05")
        monkeypatch.setenv("SOURCES__SOLARKNOCK__MAX_ATTEMPTS", "3")
        monkeypatch.setenv("SOURCES__SOLARKNOCK__API_KEY", MAIN)
        monkeypatch.setenv("SOURCES__SOLARKNOCK__ACCOUNTS__NORTH__API_KEY", NORTH)
        monkeypatch.setenv("SOURCES__SOLARKNOCK__ACCOUNTS__SOUTH__API_KEY", SOUTH)
        yield server


def keys_of(org, endpoint: str) -> set:
    table, key = SK_TABLES[endpoint]
    return {tuple(str(r[k]) for k in key) for r in org.truth(endpoint)}


def warehouse_keys(warehouse, endpoint: str, org_id: str) -> set:
    table, key = SK_TABLES[endpoint]
    cols = ", ".join(f'CAST("{k}" AS VARCHAR)' for k in key)
    with warehouse.reader() as reader:
        rows = reader.rows(f"select {cols} from solarknock.{table} where org_id = ?", [org_id])
    return {tuple(r) for r in rows}


def test_accounts_are_configured_by_name_with_the_source_values_as_defaults(offices) -> None:
    accounts = select(SPEC, None)
    assert [a.name for a in accounts] == ["default", "north", "south"]
    assert select(SPEC, ["south"]) == [Account("solarknock", "south")]


def test_two_orgs_with_the_same_record_ids_each_equal_their_truth(offices, any_warehouse) -> None:
    north, south, main = offices[NORTH], offices[SOUTH], offices[MAIN]
    assert keys_of(north, "knocks") == keys_of(south, "knocks")  # the trap: same ids

    results = run_accounts(SPEC, select(SPEC, None), any_warehouse)
    assert [(r.account, r.ok, r.error) for r in results] == [
        ("default", True, None),
        ("north", True, None),
        ("south", True, None),
    ]
    for org in (north, south, main):
        for endpoint in SK_TABLES:
            assert warehouse_keys(any_warehouse, endpoint, org.org_id) == keys_of(org, endpoint)
    with any_warehouse.reader() as reader:
        by_account = dict(
            reader.rows("select account, count(*) from solarknock.knocks group by account")
        )
        orgs = reader.rows("select org_id, account, id from solarknock.org order by account")
        # the views: one row per org and account, nothing merged across them
        view = dict(reader.rows("select org_id, count(*) from analytics.knocks group by org_id"))
    assert by_account == {a: len(o.truth("knocks")) for a, o in zip(
        ("default", "north", "south"), (main, north, south), strict=True)}  # fmt: skip
    assert orgs == [
        (main.org_id, "default", main.org_id),
        ("org-north", "north", "org-north"),
        ("org-south", "south", "org-south"),
    ]
    live = {o.org_id: sum(r["deleted_at"] is None for r in o.truth("knocks")) for o in offices}
    assert view == live

    # each key its own org and its own limiter: no request used another org's key
    for org in (north, south, main):
        assert org.count_requests(status=401) == 0

    # an update in one org changes that org's row only
    (changed,) = north.update("knocks", n=1)
    again = run_accounts(SPEC, select(SPEC, None), any_warehouse)
    assert all(r.ok for r in again)
    with any_warehouse.reader() as reader:
        rows = reader.rows(
            "select org_id, updated_at from solarknock.knocks where id = ? order by org_id",
            [changed],
        )
    assert len(rows) == 3 or len(rows) == 2  # south has it too (same seed); main maybe not
    for org_id, updated in rows:
        org = {o.org_id: o for o in (north, south, main)}[org_id]
        (truth,) = [r for r in org.truth("knocks") if r["id"] == changed]
        assert updated.isoformat().replace("+00:00", "Z")[:19] == truth["updated_at"][:19]


@pytest.mark.parametrize(
    "fault", ["revoked", "expired", "5xx"], ids=["401-revoked", "402-expired", "5xx-storm"]
)
def test_one_failing_account_never_stops_or_rolls_back_the_others(offices, fault, tmp_path):
    from pipelines.destinations.duckdb import DuckDBWarehouse

    warehouse = DuckDBWarehouse(tmp_path / "w.duckdb")
    assert all(r.ok for r in run_accounts(SPEC, select(SPEC, None), warehouse))
    north, south = offices[NORTH], offices[SOUTH]
    north.insert("knocks", n=3)
    south.insert("knocks", n=4)
    if fault == "revoked":
        offices.revoke(SOUTH)
    elif fault == "expired":
        south.set_subscription_expired()
    else:
        south.fail_next(50, status=503)

    results = {r.account: r for r in run_accounts(SPEC, select(SPEC, None), warehouse)}
    assert results["north"].ok and results["default"].ok
    failed = results["south"]
    assert not failed.ok
    assert "solarknock (account south)" in failed.error  # the message names the account
    assert "[sources.solarknock.accounts.south]" in failed.error or fault == "5xx"
    assert failed.exit_code != 0
    assert warehouse_keys(warehouse, "knocks", "org-north") == keys_of(north, "knocks")
    assert len(warehouse_keys(warehouse, "knocks", "org-south")) == len(south.truth("knocks")) - 4

    journal = Path(dlt.current.run_context().data_dir) / "solarsync" / "sync_runs.jsonl"
    lines = [json.loads(x) for x in journal.read_text().splitlines() if x.strip()]
    last = {row["account"]: row for row in lines}
    assert last["south"]["status"] == "failed" and last["north"]["status"] == "ok"

    # healed: the next run catches up, nothing lost, nothing doubled
    offices.restore(SOUTH)
    south.reset_faults()
    results = run_accounts(SPEC, select(SPEC, None), warehouse)
    assert all(r.ok for r in results), [r.error for r in results]
    assert warehouse_keys(warehouse, "knocks", "org-south") == keys_of(south, "knocks")


def test_the_cli_names_the_failed_account_and_runs_one_account(offices, capsys) -> None:
    from pipelines.cli import main

    offices.revoke(NORTH)
    assert main(["--no-progress", "run", "solarknock"]) == 1
    printed = capsys.readouterr().out
    assert "solarknock (account north): FAILED" in printed
    assert "solarknock (account south): ok" in printed
    assert "solarknock: ok" in printed

    offices.restore(NORTH)
    assert main(["--no-progress", "run", "solarknock", "--account", "north"]) == 0
    printed = capsys.readouterr().out
    assert "solarknock (account north): ok" in printed and "account south" not in printed
    assert main(["run", "solarknock", "--account", "nowhere"]) == 2


def test_single_account_warehouse_is_upgraded_in_place_without_a_download(
    offices, any_warehouse, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A warehouse the single-account release wrote (no account columns, keys without them):
    the next run fills its rows' account and org id, merges new rows onto them, and reads
    only what changed (the default account keeps its pipeline and checkpoints)."""
    import pipelines.sync as sync_module
    import sources.solarknock as solarknock_module
    from sources.common import accounts as acc

    main_org = offices[MAIN]
    with monkeypatch.context() as legacy:  # the release before accounts
        legacy.setattr(
            acc, "keyed", lambda key, *cols: [key] if isinstance(key, str) else list(key)
        )
        legacy.setattr(acc, "stamped", lambda resource, values: resource)
        legacy.setattr(acc, "columns", lambda *names: {})
        legacy.setattr(sync_module, "upgrade", lambda *args: 0)
        legacy.setattr(solarknock_module, "ORG_ID_COLUMN", "id")  # org: keyed by its id
        # (its views need no org_id: none here, the upgraded run creates them)
        assert run_source(dataclasses.replace(SPEC, views=None), any_warehouse).ok
    with any_warehouse.reader() as reader:
        assert "org_id" not in reader.columns("solarknock", "knocks")
        before = reader.rows("select count(*) from solarknock.knocks")[0][0]
    assert before == len(main_org.truth("knocks"))

    main_org.clear_requests()
    main_org.update("knocks", n=2)
    result = run_source(SPEC, any_warehouse)
    assert result.ok, result.error
    # incremental: the knocks window is the checkpoint's, not a re-download
    assert result.rows.get("knocks", 0) <= 10
    with any_warehouse.reader() as reader:
        assert reader.rows(
            "select count(*), count(distinct id), min(org_id), max(org_id), min(account) "
            "from solarknock.knocks"
        ) == [(before, before, main_org.org_id, main_org.org_id, "default")]
    assert warehouse_keys(any_warehouse, "knocks", main_org.org_id) == keys_of(main_org, "knocks")
