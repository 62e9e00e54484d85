"""Scenario group 7: what publishing the DuckDB warehouse for BI costs (issue 12).

A SolarKnock backfill (``solarsync run``, a subprocess like every measured program) fills a
warehouse; 1% of knocks and leads change; then ``bench.workers.publish`` runs the nightly
``run solarknock`` and times each way of publishing its working file, all in that one process:
publish seconds per GB of working file and as a share of the nightly run are ratios taken in
the same process, against the same file.
"""

from __future__ import annotations

from typing import Any

from bench.cli import last_json_line
from bench.proc import measure

QUICK = {"knocks": 400_000, "leads": 50_000}  # a working file of about 130 MB
FULL = {"knocks": 2_000_000, "leads": 200_000}


def scenario_publish(bench: Any, results: dict[str, Any]) -> None:
    from bench.cli import log, sandbox

    counts = FULL if bench.full else QUICK
    out: dict[str, Any] = {"counts": counts}
    results["publish"] = out
    with sandbox(counts) as sb:
        log(f"7. publish: backfill {counts} into a fresh warehouse")
        backfill = bench.solarsync_run(sb, "publish", timeout_s=2400)
        out["backfill_wall_s"] = backfill["wall_s"]
        out["backfill_knocks_loaded"] = backfill["warehouse_knocks"]
        if not backfill["ok"]:
            out["error"] = backfill["error"]
            return
        for endpoint, n in counts.items():
            sb.update(endpoint, max(1, n // 100))
        run_dir = bench.run_dir("publish", fresh=False)
        log("7. publish: nightly run, then every way of publishing, in one process")
        m = measure(
            [bench.python, "-m", "bench.workers.publish", str(run_dir / "warehouse.duckdb")],
            env=bench.env(run_dir, sb.base_url),
            cwd=run_dir,
            timeout_s=1800,
            log_name="publish",
        )
        worker = last_json_line(m.stdout)
        out.update(worker)
        out.setdefault("error", m.failure() if not m.ok else None)
        if worker.get("methods"):
            log(
                "   "
                + ", ".join(
                    f"{k} {v['s_per_gb']} s/GB" if "s_per_gb" in v else f"{k}: {v['error']}"
                    for k, v in worker["methods"].items()
                )
            )


def _n(value: Any) -> str:
    return "-" if value is None else f"{value:,}"


def render_publish(results: dict[str, Any]) -> list[str]:
    s = results.get("publish")
    if not s:
        return []
    counts = s["counts"]
    lines = [
        f"7. Publish for BI: working file after a backfill of {counts['knocks']:,} knocks + "
        f"{counts['leads']:,} leads ({s.get('backfill_wall_s', 0):.0f}s, "
        f"{_n(s.get('backfill_knocks_loaded'))} knocks loaded) and a nightly run (1% changed), "
        "all timed in one process"
    ]
    if s.get("error") and not s.get("methods"):
        return [*lines, f"   ! {str(s['error'])[:150]}", ""]
    run = s["run_publish"]
    lines.append(
        f"   working file {s['bytes'] / 1e6:,.0f} MB (storage {s.get('storage_version', '?')}, "
        f"{s['free_share'] * 100:.0f}% free blocks); "
        f"nightly run {s['nightly_s']:.1f}s; its publish: copy ({run['method']}) "
        f"{run['seconds']:.2f}s = {run['s_per_gb']:.2f} s/GB, with checkpoint and rename "
        f"{run.get('total_seconds', 0):.2f}s = {run['share_of_nightly'] * 100:.1f}% of the run"
    )
    head = f"   {'method (best of 3, fsync incl.)':<42}{'s':>8}{'s per GB':>10}{'share of nightly':>18}"
    lines += [head, "   " + "-" * (len(head) - 3)]
    for name, m in s["methods"].items():
        if "error" in m:
            lines.append(f"   {name:<42}{'-':>8}{'-':>10}{'-':>18}  ({m['error'][:60]})")
            continue
        extra = f"  -> {m['bytes'] / 1e6:,.0f} MB" if "bytes" in m else ""
        lines.append(
            f"   {name:<42}{m['seconds']:>8.3f}{m['s_per_gb']:>10.2f}"
            f"{m['share_of_nightly'] * 100:>17.1f}%{extra}"
        )
    lines.append("")
    return lines
