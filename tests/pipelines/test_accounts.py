"""Several accounts of one source in one warehouse (docs/accounts.md), on every destination.

The stand-in differs from what the code could assume: two SolarKnock orgs built from ONE seed
have the very same record ids (only their org ids differ), behind ONE server that picks the
org by the key (``sandbox.solarknock.orgs``), each key with its own rate limit.
"""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, datetime
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

    # attachments: a named account's files under its org, never sharing a blob
    with any_warehouse.reader() as reader:
        files = reader.rows(
            "select account, org_id, blob_path from solarknock.lead_attachments "
            "where status = 'stored'"
        )
    assert {a for a, *_ in files} == {"default", "north", "south"}
    assert len({p for *_, p in files}) == len(files)
    for account, org_id, path in files:
        assert (f"/_orgs/{org_id}/" in path) == (account != "default"), path

    # each key its own org and its own limiter: no request used another org's key
    for org in (north, south, main):
        assert org.count_requests(status=401) == 0

    # an update in one org changes that org's row only
    (changed,) = north.update("knocks", n=1)
    again = run_accounts(SPEC, select(SPEC, None), any_warehouse)
    assert all(r.ok for r in again)
    with any_warehouse.reader() as reader:
        # (filtered here: the S3 lake's reader cannot push `id = ?` into its Arrow scan)
        every = reader.rows("select org_id, id, updated_at from solarknock.knocks")
        rows = sorted((org, at) for org, knock, at in every if knock == changed)
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
    capsys.readouterr()
    assert main(["status", "solarknock", "--account", "north", "--fail-if-stale"]) == 0
    printed = capsys.readouterr().out
    assert "account north:" in printed and "account south" not in printed
    assert main(["status", "solarknock", "--json"]) == 0
    (source,) = json.loads(capsys.readouterr().out)["sources"]
    health = {a["name"]: a["health"]["state"] for a in source["accounts"]}
    assert health == {"default": "ok", "north": "ok", "south": "ok"}  # north: its rerun
    assert main(["check", "solarknock", "--account", "south"]) == 0
    assert "solarknock (account south): ok" in capsys.readouterr().out
    # a backfill of one account reads that org only and leaves its checkpoint alone
    offices[SOUTH].clear_requests()
    offices[NORTH].clear_requests()
    argv = ["--no-progress", "backfill", "solarknock", "--account", "south", "--resource", "users"]
    assert main(argv) == 0
    assert "solarknock (account south): ok" in capsys.readouterr().out
    assert offices[SOUTH].count_requests(endpoint="users") >= 1
    assert offices[NORTH].count_requests() == 0


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


# --------------------------------------------------------------------------- shared sites
HEAT_A, HEAT_B = "agk_a.ags_ACCOUNTA", "agk_b.ags_ACCOUNTB"


def test_heat_sites_two_keys_see_are_kept_per_account_and_counted_once(
    monkeypatch: pytest.MonkeyPatch, any_warehouse
) -> None:
    """Two access groups (two servers, one seed: the same site ids) that overlap in part:
    each account's rows equal what its key sees, the views show every site once."""
    from sandbox.heat import HeatSandbox

    with (
        HeatSandbox(seed=5, api_key=HEAT_A, sites=4) as a,
        HeatSandbox(seed=5, api_key=HEAT_B, sites=4) as b,
    ):
        shared = a.site_ids[1:]
        b.hide_site(a.site_ids[0])  # only the default account sees it
        only_b = b.add_site()  # only om2 sees it
        b.set_online(shared[0], not a.listed()[1]["isOnline"])  # the two disagree
        monkeypatch.setenv("SOURCES__HEAT__BASE_URL", a.base_url)
        monkeypatch.setenv("SOURCES__HEAT__API_KEY", HEAT_A)
        monkeypatch.setenv("SOURCES__HEAT__BACKOFF_FACTOR", "0.01")
        monkeypatch.setenv("SOURCES__HEAT__ACCOUNTS__OM2__API_KEY", HEAT_B)
        monkeypatch.setenv("SOURCES__HEAT__ACCOUNTS__OM2__BASE_URL", b.base_url)
        spec = registry.get("heat")
        for _ in range(2):  # a second snapshot: nothing doubles
            results = run_accounts(spec, select(spec, None), any_warehouse)
            assert [(r.account, r.ok, r.error) for r in results] == [
                ("default", True, None),
                ("om2", True, None),
            ]
        with any_warehouse.reader() as reader:
            raw = reader.rows("select account, site_id from heat.sites order by 1, 2")
            view = reader.rows("select site_id, account, accounts from analytics.heat_sites")
            availability = reader.rows(
                "select site_id, snapshots from analytics.heat_site_availability"
            )
            entries = dict(
                reader.rows(
                    "select account, count(*) from heat.schedule_entries "
                    "where _dlt_valid_to is null and asset is not null group by account"
                )
            )
            current = reader.rows(
                "select count(*), count(distinct site_id) from analytics.heat_schedules_current"
            )
        assert raw == sorted(
            [("default", s) for s in a.site_ids] + [("om2", s) for s in [*shared, only_b]]
        )
        every = {*a.site_ids, only_b}
        assert sorted(s for s, *_ in view) == sorted(every)  # each site once
        accounts = {s: (acc, listed) for s, acc, listed in view}
        assert accounts[a.site_ids[0]] == ("default", "default")
        assert accounts[only_b] == ("om2", "om2")
        assert all(accounts[s][1] == "default, om2" for s in shared)
        assert sorted(s for s, _ in availability) == sorted(every)
        assert all(n == 2 for _, n in availability)
        # each account has its own versions of the shared sites' schedules
        assert entries["default"] > 0 and entries["om2"] > 0
        total, sites = current[0]
        assert sites == len(every)


