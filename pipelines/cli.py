"""``solarsync``: the command line (console script and ``python -m pipelines``)."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence

EXAMPLES = {
    "run": """examples:
  solarsync run                      # every configured source, incremental
  solarsync run solarknock           # one source (all its accounts, at once)
  solarsync run solarknock --account north   # one account ([sources.solarknock.accounts.north])
  solarsync --warehouse /data/bi.duckdb run
cron (nightly at 02:15, logs appended):
  15 2 * * * cd /opt/solarsync && .venv/bin/solarsync run >> warehouse/sync.log 2>&1""",
    "backfill": """examples:
  solarsync backfill solarknock                                  # everything, all tables
  solarsync backfill solarknock --since 2024-01-01 --until 2024-07-01
  solarsync backfill solarknock --resource knocks --resource leads
  solarsync backfill solarknock --account north       # one office's org only
(--resource leads also backfills lead_attachments: the files of those leads)
A backfill merges into the same tables and never moves the nightly checkpoint.""",
    "status": """examples:
  solarsync status
  solarsync --warehouse /data/bi.duckdb status
  solarsync status --json                  # for monitoring systems
  solarsync status --fail-if-stale         # exit 1 when a source is stale or its last run failed
A source is stale when its last success is older than [sources.<name>] expected_interval
(default 26h). Checked: the named sources, else those configured or run before.""",
    "report": """examples:
  solarsync report                          # -> warehouse/solarsync-report.html
  solarsync report --output /srv/www/solar.html
  solarsync report --timezone Europe/Berlin # every time axis in Berlin time
The page is one self-contained file (opens offline, no CDN). Settings ([solarsync] in
.dlt/config.toml, or SOLARSYNC__<KEY>): report_timezone (default UTC; the machine's TZ never
matters), report_max_points (readings drawn per series before min/max downsampling, default
2000; 0 = all), report_leaderboard_top (default 25), report_funnel_from / report_funnel_to
(YYYY-MM-DD: the weeks the weekly funnel shows; default: where the data is, outliers named).
A chart that cannot be read shows why; the command fails only when the warehouse cannot be
opened or nothing at all can be read.""",
    "check": """examples:
  solarsync check                    # every configured source
  solarsync check solarknock
  solarsync check solarknock --account north""",
    "poll": """examples:
  solarsync poll tesla --every 5s --for 1h            # a snapshot every 5 s, loaded every 5 min
  solarsync poll solarassistant --every 60s --batch 10m   # until Ctrl-C / SIGTERM
Ctrl-C or SIGTERM: the current poll finishes and everything polled is loaded before exit.
A poll that fails is logged and the loop goes on; a rejected credential stops it.""",
    "lake": """examples:
  solarsync --destination filesystem lake optimize             # every dataset of the lake
  solarsync --destination filesystem lake optimize tesla       # one source's tables
  solarsync --destination filesystem lake optimize --retention-hours 24
  solarsync --destination filesystem lake views -o lake_views.sql   # S3/GCS/Azure lakes
optimize compacts each Delta table's small files (partition by partition), then vacuums: files
no longer in the current version and older than the retention ([solarsync.lake]
vacuum_retention_hours, default 168 = 7 days) are deleted.
views writes the views script of a remote lake, as kept in its bucket (<bucket>/_views/), to
a file to .read in a DuckDB with httpfs (default: the local copy, [solarsync.lake]
views_file); for a local lake it names the views file (_views.duckdb).""",
    "demo": """examples:
  solarsync demo                     # sandbox API -> warehouse/demo.duckdb, then a query""",
}


