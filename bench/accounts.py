"""Scenario group 10: many accounts of one source (docs/accounts.md). N SolarKnock orgs behind
one server (``sandbox.solarknock.orgs``: a key per org, each org its own data and rate limit),
every request slowed to a fixed latency so the API is the bottleneck. Measures ``solarsync run
solarknock`` with one account against the same run with N accounts (same data per org), with
``account_concurrency`` N (all at once) and 1 (one after the other), and prints
``N accounts / one account`` wall-time ratios: the goal is at most about N / concurrency.
"""

from __future__ import annotations

from typing import Any

from bench.proc import measure

#: rows per org (small: the latency per request, not the rows, is what is measured)
COUNTS = {
    "users": 8,
    "knocks": 600,
    "leads": 120,
    "appointments": 40,
    "daily-stats": 60,
    "app-opens": 40,
    "counties": 8,
}
LATENCY_S = 0.4
ACCOUNTS = 4
PAGE_SIZE = 25


def _key(i: int) -> str:
    return f"sk_BENCHORG{i}"


def _run(bench: Any, server: Any, label: str, accounts: int, concurrency: int) -> dict[str, Any]:
    run_dir = bench.run_dir(label)
    env = bench.env(run_dir, server.base_url)
    env["SOURCES__SOLARKNOCK__API_KEY"] = _key(0)
    env["SOURCES__SOLARKNOCK__PAGE_SIZE"] = str(PAGE_SIZE)
    env["SOLARSYNC__ACCOUNT_CONCURRENCY"] = str(concurrency)
    for i in range(1, accounts):
        env[f"SOURCES__SOLARKNOCK__ACCOUNTS__OFFICE{i}__API_KEY"] = _key(i)
    m = measure(
        [*bench.solarsync, "--no-progress", "run", "solarknock"],
        env=env,
        cwd=run_dir,
        timeout_s=900,
        log_name=label,
    )
    requests = sum(org.count_requests() for org in server)
    for org in server:
        org.clear_requests()
    return {"ok": m.ok, "error": m.failure(), "wall_s": round(m.wall_s, 2), "requests": requests}


def scenario_accounts(bench: Any, results: dict[str, Any]) -> None:
    from sandbox.solarknock import SolarKnockOrgs

    log = _log()
    orgs = {_key(i): {"seed": 100 + i, "counts": COUNTS} for i in range(ACCOUNTS)}
    out: dict[str, Any] = {"accounts": ACCOUNTS, "latency_s": LATENCY_S, "runs": {}}
    results["accounts"] = out
    with SolarKnockOrgs(orgs) as server:
        for org in server:
            org.slow(LATENCY_S)
        plan = [
            ("1 account", 1, 1),
            (f"{ACCOUNTS} accounts, concurrency {ACCOUNTS}", ACCOUNTS, ACCOUNTS),
            (f"{ACCOUNTS} accounts, concurrency 1", ACCOUNTS, 1),
        ]
        for i, (label, accounts, concurrency) in enumerate(plan):
            log(f"10. {label}: {LATENCY_S}s a request")
            run = _run(bench, server, f"accounts-{i}", accounts, concurrency)
            run.update(accounts=accounts, concurrency=concurrency)
            out["runs"][label] = run
            log(f"   {run['wall_s']}s, {run['requests']} requests {run['error'] or ''}")
    one = out["runs"]["1 account"]["wall_s"]
    for run in out["runs"].values():
        run["ratio_to_one_account"] = round(run["wall_s"] / one, 2) if one else None
        run["goal_ratio"] = round(run["accounts"] / run["concurrency"], 2)


def render_accounts(results: dict[str, Any]) -> list[str]:
    s = results.get("accounts")
    if not s:
        return []
    lines = [
        f"10. Accounts: `solarsync run solarknock`, {s['accounts']} SolarKnock orgs on one server, "
        f"{s['latency_s']}s a request (the API is the bottleneck)"
    ]
    head = f"   {'run':<34}{'wall s':>8}{'requests':>10}{'N/one':>8}{'goal <=':>9}"
    lines += [head, "   " + "-" * (len(head) - 3)]
    for label, run in s["runs"].items():
        ratio = run.get("ratio_to_one_account")
        lines.append(
            f"   {label:<34}{run['wall_s']:>8}{run['requests']:>10}"
            f"{'-' if ratio is None else f'{ratio:.2f}x':>8}{run['goal_ratio']:>8.2f}x"
        )
        if run.get("error"):
            lines.append(f"   ! {run['error'][:150]}")
    lines.append("")
    return lines


def _log() -> Any:
    from bench.cli import log

    return log


__all__ = ["render_accounts", "scenario_accounts"]
