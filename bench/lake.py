"""Scenario group 6: the Delta lake (``--destination filesystem``).

- a SolarKnock backfill into the lake and into DuckDB in the same run, against the same
  sandbox: wall time, rows/s, peak RSS, and their ratios;
- the file count of a simulated day of 5-second Tesla polls loaded in batches (as
  ``solarsync poll tesla --every 5s --batch 5m`` does), before and after
  ``solarsync lake optimize`` (compaction, then vacuum). Quick mode loads the day in 15-minute
  batches (96 loads); ``--full`` in 5-minute batches (288 loads), the poll command's default.
"""

from __future__ import annotations

import json
import sys
from typing import Any

from bench.proc import measure

QUICK = {"knocks": 50_000, "leads": 10_000, "batch_minutes": 15}
FULL = {"knocks": 200_000, "leads": 50_000, "batch_minutes": 5}


def scenario_lake(bench: Any, results: dict[str, Any]) -> None:
    from bench.cli import count_rows, last_json_line, log, ratio, sandbox

    cfg = FULL if bench.full else QUICK
    out: dict[str, Any] = {"counts": {"knocks": cfg["knocks"], "leads": cfg["leads"]}}
    results["lake"] = out
    with sandbox({"knocks": cfg["knocks"], "leads": cfg["leads"]}) as sb:
        log(f"5. backfill {cfg['knocks']} knocks + {cfg['leads']} leads into DuckDB")
        duck = bench.solarsync_run(sb, "lake-duckdb")
        log(f"   {duck['wall_s']}s, {duck['rows_per_s']} rows/s, {duck['peak_rss_mb']} MB")
        lake_dir = bench.workdir / "lake-filesystem" / "lake"
        log("5. the same backfill into the Delta lake (local bucket)")
        lake = bench.solarsync_run(
            sb,
            "lake-filesystem",
            SOLARSYNC__DESTINATION="filesystem",
            DESTINATION__FILESYSTEM__BUCKET_URL=str(lake_dir),
        )
        lake["warehouse_knocks"] = count_rows(lake_dir / "_views.duckdb", "solarknock.knocks")
        log(f"   {lake['wall_s']}s, {lake['rows_per_s']} rows/s, {lake['peak_rss_mb']} MB")
        out["backfill"] = {
            "duckdb": duck,
            "filesystem": lake,
            "lake_wall_vs_duckdb": ratio(lake["wall_s"], duck["wall_s"]),
            "lake_rss_vs_duckdb": ratio(lake["peak_rss_mb"], duck["peak_rss_mb"]),
        }

    log(f"5. a day of 5-second Tesla polls in {cfg['batch_minutes']}-minute batches, then optimize")
    run_dir = bench.run_dir("lake-tesla-day")
    m = measure(
        [sys.executable, "-m", "bench.workers.lake_tesla_day", str(run_dir / "lake"),
         "--batch-minutes", str(cfg["batch_minutes"])],
        env=bench.env(run_dir, "http://unused"),
        cwd=run_dir,
        timeout_s=1800,
        log_name="lake-tesla-day",
    )  # fmt: skip
    day = last_json_line(m.stdout) if m.ok else {}
    day.update({"ok": m.ok, "error": m.failure(), "wall_s": round(m.wall_s, 1)})
    out["tesla_day"] = day
    if m.ok:
        log(
            f"   {day['loads']} loads, files {_total(day['files_before'])} -> "
            f"{_total(day['files_after'])} (current version), on disk "
            f"{_total(day['files_before'], 'on_disk')} -> {_total(day['files_after'], 'on_disk')}"
        )
    else:
        log(f"   failed: {m.failure()}")


def _total(files: dict[str, dict[str, int]], key: str = "current") -> int:
    return sum(v[key] for v in files.values())


def render_lake(results: dict[str, Any]) -> list[str]:
    s = results.get("lake")
    if not s:
        return []
    lines = [
        "Lake (group 6): the Delta lake (--destination filesystem, local bucket) next to DuckDB"
    ]
    backfill = s.get("backfill")
    if backfill:
        head = (
            f"   {'backfill ' + str(s['counts']):<58}{'wall s':>8}{'rows/s':>10}{'peak RSS MB':>13}"
        )
        lines += [head, "   " + "-" * (len(head) - 3)]
        for kind in ("duckdb", "filesystem"):
            run = backfill[kind]
            lines.append(
                f"   {'solarsync run solarknock -> ' + kind:<58}{run['wall_s']:>8}"
                f"{run['rows_per_s'] or '-':>10}{run['peak_rss_mb']:>13}"
                + (f"  ! {run['error'][:80]}" if run.get("error") else "")
            )
        lines.append(
            f"   lake / DuckDB: wall {backfill['lake_wall_vs_duckdb']}x, peak RSS "
            f"{backfill['lake_rss_vs_duckdb']}x"
        )
    day = s.get("tesla_day")
    if day and day.get("ok"):
        lines.append(
            f"   a day of 5-s Tesla polls ({day['polls']} polls, {day['loads']} loads of "
            f"{day['batch_minutes']:g} min, {len(day['files_before'])} tables): data files "
            f"{_total(day['files_before'])} -> {_total(day['files_after'])} after "
            f"`lake optimize` (on disk {_total(day['files_before'], 'on_disk')} -> "
            f"{_total(day['files_after'], 'on_disk')} after vacuum); loads {day['load_s']}s, "
            f"optimize {day['optimize_s']}s"
        )
        lines.append(
            "   per table (current files before -> after): "
            + ", ".join(
                f"{t} {v['current']}->{day['files_after'][t]['current']}"
                for t, v in sorted(day["files_before"].items())
            )
        )
    elif day:
        lines.append(f"   tesla day: FAILED {day.get('error')}")
    lines.append("")
    return lines


def dumps(results: dict[str, Any]) -> str:
    return json.dumps(results.get("lake"), indent=2, default=str)
