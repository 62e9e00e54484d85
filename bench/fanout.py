"""Scenario group 4: per-site fan-out. HEAT reads one detail per site and SolarAssistant one
authorize + one metrics request per site; with N sites and a latency L per request, a serial
client takes about N x L. solarsync runs those calls with bounded concurrency: this measures
``solarsync run <source>`` with concurrency 1 (the serial baseline, same process tree, same
sandbox) against the default, as a ratio, and the most calls the sandbox saw in flight.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from bench.proc import measure

HEAT = {"sites": 120, "latency_s": 0.05, "concurrency": (1, 4, 16)}
SOLARASSISTANT = {"sites": 200, "latency_s": 0.1, "concurrency": (1, 16)}
HEAT_KEY = "agk_bench.ags_BENCHSECRET"
SA_TOKEN = "sa_BENCHTOKEN"


def _run(bench: Any, source: str, label: str, env: dict[str, str]) -> dict[str, Any]:
    run_dir = bench.run_dir(label)
    base = {k: v for k, v in bench.env(run_dir, "http://unused").items()}
    base.update(env)
    m = measure(
        [*bench.solarsync, "run", source],
        env=base,
        cwd=run_dir,
        timeout_s=600,
        log_name=label,
    )
    return {"ok": m.ok, "error": m.failure(), "wall_s": round(m.wall_s, 2)}


def scenario_fanout(bench: Any, results: dict[str, Any]) -> None:
    from sandbox.heat import HeatSandbox
    from sandbox.solarassistant import SolarAssistantSandbox

    out: dict[str, Any] = {}
    results["fanout"] = out
    log = _log()

    with HeatSandbox(seed=4, api_key=HEAT_KEY, sites=HEAT["sites"]) as sb:
        sb.slow(HEAT["latency_s"])
        runs = {}
        for concurrency in HEAT["concurrency"]:
            log(
                f"4. heat: {HEAT['sites']} sites, {HEAT['latency_s']}s a request, concurrency {concurrency}"
            )
            sb.max_in_flight = 0
            run = _run(
                bench,
                "heat",
                f"fanout-heat-{concurrency}",
                {
                    "SOURCES__HEAT__BASE_URL": sb.base_url,
                    "SOURCES__HEAT__API_KEY": HEAT_KEY,
                    "SOURCES__HEAT__CONCURRENCY": str(concurrency),
                },
            )
            run["max_in_flight"] = sb.max_in_flight
            runs[str(concurrency)] = run
            log(f"   {run['wall_s']}s, {run['max_in_flight']} in flight {run['error'] or ''}")
        out["heat"] = _summary(HEAT, runs)

    with (
        tempfile.TemporaryDirectory() as certs,
        SolarAssistantSandbox(
            seed=4,
            api_token=SA_TOKEN,
            sites=SOLARASSISTANT["sites"],
            org_users=10,
            proxy_latency=SOLARASSISTANT["latency_s"],
            cert_dir=str(Path(certs)),
        ) as sb,
    ):
        runs = {}
        for concurrency in SOLARASSISTANT["concurrency"]:
            log(
                f"4. solarassistant: {SOLARASSISTANT['sites']} sites, proxy "
                f"{SOLARASSISTANT['latency_s']}s a request, concurrency {concurrency}"
            )
            sb.clear_requests()
            run = _run(
                bench,
                "solarassistant",
                f"fanout-sa-{concurrency}",
                {
                    "SOURCES__SOLARASSISTANT__BASE_URL": sb.base_url,
                    "SOURCES__SOLARASSISTANT__API_TOKEN": SA_TOKEN,
                    "SOURCES__SOLARASSISTANT__CONCURRENCY": str(concurrency),
                    "REQUESTS_CA_BUNDLE": sb.ca_bundle,
                },
            )
            run["max_in_flight"] = sb.max_in_flight
            runs[str(concurrency)] = run
            log(f"   {run['wall_s']}s, {run['max_in_flight']} in flight {run['error'] or ''}")
        out["solarassistant"] = _summary(SOLARASSISTANT, runs)


def _summary(cfg: dict[str, Any], runs: dict[str, dict[str, Any]]) -> dict[str, Any]:
    serial = runs.get("1", {}).get("wall_s")
    for run in runs.values():
        run["speedup_vs_concurrency_1"] = (
            round(serial / run["wall_s"], 2) if serial and run.get("wall_s") else None
        )
    return {
        "sites": cfg["sites"],
        "latency_s": cfg["latency_s"],
        "latency_floor_serial_s": round(cfg["sites"] * cfg["latency_s"], 1),
        "runs": runs,
    }


def render_fanout(results: dict[str, Any]) -> list[str]:
    s = results.get("fanout")
    if not s:
        return []
    lines = ["4. Per-site fan-out: `solarsync run <source>`, concurrency 1 (serial) vs more"]
    head = f"   {'source':<16}{'sites':>6}{'latency':>9}{'concurrency':>13}{'wall s':>8}{'in flight':>11}{'speedup':>9}"
    lines += [head, "   " + "-" * (len(head) - 3)]
    for source in ("heat", "solarassistant"):
        part = s.get(source)
        if not part:
            continue
        for concurrency, run in part["runs"].items():
            speed = run.get("speedup_vs_concurrency_1")
            lines.append(
                f"   {source:<16}{part['sites']:>6}{part['latency_s']:>8}s{concurrency:>13}"
                f"{run['wall_s']:>8}{run.get('max_in_flight', '-'):>11}"
                f"{'-' if speed is None else f'{speed:.2f}x':>9}"
                + (f"  ! {run['error'][:80]}" if run.get("error") else "")
            )
    lines.append("")
    return lines


def _log():
    from bench.cli import log

    return log
