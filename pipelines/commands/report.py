"""``solarsync report`` and ``solarsync demo``."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from pipelines.commands.common import EXIT_FAILED, EXIT_OK, EXIT_USAGE, out, warehouse_of
from pipelines.demo import run_demo
from pipelines.report import WarehouseUnreadable, write_report
from sources.common import SolarsyncError, redact

logger = logging.getLogger("solarsync")


def cmd_report(args: argparse.Namespace) -> int:
    warehouse = warehouse_of(args)
    if warehouse is None:
        return EXIT_USAGE
    try:
        path = write_report(
            warehouse, Path(args.output) if args.output else None, timezone=args.timezone
        )
    except WarehouseUnreadable as exc:
        logger.error("report: %s", redact(exc))
        return EXIT_FAILED
    except SolarsyncError as exc:  # a report_* setting that is not valid
        logger.error("report: %s", redact(exc))
        return exc.exit_code
    out(f"report: {path.resolve()}")
    return EXIT_OK


def cmd_demo(args: argparse.Namespace) -> int:
    if not args.verbose:  # the demo narrates on stdout; keep the per-table log lines out
        logging.getLogger().setLevel(logging.WARNING)
    return run_demo(Path(args.warehouse_dir), warehouse=args.warehouse)
