"""The one table ``make bench`` prints (also stored as ``table`` in latest.json)."""

from __future__ import annotations

from typing import Any

TOOLS = (
    ("solarsync", "solarsync (solarsync run)"),
    ("baseline_a", "A: dlt rest_api, defaults"),
    ("baseline_b", "B: vendor recipe (upserts)"),
    ("floor", "floor: requests + read_json"),
)


def _num(value: Any, fmt: str = "{:,.0f}") -> str:
    if value is None:
        return "-"
    try:
        return fmt.format(value)
    except (TypeError, ValueError):
        return str(value)


def _x(value: Any) -> str:
    return "-" if value is None else f"{value:.2f}x"


def _verdict(ok: bool | None) -> str:
    return "" if ok is None else ("met" if ok else "MISSED")


def render(results: dict[str, Any]) -> str:
    meta = results.get("meta", {})
    lines = [
        f"solarsync bench ({meta.get('mode')}, {meta.get('when')}, commit {meta.get('git_commit')}"
        f"{' +local changes' if meta.get('git_dirty') else ''}, {meta.get('cpus')} CPUs, "
        f"dlt {meta.get('versions', {}).get('dlt')}, duckdb {meta.get('versions', {}).get('duckdb')}"
        f"; bench took {_num(meta.get('bench_wall_s'), '{:.0f}')}s)",
        "",
    ]
    s1 = results.get("backfill")
    if s1:
        counts = s1["counts"]
        lines.append(
            f"1. Backfill {counts['knocks']:,} knocks + {counts['leads']:,} leads "
            f"({_num(s1.get('source_rows'))} source rows in all), fresh DuckDB, rate limit off"
        )
        head = (
            f"   {'tool':<30}{'wall s':>8}{'rows':>9}{'rows/s':>9}{'peak RSS MB':>13}"
            f"{'reqs':>6}{'rows/s vs ss':>14}{'RSS vs ss':>11}"
        )
        lines += [head, "   " + "-" * (len(head) - 3)]
        for key, label in TOOLS:
            t = s1["tools"].get(key)
            if not t:
                continue
            lines.append(
                f"   {label:<30}{_num(t.get('wall_s'), '{:.1f}'):>8}{_num(t.get('rows')):>9}"
                f"{_num(t.get('rows_per_s')):>9}{_num(t.get('peak_rss_mb')):>13}"
                f"{_num(t.get('requests')):>6}{_x(t.get('throughput_vs_solarsync')):>14}"
                f"{_x(t.get('rss_vs_solarsync')):>11}"
            )
            if t.get("error"):
                lines.append(f"     ! {t['error'][:150]}")
        ss = s1["tools"].get("solarsync", {})
        steps = ss.get("steps_s") or {}
        if steps and "error" not in steps:
            lines.append(
                "   solarsync steps (dlt trace): "
                + ", ".join(f"{k} {v:.1f}s" for k, v in steps.items() if k != "run")
            )
        fl = s1["tools"].get("floor")
        if fl:
            lines.append(
                f"   floor = fetch {_num(fl.get('fetch_s'), '{:.1f}')}s (bodies discarded, "
                f"{_num((fl.get('bytes') or 0) / 1e6, '{:.0f}')} MB) + read_json "
                f"{_num(fl.get('read_json_s'), '{:.1f}')}s"
            )
        b = s1["tools"].get("baseline_b")
        if b and not b.get("complete"):
            lines.append(
                f"   B stopped after its {b.get('budget_s')}s budget ({_num(b.get('rows'))} rows, "
                f"knocks first): its rows/s is over that part; all rows would take "
                f"~{_num((b.get('est_wall_for_all_rows_s') or 0) / 60, '{:.0f}')} min"
            )
        a = s1["tools"].get("baseline_a", {})
        fl_x = (fl or {}).get("throughput_vs_solarsync")
        a_x = a.get("throughput_vs_solarsync")
        lines.append(
            "   targets: solarsync >= 5x A's rows/s: "
            + (f"{1 / a_x:.1f}x {_verdict(1 / a_x >= 5)}" if a_x else "-")
            + "; within 2x of the floor: "
            + (f"floor is {fl_x:.1f}x faster {_verdict(fl_x <= 2)}" if fl_x else "-")
            + "; peak RSS <= 500 MB: "
            + (
                f"{ss.get('peak_rss_mb'):.0f} MB {_verdict(ss.get('peak_rss_mb', 1e9) <= 500)}"
                if ss.get("peak_rss_mb")
                else "-"
            )
        )
        lines.append("")

    s2 = results.get("memory")
    if s2:
        runs = s2.get("runs", {})
        parts = [
            f"{int(k):,} knocks: {_num(r.get('peak_rss_mb'))} MB in {_num(r.get('wall_s'), '{:.1f}')}s"
            + (f" (! {r['error'][:80]})" if r.get("error") else "")
            for k, r in runs.items()
        ]
        ratio = s2.get("ratio_1m_to_100k")
        lines.append("2. Memory scaling (solarsync peak RSS): " + "; ".join(parts))
        if ratio is not None:
            big = runs.get("1000000", {}).get("peak_rss_mb") or 1e9
            lines.append(
                f"   1M / 100k = {ratio:.2f} (target <= 1.2: {_verdict(ratio <= 1.2)}; "
                f"<= 500 MB: {_verdict(big <= 500)})"
            )
        else:
            lines.append("   1M knocks: only with --full (make bench FULL=1)")
        lines.append("")

    s3 = results.get("rate_limit")
    if s3:
        scaled = (
            f"scaled: {s3['limit_per_window']} per {s3['window_s']:.0f}s, burst {s3['burst']} "
            "(= 600/min, burst 1200 at the same request rate)"
            if s3.get("scaled")
            else f"{s3['limit_per_window']}/min, burst {s3['burst']}"
        )
        frac = s3.get("achieved_fraction")
        share = s3.get("share_429")
        lines += [
            f"3. Rate-limited sync, page size 100, limit {scaled}",
            f"   achieved {_num(frac, '{:.3f}')} of the limit per whole window "
            f"(windows: {s3.get('requests_per_whole_window')}; target >= 0.95: "
            f"{_verdict(frac >= 0.95) if frac is not None else 'not enough windows'}), "
            f"429s {s3.get('status_429')} of {s3.get('requests')} = "
            f"{_num((share or 0) * 100, '{:.2f}')}% (target <= 0.1%: "
            f"{_verdict(share <= 0.001) if share is not None else '-'})",
            f"   {s3.get('rows'):,} rows in {_num(s3.get('wall_s'), '{:.1f}')}s; most admitted "
            f"in any sliding {s3['window_s']:.0f}s: {s3.get('max_admitted_in_any_window')} "
            f"(burst {s3['burst']})",
        ]
        if s3.get("error"):
            lines.append(f"   ! {s3['error'][:150]}")
        lines.append("")

    s4 = results.get("noop")
    if s4:
        lines += [
            f"4. Nightly no-op (second run, nothing changed): {s4['requests']} requests "
            f"(target {s4['requests_target']}: /org + one per list endpoint: "
            f"{_verdict(s4['requests'] <= s4['requests_target'])}), "
            f"{s4['wall_s']:.1f}s = {_x(s4.get('ratio_to_import'))} of "
            f'`python -c "import dlt, duckdb"` ({s4["import_dlt_duckdb_s"]:.2f}s), '
            f"{_num(s4.get('peak_rss_mb'))} MB",
        ]
        if s4.get("error"):
            lines.append(f"   ! {s4['error'][:150]}")
    s5 = results.get("incremental")
    if s5:
        upd = s5.get("updated_rows", {})
        lines += [
            f"5. Incremental after 1% updated ({', '.join(f'{v:,} {k}' for k, v in upd.items())}): "
            f"{s5['requests']} requests, {s5['rows']:,} rows, {s5['wall_s']:.1f}s = "
            f"{_x(s5.get('ratio_to_backfill'))} of the backfill's wall time",
        ]
        if s5.get("error"):
            lines.append(f"   ! {s5['error'][:150]}")
    if s4 or s5:
        lines.append("")

    from bench.fanout import render_fanout

    lines += render_fanout(results)
    from bench.lake import render_lake

    lines += render_lake(results)

    from bench.destinations import render_destinations

    lines += render_destinations(results)

    from bench.publish import render_publish

    lines += render_publish(results)

    from bench.report_page import render_report_page

    lines += render_report_page(results)

    from bench.targets import render_targets

    lines += render_targets(results)

    p = results.get("profile")
    if p:
        if p.get("error"):
            lines.append(f"Profile: {p['error']}")
        else:
            shares = ", ".join(f"{k} {v * 100:.0f}%" for k, v in p["shares"].items() if v)
            lines.append(
                f"Profile (py-spy, {p['samples']:,} samples of {p['run']}: "
                f"{_num(p.get('wall_s'), '{:.1f}')}s vs {_num(p.get('unprofiled_wall_s'), '{:.1f}')}s "
                "unprofiled; shares of sampled thread time):"
            )
            lines.append(f"   {shares}")
            steps = p.get("steps_s") or {}
            if steps and "error" not in steps:
                lines.append(
                    "   dlt steps: " + ", ".join(f"{k} {v:.1f}s" for k, v in steps.items())
                )
            for leaf in p.get("top_leaves", [])[:6]:
                lines.append(f"   {leaf['share'] * 100:4.0f}%  {leaf['where'][:110]}")
    for key, err in (results.get("errors") or {}).items():
        lines.append(f"! scenario group {key}: {err}")
    return "\n".join(lines).rstrip() + "\n"
