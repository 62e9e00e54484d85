"""Scenario group 9: the performance targets of issue 22, one line each, measured side by side in
this run and printed against their target.

| line | measured as |
|---|---|
| no-op | ``run solarknock`` with nothing changed vs ``python -c "import dlt, duckdb"``: alternated, best of each |
| heat | a HEAT snapshot run (3 sites: health, list, 3 details = 5 requests) vs the same bare import: alternated, best of each |
| postgres | the SolarKnock backfill into Postgres (pgserver) vs into DuckDB: wall ratio; RSS vs DuckDB's + 50 MB |
| s3 | the same backfill into the Delta lake on a loopback S3 server (moto) vs on local disk |
| rss | peak RSS of the SolarKnock backfill of 230k rows (180k knocks + 50k leads) |
| growth | peak RSS at 1M knocks / at 100k knocks |

Every program runs in its own process (:func:`bench.proc.measure`: wall time and the peak RSS of
its process tree). The machine is whatever runs the bench: ratios, measured in the same run, are
what compare; the absolute figures are printed next to them.
"""

from __future__ import annotations

import statistics
import sys
import uuid
from typing import Any

from bench.proc import measure
from sandbox.common.s3 import moto_server

NOOP_COUNTS = {"knocks": 20_000, "leads": 5_000}
RSS_COUNTS = {"knocks": 180_000, "leads": 50_000}
GROWTH = (100_000, 1_000_000)
LAKE_COUNTS = {"knocks": 50_000, "leads": 10_000}
REPEATS = 5
#: the simulated poll on S3: hours of 5 s polls in 5-minute batches, compaction cadence
POLL_HOURS = {"quick": 3, "full": 24}
OPTIMIZE_EVERY = 12
HEAT_KEY = "agk_bench.ags_BENCHSECRET"
S3_KEY, S3_SECRET = "bench-access-key", "bench-secret-key"

#: line -> (what, target, how the measured value compares: "ratio" (<=) or "mb" (<=))
TARGETS: dict[str, tuple[str, float, str]] = {
    "noop": ("nightly no-op run solarknock / bare import dlt, duckdb", 1.5, "x"),
    "heat": ("HEAT snapshot run (5 requests) / bare import dlt, duckdb", 2.0, "x"),
    "postgres": ("Postgres backfill / DuckDB backfill (wall)", 1.5, "x"),
    "postgres_rss": ("Postgres backfill RSS - DuckDB's", 50.0, "MB"),
    "s3": ("S3 lake backfill / local lake backfill (wall)", 1.3, "x"),
    "rss": ("peak RSS of the SolarKnock backfill (230k rows)", 300.0, "MB"),
    "growth": ("peak RSS at 1M knocks / at 100k", 1.2, "x"),
}


def _import(bench: Any, base_url: str) -> float:
    run_dir = bench.run_dir("import")
    m = measure(
        [bench.python, "-c", "import dlt, duckdb"],
        env=bench.env(run_dir, base_url),
        cwd=run_dir,
        timeout_s=120,
    )
    return m.wall_s


def _line(out: dict[str, Any], key: str, measured: float | None, **detail: Any) -> None:
    what, target, unit = TARGETS[key]
    out[key] = {
        "what": what,
        "measured": None if measured is None else round(measured, 2),
        "target": target,
        "unit": unit,
        "met": measured is not None and measured <= target,
        **detail,
    }


def noop_line(bench: Any, out: dict[str, Any]) -> None:
    from bench.cli import log, sandbox

    with sandbox(NOOP_COUNTS) as sb:
        log(f"9. no-op: backfill {NOOP_COUNTS}, then {REPEATS} x (bare import, no-op run)")
        first = bench.solarsync_run(sb, "t-noop")
        imports, runs = [], []
        for _ in range(REPEATS):
            imports.append(_import(bench, sb.base_url))
            runs.append(bench.solarsync_run(sb, "t-noop", fresh=False))
        best = min(r["wall_s"] for r in runs)
        _line(
            out,
            "noop",
            best / min(imports),
            run_s=best,
            import_s=round(min(imports), 3),
            requests=runs[-1]["requests"],
            backfill_ok=first["ok"],
            errors=[r["error"] for r in runs if r["error"]],
        )
        log(f"   no-op {best}s vs import {min(imports):.2f}s")


