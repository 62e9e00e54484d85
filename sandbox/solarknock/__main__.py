"""Run the SolarKnock sandbox in the foreground until Ctrl-C or SIGTERM.

    python -m sandbox solarknock --port 8765 --api-key sk_DEMO --knocks 1000 --leads 300 \
        [--rate-limit 60 --burst 120]

Drive it from another process through ``/__admin`` (truth, stats, mutations, faults).
"""

from __future__ import annotations

import argparse
import sys
import time

from sandbox.common.foreground import serve_until_stopped, stop_on_signals
from sandbox.solarknock.data import LIST_ENDPOINTS
from sandbox.solarknock.sandbox import SolarKnockSandbox


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m sandbox solarknock", description="SolarKnock Reporting API"
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument(
        "--api-key", default="sk_DEMO", help="key clients must send (never printed)"
    )
    parser.add_argument("--seed", type=int, default=0)
    for name in LIST_ENDPOINTS:
        parser.add_argument(f"--{name}", type=int, default=None, help=f"number of {name} rows")
    parser.add_argument(
        "--rate-limit", type=int, default=None, help="requests per minute (off by default)"
    )
    parser.add_argument(
        "--burst", type=int, default=None, help="max requests in any 60 s (default 2x)"
    )
    parser.add_argument("--reset-style", choices=("epoch", "delta"), default="epoch")
    args = parser.parse_args(argv)

    stop = stop_on_signals()  # before "ready": a signal right after it is not lost
    counts = {
        name: getattr(args, name.replace("-", "_"))
        for name in LIST_ENDPOINTS
        if getattr(args, name.replace("-", "_")) is not None
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


if __name__ == "__main__":
    sys.exit(main())
