"""``solarsync demo``: the four sandbox APIs on loopback -> ``warehouse/demo.duckdb``.

SolarKnock: two offices (two orgs, two keys, one server: the default account and the named
account ``south``, synced at once, docs/accounts.md): full sync, a round of changes on the "server" (updates, new rows, soft deletes),
an incremental sync that picks up exactly those, and an example analyst query. Then one short
act per other source: HEAT snapshots around a schedule change, a SolarAssistant metrics poll
with an offline site, and Tesla gateway runs that reuse one login. It ends by writing the
HTML report (``solarsync report``) next to the warehouse and printing its path. The demo keeps
its own warehouse file, dlt state and certificates, so it never touches a real sync's
checkpoint.
"""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import duckdb

from pipelines import registry
from pipelines.accounts import select
from pipelines.commands.common import print_summary
from pipelines.demo.acts import heat_act, solarassistant_act, tesla_act
from pipelines.demo.show import out, show
from pipelines.destinations import as_warehouse
from pipelines.destinations.duckdb.files import earlier_working_path, wal_path, working_path
from pipelines.history import load_into
from pipelines.report import write_report
from pipelines.sync import run_accounts
from sandbox.solarknock import SolarKnockOrgs

DEMO_KEY = "sk_DEMOKEY2026"
DEMO_COUNTS = {"users": 30, "knocks": 20000, "leads": 4000, "appointments": 600, "counties": 40}
#: the second office: the named account ``south`` ([sources.solarknock.accounts.south])
SOUTH_KEY = "sk_DEMOSOUTH2026"
SOUTH_COUNTS = {"users": 12, "knocks": 6000, "leads": 1200, "appointments": 200, "counties": 15}

OFFICES_QUERY = """
SELECT o.org_name AS office, o.account,
       count(*)                AS knocks,
       count(DISTINCT lead_id) AS leads,
       count(DISTINCT user_id) AS reps
FROM analytics.knocks k
JOIN analytics.solarknock_orgs o USING (org_id)
GROUP BY 1, 2
ORDER BY 1
"""

QUERY = """
SELECT rep_name,
       count(*)                                             AS knocks,
       count(*) FILTER (WHERE k.id IN (SELECT knock_id FROM analytics.knock_actions
                                       WHERE action = 'proposal_given')) AS proposals,
       count(DISTINCT lead_id)                              AS leads
FROM analytics.knocks k
LEFT JOIN (SELECT org_id, id, name AS rep_name FROM solarknock.users) u
       ON u.org_id = k.org_id AND u.id = k.user_id
GROUP BY rep_name
ORDER BY knocks DESC
LIMIT 5
"""


def run_demo(workdir: Path, warehouse: str | None = None) -> int:
    workdir.mkdir(parents=True, exist_ok=True)
    db = Path(warehouse) if warehouse else workdir / "demo.duckdb"
    state_dir = workdir / ".demo-dlt"
    for leftover in (db, working_path(db), earlier_working_path(db)):  # published, loaded
        leftover.unlink(missing_ok=True)
        wal_path(leftover).unlink(missing_ok=True)
    shutil.rmtree(state_dir, ignore_errors=True)
    # the demo's own dlt state: never the real pipelines' checkpoints
    os.environ["DLT_DATA_DIR"] = str(state_dir.resolve())

    started = time.monotonic()
    orgs = {
        DEMO_KEY: {"seed": 2026, "counts": DEMO_COUNTS},
        SOUTH_KEY: {"seed": 2027, "counts": SOUTH_COUNTS},
    }
    with SolarKnockOrgs(orgs) as server:
        sb = server[DEMO_KEY]
        for key, office in ((DEMO_KEY, "North Office"), (SOUTH_KEY, "South Office")):
            server[key].rewrite("org", lambda row, office=office: {**row, "name": office})
        os.environ["SOURCES__SOLARKNOCK__API_KEY"] = DEMO_KEY
        os.environ["SOURCES__SOLARKNOCK__BASE_URL"] = server.base_url
        os.environ["SOURCES__SOLARKNOCK__ACCOUNTS__SOUTH__API_KEY"] = SOUTH_KEY
        spec = registry.get("solarknock")
        accounts = select(spec, None)
        out(f"== sandbox SolarKnock API listening on {server.base_url}: two orgs, a key each")
        out("== 1. full sync of both offices at once (accounts default and south)")
        first = run_accounts(spec, accounts, as_warehouse(db))
        print_summary(first, db)
        if not all(r.ok for r in first):
            return 1

        out("\n== 2. changes on the server: 300 knocks edited, 25 knocks deleted, 40 new leads")
        sb.update("knocks", n=300)
        sb.soft_delete("knocks", n=25)
        sb.insert("leads", n=40)
        server[SOUTH_KEY].insert("knocks", n=50)

        out("== 3. incremental sync: only what changed is read")
        second = run_accounts(spec, accounts, as_warehouse(db))
        print_summary(second, db)
        if not all(r.ok for r in second):
            return 1
        requests = sum(r.http.get("requests", 0) for r in second)
        full = sum(r.http.get("requests", 0) for r in first)
        out(f"   {requests} requests instead of {full} for the full sync")

    con = duckdb.connect(str(db), read_only=True)
    try:
        live, deleted = con.execute(
            "select count(*) filter (where deleted_at is null), count(deleted_at) from solarknock.knocks"
        ).fetchone()
        out(f"\n== 4. warehouse: solarknock.knocks has {live} live and {deleted} soft-deleted rows")
        out("   example analyst query (top reps by knocks, from the analytics views):")
        for line in QUERY.strip().splitlines():
            out("     " + line)
        show(con, QUERY)
        out("   the two offices side by side (analytics.solarknock_orgs names each org):")
        for line in OFFICES_QUERY.strip().splitlines():
            out("     " + line)
        show(con, OFFICES_QUERY)
    finally:
        con.close()

    for act in (heat_act, solarassistant_act, tesla_act):
        if act(db, state_dir) != 0:
            return 1
    out(f"\ndemo finished in {time.monotonic() - started:.0f}s. Open {db} in DBeaver/Metabase,")
    out(
        f"or: python -c \"import duckdb; duckdb.sql('from analytics.leads limit 5', connection=duckdb.connect('{db}', read_only=True)).show()\""
    )
    load_into(db)  # the demo's runs into analytics.sync_runs
    report = write_report(db)
    out("\n== report: run history, funnel, schedules, power, energy (opens offline):")
    out(f"   {report.resolve()}")
    return 0
