"""The demo's acts for HEAT, SolarAssistant and the Tesla gateway (see ``pipelines.demo.run``).

Each act starts its sandbox on loopback, points the source at it through the documented
environment variables, syncs into the demo warehouse and shows one analyst query.
"""

from __future__ import annotations

import os
from pathlib import Path

import duckdb

import sources.tesla
from pipelines import registry
from pipelines.commands.common import print_summary
from pipelines.demo.show import out, show
from pipelines.sync import run_source
from sandbox.heat import HeatSandbox
from sandbox.solarassistant import SolarAssistantSandbox
from sandbox.tesla import TeslaGatewaySandbox

HEAT_KEY = "agk_demo.ags_DEMOSECRET2026"
SA_TOKEN = "sa_DEMOTOKEN2026"
TESLA_PASSWORD = "Demo-Gateway-2026"


def _sync(source: str, db: Path) -> bool:
    result = run_source(registry.get(source), db)
    print_summary([result], db)
    return result.ok


def heat_act(db: Path, workdir: Path) -> int:
    with HeatSandbox(seed=2026, api_key=HEAT_KEY, sites=4) as sb:
        os.environ["SOURCES__HEAT__BASE_URL"] = sb.base_url
        os.environ["SOURCES__HEAT__API_KEY"] = HEAT_KEY
        out(f"\n== 5. HEAT: sandbox on {sb.base_url}; snapshot 1")
        if not _sync("heat", db):
            return 1
        site_id, site = next((k, v) for k, v in sb.truth().items() if len(v["schedules"]) >= 2)
        changed, cleared = site["schedules"][0], site["schedules"][1]
        entries = [dict(e, value=(e.get("value") or 0) + 5) for e in changed["entries"]]
        sb.set_schedule(site_id, changed["asset"], changed["type"], entries)
        sb.set_schedule(site_id, cleared["asset"], cleared["type"], [])
        out(
            f"== HEAT server: {changed['asset']}/{changed['type']} of {site['siteName']} changed, "
            f"{cleared['asset']}/{cleared['type']} cleared; snapshot 2"
        )
        if not _sync("heat", db):
            return 1
    con = duckdb.connect(str(db), read_only=True)
    try:
        out(f"   schedule history of {site['siteName']} (analytics.heat_schedule_history):")
        show(
            con,
            "SELECT asset, type, start_at, value, known_from, known_until, ended_by "
            "FROM analytics.heat_schedule_history WHERE site_id = '" + site_id + "' "
            "ORDER BY asset, type, start_at, known_from",
        )
    finally:
        con.close()
    return 0


def solarassistant_act(db: Path, workdir: Path) -> int:
    with SolarAssistantSandbox(
        seed=2026,
        api_token=SA_TOKEN,
        sites=4,
        org_users=8,
        offline_sleep=0.2,
        cert_dir=str(workdir / "certs"),
    ) as sb:
        sb.set_offline(sb.sites[-1].id, "502")
        env = {
            "SOURCES__SOLARASSISTANT__API_TOKEN": SA_TOKEN,
            "SOURCES__SOLARASSISTANT__BASE_URL": sb.base_url,
            "SOURCES__SOLARASSISTANT__PROXY_TIMEOUT": "2",
            "SOURCES__SOLARASSISTANT__PROXY_BACKOFF_FACTOR": "0.05",
            # the proxy's self-signed certificate is trusted, verification stays on
            "REQUESTS_CA_BUNDLE": sb.ca_bundle,
        }
        os.environ.update(env)
        out(f"\n== 6. SolarAssistant: cloud API on {sb.base_url}, HTTPS proxy; one metrics poll")
        try:
            if not _sync("solarassistant", db):
                return 1
        finally:
            os.environ.pop("REQUESTS_CA_BUNDLE", None)
    con = duckdb.connect(str(db), read_only=True)
    try:
        out("   last poll per site (analytics.solarassistant_site_status):")
        show(
            con,
            "SELECT site_name, last_status, last_reason FROM analytics.solarassistant_site_status "
            "ORDER BY site_name",
        )
        out("   PV, load and battery power now (analytics.solarassistant_latest_metrics):")
        show(
            con,
            "SELECT site_name, topic, value_number, unit FROM "
            "analytics.solarassistant_latest_metrics WHERE topic IN "
            "('total/pv_power', 'total/load_power', 'total/battery_power') ORDER BY site_name, topic",
        )
    finally:
        con.close()
    return 0


def tesla_act(db: Path, workdir: Path) -> int:
    gateway = TeslaGatewaySandbox(workdir / "tesla", password=TESLA_PASSWORD).start()
    try:
        os.environ["SOURCES__TESLA__HOST"] = gateway.host
        os.environ["SOURCES__TESLA__PASSWORD"] = TESLA_PASSWORD
        os.environ["SOURCES__TESLA__NAME"] = "home"
        out(f"\n== 7. Tesla gateway: HTTPS sandbox on {gateway.host}; 4 runs, as cron would")
        for run in range(4):
            sources.tesla.reset_clients()  # like a new process: only the on-disk session
            result = run_source(registry.get("tesla"), db)
            if not result.ok:
                print_summary([result], db)
                return 1
            if run == 0:
                print_summary([result], db)
        out(
            f"   logins: {gateway.logins} for 4 runs (the session is reused across runs; "
            "the certificate was pinned on first use)"
        )
    finally:
        gateway.stop()
    con = duckdb.connect(str(db), read_only=True)
    try:
        out(
            "   energy per meter and day from the cumulative counters (analytics.tesla_energy_daily):"
        )
        show(
            con,
            "SELECT gateway, meter, day, round(imported_wh, 2) AS imported_wh, "
            "round(exported_wh, 2) AS exported_wh FROM analytics.tesla_energy_daily "
            "ORDER BY meter",
        )
    finally:
        con.close()
    return 0