def build_parser() -> argparse.ArgumentParser:
    from pipelines.registry import SOURCES
    from pipelines.settings import KINDS

    names = sorted(SOURCES)
    parser = argparse.ArgumentParser(
        prog="solarsync",
        description="Incremental ELT of solar-business APIs into DuckDB, built on dlt.",
        epilog="Configuration: .dlt/config.toml, .dlt/secrets.toml and SOURCES__<SOURCE>__<KEY> "
        "environment variables. Exit code 0 only when every requested source succeeded.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--warehouse",
        metavar="PATH",
        help="DuckDB file (default: DESTINATION__DUCKDB__CREDENTIALS, else warehouse/solarsync.duckdb)",
    )
    parser.add_argument(
        "--destination",
        choices=list(KINDS),
        default=None,
        help="where data lands: a DuckDB file (default), a Delta lake (filesystem: local "
        "path or s3://, gs://, az://) or Postgres; default: [solarsync] destination in "
        ".dlt/config.toml (SOLARSYNC__DESTINATION), else duckdb",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    parser.add_argument("-q", "--quiet", action="store_true", help="warnings and errors only")
    parser.add_argument(
        "--no-progress", action="store_true", help="no live progress display even on a terminal"
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def accounts(command: argparse.ArgumentParser, verb: str) -> None:
        command.add_argument(
            "--account",
            action="append",
            metavar="NAME",
            help=f"{verb} only this account (repeatable): a name under [sources.<source>."
            "accounts.<NAME>], or 'default' for [sources.<source>] itself (docs/accounts.md); "
            "default: every configured account",
        )

    def add(name: str, help_text: str) -> argparse.ArgumentParser:
        return sub.add_parser(
            name,
            help=help_text,
            description=help_text,
            epilog=EXAMPLES[name],
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )

    run = add("run", "incremental sync of the named sources (default: all configured)")
    run.add_argument("sources", nargs="*", metavar="SOURCE", help=f"one of {names}")
    accounts(run, "sync")

    backfill = add("backfill", "bounded full re-read merged into the same tables")
    backfill.add_argument("source", choices=names, metavar="SOURCE", help=f"one of {names}")
    backfill.add_argument("--since", metavar="DATE", help="rows updated after this (ISO 8601)")
    backfill.add_argument("--until", metavar="DATE", help="rows updated up to this (ISO 8601)")
    backfill.add_argument(
        "--resource", action="append", metavar="NAME", help="only these tables (repeatable)"
    )
    accounts(backfill, "backfill")

    pollable = sorted(name for name, spec in SOURCES.items() if spec.pollable)
    poll = add("poll", "snapshot a live source repeatedly, loading in batches")
    poll.add_argument("source", choices=pollable, metavar="SOURCE", help=f"one of {pollable}")
    poll.add_argument(
        "--every", default="60s", metavar="DURATION", help="time between polls (default 60s)"
    )
    poll.add_argument(
        "--for",
        dest="duration",
        metavar="DURATION",
        help="stop after this long (default: until Ctrl-C / SIGTERM)",
    )
    poll.add_argument(
        "--batch",
        default="5m",
        metavar="DURATION",
        help="load what was polled this often (default 5m); also at the end",
    )
    accounts(poll, "poll")

    status = add(
        "status", "last runs, staleness, checkpoints and row counts per table of each source"
    )
    status.add_argument("sources", nargs="*", metavar="SOURCE", help=f"one of {names}")
    status.add_argument("--json", action="store_true", help="machine-readable output")
    status.add_argument(
        "--fail-if-stale",
        action="store_true",
        help="exit 1 when a checked source is stale or its last run failed",
    )
    accounts(status, "show")

    report = add("report", "write a self-contained HTML dashboard of the warehouse")
    report.add_argument(
        "--output",
        metavar="PATH",
        help="where to write it (default: next to the warehouse, <name>-report.html)",
    )
    report.add_argument(
        "--timezone",
        metavar="ZONE",
        help="IANA zone of every time on the page (default: [solarsync] report_timezone, UTC)",
    )

    check = add("check", "verify credentials and reachability; loads nothing")
    check.add_argument("sources", nargs="*", metavar="SOURCE", help=f"one of {names}")
    accounts(check, "check")

    lake = add("lake", "maintenance of the Delta lake (--destination filesystem)")
    lake.add_argument(
        "action",
        choices=["optimize", "views"],
        help="optimize: compact and vacuum; views: write the views script from the bucket",
    )
    lake.add_argument("sources", nargs="*", metavar="SOURCE", help=f"one of {names}")
    lake.add_argument(
        "--retention-hours",
        type=int,
        metavar="HOURS",
        help="vacuum files older than this (default: [solarsync.lake] vacuum_retention_hours)",
    )
    lake.add_argument("--no-vacuum", action="store_true", help="compact only")
    lake.add_argument("-o", "--output", metavar="PATH", help="views: where to write the script")

    demo = add("demo", "run the sandbox APIs, sync, mutate, sync again, show a query")
    demo.add_argument("--warehouse-dir", default="warehouse", help=argparse.SUPPRESS)
    return parser


def setup_logging(verbose: bool, quiet: bool) -> None:
    from sources.common import install_log_redaction

    level = logging.DEBUG if verbose else logging.WARNING if quiet else logging.INFO
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    install_log_redaction(handler)
    # dlt logs every request at INFO; keep its own chatter to warnings unless debugging
    logging.getLogger("dlt").setLevel(logging.DEBUG if verbose else logging.WARNING)
    for name in ("urllib3", "filelock", "fsspec"):
        logging.getLogger(name).setLevel(logging.WARNING)


def main(argv: Sequence[str] | None = None) -> int:
    # no dlthub telemetry, wherever the command is run from (the machine may have no internet)
    os.environ.setdefault("RUNTIME__DLTHUB_TELEMETRY", "false")
    # Arrow's buffers from the system allocator: pyarrow's default (jemalloc) keeps freed
    # pages, +30 MB of peak RSS on a 230k-row backfill (make bench, group 9). Read when
    # pyarrow is first imported, which happens later, in the source.
    os.environ.setdefault("ARROW_DEFAULT_MEMORY_POOL", "system")
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.verbose:  # dlt sets its logger's level from its own config when it starts
        os.environ["RUNTIME__LOG_LEVEL"] = "DEBUG"
    setup_logging(args.verbose, args.quiet)
    # dlt and its logger are configured lazily: import after logging is set up
    from pipelines import commands

    try:
        return commands.dispatch(args)
    except KeyboardInterrupt:
        logging.getLogger("solarsync").error(
            "interrupted; rerun to finish (loaded data and checkpoints are consistent)"
        )
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