def heat_line(bench: Any, out: dict[str, Any]) -> None:
    from bench.cli import log
    from sandbox.heat import HeatSandbox

    with HeatSandbox(seed=4, api_key=HEAT_KEY, sites=3) as sb:
        env = {"SOURCES__HEAT__BASE_URL": sb.base_url, "SOURCES__HEAT__API_KEY": HEAT_KEY}
        run_dir = bench.run_dir("t-heat")

        def run() -> Any:
            return measure(
                [*bench.solarsync, "run", "heat"],
                env={**bench.env(run_dir, "http://unused"), **env},
                cwd=run_dir,
                timeout_s=300,
                log_name="t-heat",
            )

        log(f"9. heat: a first run, then {REPEATS} x (bare import, snapshot run)")
        first = run()
        imports, runs = [], []
        for _ in range(REPEATS):
            imports.append(_import(bench, "http://unused"))
            before = len(sb.requests)
            m = run()
            runs.append((m.wall_s, len(sb.requests) - before, m.failure()))
        best = min(w for w, _, _ in runs)
        _line(
            out,
            "heat",
            best / min(imports),
            run_s=round(best, 2),
            import_s=round(min(imports), 3),
            requests=runs[-1][1],
            first_ok=first.ok,
            errors=[e for _, _, e in runs if e],
        )
        log(f"   heat {best:.2f}s vs import {min(imports):.2f}s, {runs[-1][1]} requests")


def postgres_line(bench: Any, results: dict[str, Any], out: dict[str, Any]) -> None:
    from bench.destinations import scenario_destinations

    if "destinations" not in results:
        scenario_destinations(bench, results)
    runs = results["destinations"]["runs"]
    duck, pg = runs.get("duckdb", {}), runs.get("postgres", {})
    if duck.get("wall_s") and pg.get("wall_s"):
        _line(out, "postgres", pg["wall_s"] / duck["wall_s"], postgres_s=pg["wall_s"],
              duckdb_s=duck["wall_s"])  # fmt: skip
        _line(out, "postgres_rss", pg["peak_rss_mb"] - duck["peak_rss_mb"],
              postgres_mb=pg["peak_rss_mb"], duckdb_mb=duck["peak_rss_mb"])  # fmt: skip


def s3_line(bench: Any, out: dict[str, Any]) -> None:
    import boto3

    from bench.cli import log, sandbox

    with sandbox(LAKE_COUNTS) as sb, moto_server() as endpoint:
        bucket = f"bench-{uuid.uuid4().hex[:8]}"
        boto3.client(
            "s3",
            endpoint_url=endpoint,
            aws_access_key_id=S3_KEY,
            aws_secret_access_key=S3_SECRET,
            region_name="us-east-1",
        ).create_bucket(Bucket=bucket)
        creds = "DESTINATION__FILESYSTEM__CREDENTIALS__"
        where = {
            "local": {"DESTINATION__FILESYSTEM__BUCKET_URL": str(bench.workdir / "t-lake")},
            "s3": {
                "DESTINATION__FILESYSTEM__BUCKET_URL": f"s3://{bucket}/lake",
                creds + "AWS_ACCESS_KEY_ID": S3_KEY,
                creds + "AWS_SECRET_ACCESS_KEY": S3_SECRET,
                creds + "ENDPOINT_URL": endpoint,
                creds + "REGION_NAME": "us-east-1",
            },
        }
        walls: dict[str, float] = {}
        errors = []
        for kind, env in where.items():
            log(f"9. backfill {LAKE_COUNTS} into the lake on {kind}")
            run = bench.solarsync_run(sb, f"t-lake-{kind}", SOLARSYNC__DESTINATION="filesystem",
                                      **env)  # fmt: skip
            walls[kind] = run["wall_s"]
            if run["error"]:
                errors.append(f"{kind}: {run['error']}")
            log(f"   {run['wall_s']}s, {run['peak_rss_mb']} MB {run['error'] or ''}")
        _line(out, "s3", walls["s3"] / walls["local"] if walls.get("local") else None,
              s3_s=walls.get("s3"), local_s=walls.get("local"), errors=errors)  # fmt: skip
        poll_day(bench, out, where["s3"])


