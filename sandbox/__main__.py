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
import sys
import time

from sandbox.solarknock.data import LIST_ENDPOINTS


def _solarknock(args: argparse.Namespace) -> int:
    from sandbox.common.foreground import serve_until_stopped, stop_on_signals
    from sandbox.solarknock import SolarKnockSandbox

    stop = stop_on_signals()  # before "ready": a signal right after it is not lost

    counts = {
        name: value
        for name, value in (
            ("users", args.users),
            ("knocks", args.knocks),
            ("leads", args.leads),
            ("appointments", args.appointments),
            ("daily-stats", args.daily_stats),
            ("app-opens", args.app_opens),
            ("counties", args.counties),
        )
        if value is not None
    }
    t0 = time.perf_counter()
    sb = SolarKnockSandbox(
        seed=args.seed, api_key=args.api_key, counts=counts, host=args.host, port=args.port
    )
    if args.rate_limit:
        sb.set_rate_limit(args.rate_limit, burst=args.burst, reset_style=args.reset_style)
    sb.start()
    rows = ", ".join(f"{k}={v}" for k, v in sb.stats()["rows"].items())
    print(f"SolarKnock sandbox ready in {time.perf_counter() - t0:.1f}s ({rows})", flush=True)
    print(f"base URL:  {sb.base_url}", flush=True)
    print(f"admin URL: {sb.admin_url}  (truth/<endpoint>, stats, requests, POST <action>)")
    limit = (
        f"{args.rate_limit}/min, burst {args.burst or 2 * args.rate_limit}"
        if args.rate_limit
        else "off"
    )
    print(
        f"rate limit: {limit}; auth: Bearer <the --api-key you passed>. Ctrl-C to stop.", flush=True
    )
    return serve_until_stopped(sb, stop)


OTHER_APIS = ("heat", "solarassistant", "tesla")  # each has its own sandbox.<api>.__main__


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] in OTHER_APIS:
        import importlib

        module = importlib.import_module(f"sandbox.{argv[0]}.__main__")
        sys.argv = [f"python -m sandbox {argv[0]}", *argv[1:]]
        return module.main() or 0
    parser = argparse.ArgumentParser(prog="python -m sandbox", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="api", required=True)
    for name in OTHER_APIS:
        sub.add_parser(name, help=f"see python -m sandbox {name} --help")
    sk = sub.add_parser("solarknock", help="SolarKnock Reporting API")
    sk.add_argument("--host", default="127.0.0.1")
    sk.add_argument("--port", type=int, default=8765)
    sk.add_argument("--api-key", default="sk_DEMO", help="key clients must send (never printed)")
    sk.add_argument("--seed", type=int, default=0)
    for name in LIST_ENDPOINTS:
        sk.add_argument(f"--{name}", type=int, default=None, help=f"number of {name} rows")
    sk.add_argument(
        "--rate-limit", type=int, default=None, help="requests per minute (off by default)"
    )
    sk.add_argument("--burst", type=int, default=None, help="max requests in any 60 s (default 2x)")
    sk.add_argument("--reset-style", choices=("epoch", "delta"), default="epoch")
    args = parser.parse_args(argv)
    return _solarknock(args)


if __name__ == "__main__":
    sys.exit(main())
