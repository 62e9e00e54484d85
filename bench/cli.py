"""``python -m bench [--full] [--quick] [--only N ...] [--keep] [--out PATH]``: run the scenarios
of issue 4 side by side, print one table, write ``bench/results/latest.json``.

The sandbox runs in a thread of this (harness) process; every measured program runs in its own
subprocess with its own temp dir (DLT_DATA_DIR, DuckDB file, ``.dlt/config.toml`` copied from the
repo, no secrets.toml), a timeout, and a kill of its whole process group when it overruns.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import pickle
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench import profile as prof
from bench.proc import Measured, measure
from bench.report import render

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
API_KEY = "sk_BENCHKEY"
PIPELINE = "solarsync_solarknock"

S1_COUNTS = {"knocks": 200_000, "leads": 50_000}
S2_SIZES = (100_000, 1_000_000)  # knocks; the second only with --full
S5_FRACTION = 0.01
# rate limit: the 600/min, burst 1200, page size 100. Quick mode scales the window
# down (100 per 10 s, burst 200: the same 10 requests/s) so >= 2 whole windows fit in ~40 s.
S3_QUICK = {"per_minute": 100, "burst": 200, "window": 10.0, "knocks": 40_000, "leads": 2_500}
S3_FULL = {"per_minute": 600, "burst": 1200, "window": 60.0, "knocks": 180_000, "leads": 2_500}
RSS_GUARD_MB = 16_000  # kill a run (baseline A's INSERT path) before it takes the machine down


def log(msg: str) -> None:
    sys.stderr.write(f"[bench {time.strftime('%H:%M:%S')}] {msg}\n")
    sys.stderr.flush()


# --------------------------------------------------------------------------- sandbox
@contextlib.contextmanager
def sandbox(counts: dict[str, int]) -> Iterator[Any]:
    from sandbox.solarknock import SolarKnockSandbox

    started = time.perf_counter()
    sb = SolarKnockSandbox(seed=0, api_key=API_KEY, counts=counts).start()
    log(f"sandbox {counts} up in {time.perf_counter() - started:.1f}s at {sb.base_url}")
    try:
        yield sb
    finally:
        sb.stop()


def served(sb: Any) -> dict[str, Any]:
    """What the sandbox saw since its last ``clear_requests()``."""
    reqs = sb.requests
    return {
        "requests": len(reqs),
        "by_endpoint": dict(Counter(str(r.endpoint) for r in reqs)),
        "status_429": sum(1 for r in reqs if r.status == 429),
        "rows": sum(r.row_count or 0 for r in reqs if r.status == 200),
    }


# --------------------------------------------------------------------------- runs
class Bench:
    def __init__(self, full: bool, workdir: Path) -> None:
        self.full = full
        self.workdir = workdir
        self.python = sys.executable
        exe = Path(sys.executable).parent / "solarsync"
        self.solarsync = [str(exe)] if exe.exists() else [self.python, "-m", "pipelines"]

    def run_dir(self, label: str, fresh: bool = True) -> Path:
        path = self.workdir / label
        if fresh and path.exists():
            shutil.rmtree(path)
        (path / ".dlt").mkdir(parents=True, exist_ok=True)
        config = ROOT / ".dlt" / "config.toml"
        if config.exists():  # the committed config, as a user has it; never secrets.toml
            shutil.copy(config, path / ".dlt" / "config.toml")
        return path

    def env(self, run_dir: Path, base_url: str, **extra: str) -> dict[str, str]:
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(
                ("SOURCES__", "DESTINATION__", "NORMALIZE__", "LOAD__", "DATA_WRITER__")
            )
        }
        env.update(
            SOURCES__SOLARKNOCK__API_KEY=API_KEY,
            SOURCES__SOLARKNOCK__BASE_URL=base_url,
            DESTINATION__DUCKDB__CREDENTIALS=str(run_dir / "warehouse.duckdb"),
            DLT_DATA_DIR=str(run_dir / "dlt"),
            BENCH_API_KEY=API_KEY,
            RUNTIME__DLTHUB_TELEMETRY="false",
            PYTHONPATH=str(ROOT) + os.pathsep + env.get("PYTHONPATH", ""),
            PYTHONUNBUFFERED="1",
            # every tool here lands rows only: solarsync's attachment download (a blob copy of
            # every lead's files, one request each) is switched off so all do the same work
            SOURCES__SOLARKNOCK__ATTACHMENTS__ENABLED="false",
        )
        if os.environ.get("SOLARSYNC_BENCH_STORAGE_VERSION"):  # e.g. latest: DuckDB's own
            env["DESTINATION__DUCKDB__STORAGE_VERSION"] = os.environ[
                "SOLARSYNC_BENCH_STORAGE_VERSION"
            ]
        env.update(extra)
        return env

    def solarsync_run(
        self,
        sb: Any,
        label: str,
        *,
        fresh: bool = True,
        profile_to: Path | None = None,
        timeout_s: float = 900,
        **env_extra: str,
    ) -> dict[str, Any]:
        run_dir = self.run_dir(label, fresh=fresh)
        cmd = [*self.solarsync, "run", "solarknock"]
        if profile_to is not None:
            cmd = prof.wrap(cmd, profile_to)
        sb.clear_requests()
        m = measure(
            cmd,
            env=self.env(run_dir, sb.base_url, **env_extra),
            cwd=run_dir,
            timeout_s=timeout_s,
            rss_guard_mb=RSS_GUARD_MB,
            skip_root=profile_to is not None,
            log_name=f"solarsync-{int(time.time() * 1000)}",
        )
        out = run_summary(m, served(sb))
        out["steps_s"] = trace_steps(run_dir / "dlt" / "pipelines" / PIPELINE / "trace.pickle")
        out["warehouse_knocks"] = count_rows(run_dir / "warehouse.duckdb", "solarknock.knocks")
        return out


def run_summary(m: Measured, seen: dict[str, Any]) -> dict[str, Any]:
    rows = seen["rows"]
    return {
        "ok": m.ok,
        "error": m.failure(),
        "wall_s": round(m.wall_s, 2),
        "peak_rss_mb": round(m.peak_rss_mb, 1),
        "rows": rows,
        "rows_per_s": round(rows / m.wall_s, 1) if m.wall_s > 0 else None,
        "requests": seen["requests"],
        "status_429": seen["status_429"],
        "by_endpoint": seen["by_endpoint"],
    }


def trace_steps(path: Path) -> dict[str, float]:
    """Wall seconds of dlt's extract / normalize / load from the pipeline's saved trace."""
    try:
        with open(path, "rb") as f:
            trace = pickle.load(f)
        return {
            s.step: round((s.finished_at - s.started_at).total_seconds(), 2)
            for s in trace.steps
            if s.finished_at and s.started_at
        }
    except Exception as exc:  # the trace is a convenience: never fail the bench on it
        return {"error": f"{type(exc).__name__}: {exc}"}


def count_rows(db: Path, table: str) -> int | None:
    if not db.exists():
        return None
    try:
        import duckdb

        with duckdb.connect(str(db), read_only=True) as con:
            return con.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
    except Exception:
        return None


def last_json_line(text: str) -> dict[str, Any]:
    for line in reversed(text.strip().splitlines()):
        with contextlib.suppress(ValueError):
            value = json.loads(line)
            if isinstance(value, dict):
                return value
    return {}


def ratio(a: float | None, b: float | None) -> float | None:
    return round(a / b, 3) if a is not None and b else None


# --------------------------------------------------------------------------- scenarios
def scenario_backfill(bench: Bench, results: dict[str, Any]) -> None:
    """1 (backfill throughput), then 4 (no-op) and 5 (1% changed) on the same sandbox."""
    s1: dict[str, Any] = {"counts": S1_COUNTS, "tools": {}}
    results["backfill"] = s1
    with sandbox(S1_COUNTS) as sb:
        s1["source_rows"] = sum(sb.stats()["rows"].values())
        tools = s1["tools"]

        log("1. solarsync backfill")
        ss = tools["solarsync"] = bench.solarsync_run(sb, "solarsync")
        log(
            f"   {ss['wall_s']}s, {ss['rows_per_s']} rows/s, {ss['peak_rss_mb']} MB {ss['error'] or ''}"
        )

        log("4. nightly no-op: solarsync run again, nothing changed")
        noop = [bench.solarsync_run(sb, "solarsync", fresh=False) for _ in range(2)]
        imports = []
        for _ in range(3):
            m = measure(
                [bench.python, "-c", "import dlt, duckdb"],
                env=bench.env(bench.run_dir("import"), sb.base_url),
                cwd=bench.workdir / "import",
                timeout_s=120,
            )
            imports.append(m.wall_s)
        best = min(noop, key=lambda r: r["wall_s"])
        list_endpoints = 7
        results["noop"] = {
            "runs": noop,
            "wall_s": best["wall_s"],
            "requests": noop[0]["requests"],
            "requests_target": 1 + list_endpoints,
            "by_endpoint": noop[0]["by_endpoint"],
            "import_dlt_duckdb_s": round(min(imports), 3),
            "ratio_to_import": ratio(best["wall_s"], min(imports)),
            "peak_rss_mb": best["peak_rss_mb"],
            "ok": all(r["ok"] for r in noop),
            "error": next((r["error"] for r in noop if r["error"]), None),
        }
        log(
            f"   {results['noop']['requests']} requests, {best['wall_s']}s vs import {min(imports):.2f}s"
        )

        log("1. baseline A: dlt rest_api source, defaults (insert_values)")
        tools["baseline_a"] = run_worker(
            bench, sb, "baseline_a", "bench.workers.baseline_rest_api", timeout_s=1200
        )
        tools["baseline_a"]["warehouse_knocks"] = count_rows(
            bench.workdir / "baseline_a" / "warehouse.duckdb", "solarknock.knocks"
        )
        log(f"   {tools['baseline_a']['wall_s']}s, {tools['baseline_a']['peak_rss_mb']} MB")

        budget = 120 if bench.full else 30
        log(f"1. baseline B: vendor recipe, row upserts ({budget}s budget)")
        b = run_worker(
            bench,
            sb,
            "baseline_b",
            "bench.workers.baseline_vendor",
            timeout_s=budget + 300,
            BENCH_BUDGET_S=str(budget),
        )
        info = b.pop("worker", {})
        b["budget_s"] = budget
        b["complete"] = bool(info.get("complete"))
        if b["rows_per_s"]:
            b["est_wall_for_all_rows_s"] = round(s1["source_rows"] / b["rows_per_s"], 0)
        b["warehouse_knocks"] = count_rows(
            bench.workdir / "baseline_b" / "warehouse.duckdb", "knocks"
        )
        tools["baseline_b"] = b
        log(f"   {b['rows']} rows in {b['wall_s']}s ({b['rows_per_s']} rows/s)")

        log("1. floor: bare requests loop + DuckDB read_json")
        tools["floor"] = floor(bench, sb)
        log(f"   {tools['floor']['wall_s']}s")

        for tool in tools.values():
            tool["throughput_vs_solarsync"] = ratio(tool.get("rows_per_s"), ss.get("rows_per_s"))
            tool["rss_vs_solarsync"] = ratio(tool.get("peak_rss_mb"), ss.get("peak_rss_mb"))

        if prof.py_spy():
            log("profile: solarsync backfill again, fresh, under py-spy")
            raw = RESULTS / "profile-latest.txt"
            raw.parent.mkdir(parents=True, exist_ok=True)
            raw.unlink(missing_ok=True)
            run = bench.solarsync_run(sb, "profile", profile_to=raw)
            results["profile"] = (
                {
                    "run": "solarsync backfill of scenario 1 (a separate run under py-spy)",
                    "raw_stacks": str(raw.relative_to(ROOT)),
                    "wall_s": run["wall_s"],
                    "unprofiled_wall_s": ss["wall_s"],
                    "steps_s": run["steps_s"],
                    **prof.summarise(raw),
                }
                if raw.exists()
                else {"error": f"py-spy wrote no profile ({run['error']})"}
            )
        else:
            results["profile"] = {"error": "py-spy is not installed (pip install -e '.[dev]')"}

        log("5. incremental after 1% of knocks and leads updated")
        changed = {
            "knocks": int(S1_COUNTS["knocks"] * S5_FRACTION),
            "leads": int(S1_COUNTS["leads"] * S5_FRACTION),
        }
        for endpoint, n in changed.items():
            sb.update(endpoint, n)
        inc = bench.solarsync_run(sb, "solarsync", fresh=False)
        inc["updated_rows"] = changed
        inc["ratio_to_backfill"] = ratio(inc["wall_s"], ss["wall_s"])
        results["incremental"] = inc
        log(
            f"   {inc['requests']} requests, {inc['wall_s']}s ({inc['ratio_to_backfill']} of backfill)"
        )


def run_worker(
    bench: Bench, sb: Any, label: str, module: str, timeout_s: float, **env_extra: str
) -> dict[str, Any]:
    run_dir = bench.run_dir(label)
    sb.clear_requests()
    m = measure(
        [bench.python, "-m", module, sb.base_url, str(run_dir / "warehouse.duckdb")],
        env=bench.env(run_dir, sb.base_url, **env_extra),
        cwd=run_dir,
        timeout_s=timeout_s,
        rss_guard_mb=RSS_GUARD_MB,
        log_name=label,
    )
    out = run_summary(m, served(sb))
    out["worker"] = last_json_line(m.stdout)
    return out


def floor(bench: Bench, sb: Any) -> dict[str, Any]:
    run_dir = bench.run_dir("floor")
    env = bench.env(run_dir, sb.base_url)
    mod = "bench.workers.floor"
    pages = run_dir / "pages"
    sb.clear_requests()
    fetch = measure([bench.python, "-m", mod, "fetch", sb.base_url], env=env, cwd=run_dir,
                    timeout_s=600, log_name="fetch")  # fmt: skip
    seen = served(sb)
    save = measure([bench.python, "-m", mod, "save", sb.base_url, str(pages)], env=env,
                   cwd=run_dir, timeout_s=600, log_name="save")  # fmt: skip
    load = measure([bench.python, "-m", mod, "load", str(pages), str(run_dir / "warehouse.duckdb")],
                   env=env, cwd=run_dir, timeout_s=600, log_name="load")  # fmt: skip
    wall = fetch.wall_s + load.wall_s
    errors = [e for e in (fetch.failure(), save.failure(), load.failure()) if e]
    return {
        "ok": not errors,
        "error": "; ".join(errors) or None,
        "wall_s": round(wall, 2),
        "fetch_s": round(fetch.wall_s, 2),
        "read_json_s": round(load.wall_s, 2),
        "peak_rss_mb": round(max(fetch.peak_rss_mb, load.peak_rss_mb), 1),
        "rows": seen["rows"],
        "rows_per_s": round(seen["rows"] / wall, 1) if wall else None,
        "requests": seen["requests"],
        "status_429": seen["status_429"],
        "bytes": last_json_line(fetch.stdout).get("bytes"),
        "warehouse_knocks": count_rows(run_dir / "warehouse.duckdb", "knocks"),
    }


def scenario_memory(bench: Bench, results: dict[str, Any]) -> None:
    """2: solarsync's peak RSS at 100k and, with --full, 1M knocks (other tables small)."""
    s2: dict[str, Any] = {"runs": {}}
    results["memory"] = s2
    for knocks in S2_SIZES if bench.full else S2_SIZES[:1]:
        with sandbox({"knocks": knocks}) as sb:
            log(f"2. solarsync backfill, {knocks:,} knocks")
            run = bench.solarsync_run(sb, f"memory-{knocks}", timeout_s=2400)
            s2["runs"][str(knocks)] = run
            log(f"   {run['wall_s']}s, {run['peak_rss_mb']} MB {run['error'] or ''}")
    small, big = (s2["runs"].get(str(k)) for k in S2_SIZES)
    if small and big:
        s2["ratio_1m_to_100k"] = ratio(big["peak_rss_mb"], small["peak_rss_mb"])


