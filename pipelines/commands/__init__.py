"""What each ``solarsync`` command does (``pipelines.cli`` parses the command line).

- ``common``: output for people, exit codes, which sources and warehouse a command names;
- ``sync``: ``run``, ``backfill``, ``poll``, ``check``;
- ``status``: ``status``;
- ``report``: ``report`` and ``demo``;
- ``lake``: ``lake optimize`` and ``lake views``.

A command's module is imported when the command runs (``HANDLERS``): ``solarsync status``
never loads what a sync needs, nor a sync what the report draws with.
"""

from __future__ import annotations

import argparse
import importlib

#: command -> (module, function)
HANDLERS: dict[str, tuple[str, str]] = {
    "run": ("pipelines.commands.sync", "cmd_run"),
    "backfill": ("pipelines.commands.sync", "cmd_backfill"),
    "poll": ("pipelines.commands.sync", "cmd_poll"),
    "check": ("pipelines.commands.sync", "cmd_check"),
    "status": ("pipelines.commands.status", "cmd_status"),
    "report": ("pipelines.commands.report", "cmd_report"),
    "demo": ("pipelines.commands.report", "cmd_demo"),
    "lake": ("pipelines.commands.lake", "cmd_lake"),
}


def dispatch(args: argparse.Namespace) -> int:
    module, function = HANDLERS[args.command]
    return getattr(importlib.import_module(module), function)(args)


__all__ = ["HANDLERS", "dispatch"]
