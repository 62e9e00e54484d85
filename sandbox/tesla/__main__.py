"""``python -m sandbox.tesla``: run the sandbox gateway in the foreground.

python -m sandbox.tesla --variant 21.44 --port 8443 --password S4ndb0xPW
SOURCES__TESLA__HOST=127.0.0.1:8443 SOURCES__TESLA__PASSWORD=S4ndb0xPW solarsync run tesla
"""

from __future__ import annotations

import argparse
import sys
import tempfile

from sandbox.common.foreground import serve_until_stopped, stop_on_signals
from sandbox.tesla.model import VARIANTS
from sandbox.tesla.server import TeslaGatewaySandbox


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m sandbox.tesla",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--variant", default="21.44", choices=sorted(VARIANTS))
    parser.add_argument("--port", type=int, default=8443)
    parser.add_argument("--password", default="S4ndb0xPW")
    parser.add_argument("--login-limit", type=int, default=5, help="logins per window")
    parser.add_argument("--login-window", type=float, default=300.0, help="seconds")
    parser.add_argument("--stopped", action="store_true", help="site controller stopped (502s)")
    parser.add_argument("--verbatim", action="store_true", help="serve captures byte for byte")
    parser.add_argument(
        "--glitch-every",
        type=int,
        default=0,
        help="every Nth aggregates read, the solar exported counter reads 0",
    )
    args = parser.parse_args(argv)
    zero_at = (
        {t: [("solar", "energy_exported")] for t in range(args.glitch_every, 100000,
                                                          args.glitch_every)}
        if args.glitch_every else None
    )  # fmt: skip
    stop = stop_on_signals()  # before "ready": a signal right after it is not lost
    with tempfile.TemporaryDirectory() as tmp:
        gateway = TeslaGatewaySandbox(
            tmp, variant=args.variant, password=args.password, live=not args.verbatim,
            login_limit=args.login_limit, login_window=args.login_window, port=args.port,
            zero_at=zero_at,
        )  # fmt: skip
        gateway.stopped = args.stopped
        gateway.start()
        print(f"tesla sandbox gateway (firmware {args.variant}) on https://{gateway.host}")
        print(f"  certificate SHA-256 {gateway.cert.sha256}")
        print(f"  SOURCES__TESLA__HOST={gateway.host} SOURCES__TESLA__PASSWORD={args.password}")
        print("Ctrl-C to stop.", flush=True)
        return serve_until_stopped(gateway, stop)


if __name__ == "__main__":
    sys.exit(main())
