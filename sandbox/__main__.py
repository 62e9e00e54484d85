"""Run a sandbox in the foreground until Ctrl-C.

    python -m sandbox solarknock --port 8765 --api-key sk_DEMO --knocks 1000 --leads 300 \
        [--rate-limit 60 --burst 120]
    python -m sandbox heat --help               # HEAT Cloud API (python -m sandbox.heat)
    python -m sandbox solarassistant --help     # cloud API + HTTPS proxy
    python -m sandbox tesla --help              # HTTPS Powerwall gateway

Drive it from another process through ``/__admin`` (truth, stats, mutations, faults).
"""

from __future__ import annotations

import argparse
import importlib
import sys

#: each has its own ``sandbox.<api>.__main__``
APIS = {
    "solarknock": "SolarKnock Reporting API",
    "heat": "HEAT Cloud Public API",
    "solarassistant": "SolarAssistant cloud API + HTTPS proxy",
    "tesla": "Tesla Energy Gateway (HTTPS)",
}


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] in APIS:
        module = importlib.import_module(f"sandbox.{argv[0]}.__main__")
        sys.argv = [f"python -m sandbox {argv[0]}", *argv[1:]]
        return module.main() or 0
    parser = argparse.ArgumentParser(prog="python -m sandbox", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="api", required=True)
    for name, what in APIS.items():
        sub.add_parser(name, help=f"{what}: see python -m sandbox {name} --help")
    parser.parse_args(argv)  # --help, or no/an unknown API: argparse exits
    return 2


if __name__ == "__main__":
    sys.exit(main())