def scenario_rate_limit(bench: Bench, results: dict[str, Any]) -> None:
    """3: achieved request rate under the sandbox's limit, and the share of 429s."""
    cfg = S3_FULL if bench.full else S3_QUICK
    counts = {"knocks": cfg["knocks"], "leads": cfg["leads"]}
    with sandbox(counts) as sb:
        sb.set_rate_limit(cfg["per_minute"], burst=cfg["burst"], window=cfg["window"])
        log(
            f"3. rate-limited sync: {cfg['per_minute']} per {cfg['window']:.0f}s, burst "
            f"{cfg['burst']}, page size 100"
        )
        run = bench.solarsync_run(
            sb, "ratelimit", timeout_s=1200, SOURCES__SOLARKNOCK__PAGE_SIZE="100"
        )
        window = cfg["window"]
        admitted = [r for r in sb.requests if r.status == 200]
        buckets = Counter(int(r.server_time.timestamp() // window) for r in admitted)
        everything = [int(r.server_time.timestamp() // window) for r in sb.requests]
        first, last = (min(everything), max(everything)) if everything else (0, 0)
        full_windows = [buckets.get(w, 0) for w in range(first + 1, last)]
        limit = cfg["per_minute"]
        results["rate_limit"] = {
            **run,
            "limit_per_window": limit,
            "burst": cfg["burst"],
            "window_s": window,
            "scaled": window != 60.0,
            "whole_windows": len(full_windows),
            "requests_per_whole_window": full_windows,
            "achieved_fraction": round(statistics.mean(full_windows) / limit, 3)
            if full_windows
            else None,
            "share_429": round(run["status_429"] / run["requests"], 4) if run["requests"] else None,
            "max_admitted_in_any_window": sb.max_requests_in_window(window, status=200),
        }
        r = results["rate_limit"]
        log(
            f"   {r['achieved_fraction']} of the limit over {r['whole_windows']} windows, {r['status_429']} 429s"
        )


def scenario_fanout(bench: Bench, results: dict[str, Any]) -> None:
    """4: per-site calls of HEAT and SolarAssistant, serial vs bounded concurrency."""
    from bench.fanout import scenario_fanout as run

    run(bench, results)


def scenario_destinations(bench: Bench, results: dict[str, Any]) -> None:
    """5: the SolarKnock backfill into Postgres vs into DuckDB, same run, same sandbox."""
    from bench.destinations import scenario_destinations as run

    run(bench, results)


def scenario_lake(bench: Bench, results: dict[str, Any]) -> None:
    """6: SolarKnock backfill into the Delta lake vs DuckDB; a day of Tesla polls' files."""
    from bench.lake import scenario_lake as run

    run(bench, results)


def scenario_publish(bench: Bench, results: dict[str, Any]) -> None:
    """7: publishing the DuckDB warehouse for BI tools, per GB and as a share of a nightly run."""
    from bench.publish import scenario_publish as run

    run(bench, results)


def scenario_report(bench: Bench, results: dict[str, Any]) -> None:
    """8: the report page with a week of 5 s polls: load time in Chromium, HTML size."""
    from bench.report_page import scenario_report as run

    run(bench, results)


def scenario_targets(bench: Bench, results: dict[str, Any]) -> None:
    """9: the targets of issue 22 (no-op, HEAT, Postgres, S3 lake, RSS), one line each."""
    from bench.targets import scenario_targets as run

    run(bench, results)


def scenario_accounts(bench: Bench, results: dict[str, Any]) -> None:
    """10: N accounts of one source vs one account, when the API is the bottleneck."""
    from bench.accounts import scenario_accounts as run

    run(bench, results)


SCENARIOS = {
    "1": scenario_backfill,
    "2": scenario_memory,
    "3": scenario_rate_limit,
    "4": scenario_fanout,
    "5": scenario_destinations,
    "6": scenario_lake,
    "7": scenario_publish,
    "8": scenario_report,
    "9": scenario_targets,
    "10": scenario_accounts,
}


def meta(full: bool) -> dict[str, Any]:
    def version(mod: str) -> str:
        try:
            from importlib.metadata import version as v

            return v(mod)
        except Exception:
            return "?"

    def git(*args: str) -> str:
        try:
            return subprocess.run(
                ["git", "--no-optional-locks", *args], cwd=ROOT, capture_output=True,
                text=True, timeout=10,
            ).stdout.strip()  # fmt: skip
        except Exception:
            return "?"

    return {
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "mode": "full" if full else "quick",
        "git_commit": git("rev-parse", "--short", "HEAD"),
        "git_dirty": bool(git("status", "--porcelain", "--untracked-files=no")),
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "versions": {m: version(m) for m in ("dlt", "duckdb", "pyarrow", "orjson", "requests")},
    }


def _interrupt(*_: object) -> None:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n")[0])
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--full", action="store_true", help="add 1M knocks; unscaled rate limit")
    mode.add_argument("--quick", action="store_true", help="the default (about 6 minutes)")
    parser.add_argument(
        "--only", action="append", choices=sorted(SCENARIOS, key=int), help="run only these groups "
        "(1 = backfill, profile, no-op, incremental; 2 = memory; 3 = rate limit; "
        "4 = per-site fan-out of HEAT and SolarAssistant; 5 = backfill into Postgres vs "
        "DuckDB; 6 = the Delta lake; 7 = publishing the DuckDB file for BI; 8 = the report "
        "page with a week of 5 s polls; 9 = the targets of issue 22, one line each; "
        "10 = N accounts of a source vs one account)",
    )  # fmt: skip
    parser.add_argument("--keep", action="store_true", help="keep the temp dirs (logs, DBs)")
    parser.add_argument("--out", type=Path, default=RESULTS / "latest.json")
    args = parser.parse_args(argv)

    # a SIGTERM (e.g. a CI timeout) unwinds like Ctrl-C: sandboxes stop, the running child dies
    signal.signal(signal.SIGTERM, _interrupt)
    os.environ.setdefault("RUNTIME__DLTHUB_TELEMETRY", "false")
    workdir = Path(tempfile.mkdtemp(prefix="solarsync-bench-"))
    bench = Bench(args.full, workdir)
    results: dict[str, Any] = {"meta": meta(args.full)}
    started = time.perf_counter()
    log(f"mode {results['meta']['mode']}, work dir {workdir}")
    try:
        for key in args.only or sorted(SCENARIOS, key=int):
            try:
                SCENARIOS[key](bench, results)
            except KeyboardInterrupt:
                raise
            except Exception as exc:  # one broken scenario must not hide the others
                log(f"scenario group {key} failed: {type(exc).__name__}: {exc}")
                results.setdefault("errors", {})[key] = f"{type(exc).__name__}: {exc}"
    except KeyboardInterrupt:
        log("interrupted: writing what was measured so far")
        results.setdefault("errors", {})["interrupted"] = True
    finally:
        results["meta"]["bench_wall_s"] = round(time.perf_counter() - started, 1)
        if args.keep:
            log(f"kept {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    table = render(results)
    results["table"] = table
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2, default=str) + "\n")
    print(table)
    print(f"\nwritten to {args.out}")
    return 1 if results.get("errors") else 0