SA_A, SA_B = "sa_ACCOUNTATOKEN_1", "sa_ACCOUNTBTOKEN_2"


def test_solarassistant_shared_sites_are_counted_once(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from pipelines.destinations.duckdb import DuckDBWarehouse
    from sandbox.solarassistant import SolarAssistantSandbox
    from sources.solarassistant import reset_caches

    reset_caches()
    with SolarAssistantSandbox(seed=4, api_token=SA_A, sites=3, cert_dir=str(tmp_path)) as a:
        # the two accounts' proxies serve one certificate: one CA bundle, verification on
        b = SolarAssistantSandbox(seed=4, api_token=SA_B, sites=3, cert=a.cert).start()
        b.remove_site(b.sites[0].id)  # only the fleet account sees it
        monkeypatch.setenv("REQUESTS_CA_BUNDLE", a.ca_bundle)
        env = "SOURCES__SOLARASSISTANT__"
        monkeypatch.setenv(env + "BACKOFF_FACTOR", "0.01")
        monkeypatch.setenv(env + "PROXY_TIMEOUT", "2")
        monkeypatch.setenv(env + "ACCOUNTS__FLEET__API_TOKEN", SA_A)
        monkeypatch.setenv(env + "ACCOUNTS__FLEET__BASE_URL", a.base_url)
        monkeypatch.setenv(env + "ACCOUNTS__SERVICE__API_TOKEN", SA_B)
        monkeypatch.setenv(env + "ACCOUNTS__SERVICE__BASE_URL", b.base_url)
        spec = registry.get("solarassistant")
        accounts = select(spec, None)
        assert [x.name for x in accounts] == ["fleet", "service"]  # no default account here
        warehouse = DuckDBWarehouse(tmp_path / "w.duckdb")
        results = run_accounts(spec, accounts, warehouse)
        assert all(r.ok for r in results), [r.error for r in results]
        with warehouse.reader() as reader:
            raw = reader.rows("select account, id from solarassistant.sites order by 1, 2")
            polls = reader.rows(
                "select account, count(*) from solarassistant.metric_polls group by 1 order by 1"
            )
            status = reader.rows(
                "select site_id, account, accounts from analytics.solarassistant_site_status "
                "order by 1"
            )
            latest = reader.rows(
                "select site_id, topic, count(*) from analytics.solarassistant_latest_metrics "
                "group by 1, 2 having count(*) > 1"
            )
        # poll: every account polls its own sites, its rows carry the account
        from pipelines.poll import poll_source

        polled = run_accounts(
            spec,
            accounts,
            warehouse,
            run=lambda account: poll_source(
                spec, warehouse, account=account, every=0.5, duration=1.2, batch=0.6
            ),
            workers=2,
        )
        assert all(r.ok for r in polled), [r.error for r in polled]
        with warehouse.reader() as reader:
            after = dict(
                reader.rows("select account, count(*) from solarassistant.metric_polls group by 1")
            )
            unstamped = reader.rows(
                "select count(*) from solarassistant.metrics where account is null"
            )
        assert after["fleet"] > 3 and after["service"] > 2
        assert unstamped == [(0,)]
        b.stop()
    ids = sorted(s.id for s in a.sites)
    assert raw == [("fleet", i) for i in ids] + [("service", i) for i in ids[1:]]
    assert polls == [("fleet", 3), ("service", 2)]  # each account polls what it sees
    assert [s for s, *_ in status] == ids  # once each
    assert all(acc == "fleet" for _, acc, _ in status)
    assert [listed for *_, listed in status] == ["fleet", "fleet, service", "fleet, service"]
    assert latest == []  # no topic of a shared site twice


# --------------------------------------------------------------------------- Dagster
def test_dagster_partitions_by_account_and_materializes_one_office(
    offices, tmp_path, monkeypatch
) -> None:
    dg = pytest.importorskip("dagster", reason="the dagster extra is not installed")
    # the assets set DLT_PROJECT_DIR when it is unset: set it here, so it is unset again after
    monkeypatch.setenv("DLT_PROJECT_DIR", str(Path(__file__).resolve().parents[2]))
    from pipelines.dagster_defs import solarsync_definitions, source_assets
    from pipelines.destinations.duckdb import DuckDBWarehouse

    asset = source_assets("solarknock", retry_policy=dg.RetryPolicy(max_retries=0))
    assert asset.partitions_def.get_partition_keys() == ["default", "north", "south"]
    result = dg.materialize(
        [asset],
        partition_key="north",
        instance=dg.DagsterInstance.ephemeral(),
        raise_on_error=False,
    )
    assert result.success
    warehouse = DuckDBWarehouse(tmp_path / "warehouse.duckdb")
    with warehouse.reader() as reader:
        assert reader.rows("select distinct account, org_id from solarknock.knocks") == [
            ("north", "org-north")
        ]
    defs = solarsync_definitions(["solarknock"])
    schedule = defs.resolve_schedule_def("solarsync_solarknock_schedule")
    context = dg.build_schedule_context(
        scheduled_execution_time=datetime(2026, 1, 1, tzinfo=UTC),
        repository_def=defs.get_repository_def(),
    )
    requests = list(schedule.evaluate_tick(context).run_requests)
    assert sorted(r.partition_key for r in requests) == ["default", "north", "south"]


def test_each_key_has_its_own_rate_limit(offices, tmp_path) -> None:
    """North's key is limited to 8 requests a second; south's is not: north is paced to its
    limit, south is not slowed by it (one limiter per key, not per source)."""
    from pipelines.destinations.duckdb import DuckDBWarehouse

    north, south = offices[NORTH], offices[SOUTH]
    north.set_rate_limit(8, burst=8, window=1.0)
    accounts = [Account("solarknock", "north"), Account("solarknock", "south")]
    results = run_accounts(SPEC, accounts, DuckDBWarehouse(tmp_path / "w.duckdb"))
    assert all(r.ok for r in results), [r.error for r in results]
    assert north.max_requests_in_window(1.0, status=200) <= 8
    assert south.max_requests_in_window(1.0, status=200) > 8
    assert south.count_requests(status=429) == 0


def test_a_single_account_heat_warehouse_keeps_its_schedule_versions_after_the_upgrade(
    monkeypatch: pytest.MonkeyPatch, any_warehouse
) -> None:
    """HEAT before accounts (keys without ``account``, schedule versions without it): the
    upgraded run adds no version for an unchanged entry and retires a changed one."""
    import pipelines.sync as sync_module
    import sources.heat as heat_module
    from sandbox.heat import HeatSandbox
    from sources.common import accounts as acc

    spec = registry.get("heat")
    with HeatSandbox(seed=6, api_key=HEAT_A, sites=3) as sb:
        monkeypatch.setenv("SOURCES__HEAT__BASE_URL", sb.base_url)
        monkeypatch.setenv("SOURCES__HEAT__API_KEY", HEAT_A)
        monkeypatch.setenv("SOURCES__HEAT__BACKOFF_FACTOR", "0.01")
        with monkeypatch.context() as legacy:
            legacy.setattr(
                acc, "keyed", lambda key, *cols: [key] if isinstance(key, str) else list(key)
            )
            legacy.setattr(acc, "stamped", lambda resource, values: resource)
            legacy.setattr(acc, "columns", lambda *names: {})
            legacy.setattr(sync_module, "upgrade", lambda *args: 0)
            legacy.setattr(
                heat_module,
                "SCHEDULE_WRITE_DISPOSITION",
                {
                    **heat_module.SCHEDULE_WRITE_DISPOSITION,
                    "destination_scope": "{table}.site_id IN (SELECT site_id FROM {staging_table})",
                },
            )
            assert run_source(dataclasses.replace(spec, views=None), any_warehouse).ok
        with any_warehouse.reader() as reader:
            assert "account" not in reader.columns("heat", "schedule_entries")
            (before,) = reader.rows("select count(*) from heat.schedule_entries")[0]
        site = sb.site_ids[0]
        sb.set_schedule(
            site,
            "bess",
            "activePowerkW",
            [{"startAt": "2026-06-01T08:00:00Z", "endAt": "2026-06-01T09:00:00Z", "value": 7.0}],
        )
        result = run_source(spec, any_warehouse)
        assert result.ok, result.error
        with any_warehouse.reader() as reader:
            rows = reader.rows(
                "select account, count(*), count(*) filter (where _dlt_valid_to is null) "
                "from heat.schedule_entries group by account"
            )
            dupes = reader.rows(
                "select site_id, asset, type, start_at from heat.schedule_entries "
                "where _dlt_valid_to is null group by all having count(*) > 1"
            )
            sites = reader.rows("select count(*), count(distinct site_id) from heat.sites")
    ((account, total, active),) = rows
    assert account == "default"
    assert dupes == []
    assert sites == [(3, 3)]
    assert total > before  # the changed schedule's new version, nothing else re-inserted
    assert total - before <= 2


def test_locks_are_per_account() -> None:
    """A run of one account never blocks another account of the source; the same account
    twice is refused, naming it."""
    from pipelines.sync import pipeline_lock
    from sources.common import LockedError

    with pipeline_lock("solarknock", "north"), pipeline_lock("solarknock", "south"):
        with pipeline_lock("solarknock"):  # the default account: its own lock too
            pass
        with pytest.raises(LockedError, match=r"account north"):
            with pipeline_lock("solarknock", "north"):
                pass