def poll_day(bench: Any, out: dict[str, Any], s3_env: dict[str, str]) -> None:
    """``poll tesla --every 5s --batch 5m`` on S3: each batch's cost and its growth over
    :data:`POLL_HOURS` of batches, without compaction and with it every OPTIMIZE_EVERY
    batches."""
    from bench.cli import last_json_line, log

    hours = POLL_HOURS["full" if bench.full else "quick"]
    polls: dict[str, Any] = {"hours": hours, "batch_minutes": 5}
    bucket = s3_env["DESTINATION__FILESYSTEM__BUCKET_URL"].rsplit("/", 1)[0]
    for every in (0, OPTIMIZE_EVERY):
        label = f"poll-s3-optimize-{every}"
        log(f"9. {hours} h of 5 s Tesla polls in 5-minute batches on S3, optimize every {every}")
        run_dir = bench.run_dir(f"t-{label}")
        m = measure(
            [sys.executable, "-m", "bench.workers.lake_tesla_day", f"{bucket}/{label}",
             "--batch-minutes", "5", "--hours", str(hours), "--optimize-every", str(every)],
            env={**bench.env(run_dir, "http://unused"), **s3_env},
            cwd=run_dir,
            timeout_s=1800,
            log_name=label,
        )  # fmt: skip
        day = last_json_line(m.stdout) if m.ok else {}
        every_batch = day.get("batch_s") or []
        # the batches that ran a compaction are reported apart: growth is of the others
        compacting = [b for i, b in enumerate(every_batch) if every and (i + 1) % every == 0]
        batches = [b for i, b in enumerate(every_batch) if not (every and (i + 1) % every == 0)]
        tenth = max(1, len(batches) // 10)
        first, last = batches[:tenth], batches[-tenth:]
        polls[str(every)] = {
            "ok": m.ok,
            "error": m.failure(),
            "batches": len(batches),
            "median_batch_s": round(statistics.median(batches), 3) if batches else None,
            "first_tenth_s": round(statistics.mean(first), 3) if first else None,
            "last_tenth_s": round(statistics.mean(last), 3) if last else None,
            "growth": round(statistics.mean(last) / statistics.mean(first), 2) if first else None,
            "files_current": sum(v["current"] for v in (day.get("files_before") or {}).values()),
            "compacting_batch_s": round(statistics.mean(compacting), 3) if compacting else None,
            "batch_s": every_batch,
        }
        log(f"   {polls[str(every)]}")
    out["s3_poll"] = polls


def rss_lines(bench: Any, out: dict[str, Any]) -> None:
    from bench.cli import log, sandbox

    with sandbox(RSS_COUNTS) as sb:
        log(f"9. peak RSS of the backfill of {RSS_COUNTS}")
        run = bench.solarsync_run(sb, "t-rss")
        _line(out, "rss", run["peak_rss_mb"], wall_s=run["wall_s"], error=run["error"],
              rows=run["rows"])  # fmt: skip
        log(f"   {run['peak_rss_mb']} MB in {run['wall_s']}s")
    peaks = {}
    for knocks in GROWTH:
        with sandbox({"knocks": knocks}) as sb:
            log(f"9. peak RSS of the backfill of {knocks:,} knocks")
            run = bench.solarsync_run(sb, f"t-growth-{knocks}", timeout_s=2400)
            peaks[knocks] = run["peak_rss_mb"]
            log(f"   {run['peak_rss_mb']} MB in {run['wall_s']}s {run['error'] or ''}")
    small, big = (peaks.get(k) for k in GROWTH)
    _line(out, "growth", big / small if small and big else None, mb=peaks)


def scenario_targets(bench: Any, results: dict[str, Any]) -> None:
    out: dict[str, Any] = {}
    results["targets"] = out
    for name, step in (
        ("noop", lambda: noop_line(bench, out)),
        ("heat", lambda: heat_line(bench, out)),
        ("postgres", lambda: postgres_line(bench, results, out)),
        ("s3", lambda: s3_line(bench, out)),
        ("rss", lambda: rss_lines(bench, out)),
    ):
        try:
            step()
        except Exception as exc:  # one broken line must not hide the others
            out.setdefault("errors", {})[name] = f"{type(exc).__name__}: {exc}"


def render_targets(results: dict[str, Any]) -> list[str]:
    s = results.get("targets")
    if not s:
        return []
    lines = ["9. Targets of issue 22 (measured in this run; ratios side by side)"]
    head = f"   {'what':<58}{'measured':>10}{'target':>9}  met"
    lines += [head, "   " + "-" * (len(head) - 3)]
    for key, (what, target, unit) in TARGETS.items():
        line = s.get(key)
        if not line:
            lines.append(f"   {what:<58}{'-':>10}{target:>8}{unit}  not measured")
            continue
        value = "-" if line["measured"] is None else f"{line['measured']}{unit}"
        lines.append(f"   {what:<58}{value:>10}{target:>8}{unit}  {'yes' if line['met'] else 'NO'}")
    for every, poll in (s.get("s3_poll") or {}).items():
        if not isinstance(poll, dict):
            continue
        lines.append(
            f"   S3 poll, {s['s3_poll']['hours']} h of 5-min batches, optimize every {every}: "
            f"median batch {poll['median_batch_s']}s, first tenth {poll['first_tenth_s']}s, "
            f"last tenth {poll['last_tenth_s']}s (x{poll['growth']}), "
            + (
                f"a compacting batch {poll['compacting_batch_s']}s, "
                if poll.get("compacting_batch_s")
                else ""
            )
            + f"{poll['files_current']} files"
            + (f"  ! {poll['error'][:60]}" if poll["error"] else "")
        )
    for name, error in (s.get("errors") or {}).items():
        lines.append(f"   ! {name}: {error[:100]}")
    lines.append("")
    return lines
