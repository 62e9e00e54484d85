"""Run the HEAT sandbox in the foreground until Ctrl-C or SIGTERM.

    python -m sandbox.heat --port 8766 --api-key agk_demo.ags_secret --sites 5 [--seed 0]

Point solarsync at it with SOURCES__HEAT__BASE_URL=http://127.0.0.1:8766 and
SOURCES__HEAT__API_KEY=<the key>; change it between runs through /__admin, e.g.
``curl -X POST -d '{"site_id": "...", "online": false}' http://127.0.0.1:8766/__admin/set_online``.
"""

from __future__ import annotations

import argparse
import sys


def main(argv: list[str] | None = None) -> int:
    from sandbox.heat import HeatSandbox

    parser = argparse.ArgumentParser(
        prog="python -m sandbox.heat", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8766)
    parser.add_argument("--api-key", default="agk_demo.ags_DEMOSECRET", help="never printed")
    parser.add_argument("--sites", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    from sandbox.common.foreground import serve_until_stopped, stop_on_signals

    stop = stop_on_signals()  # before "ready": a signal right after it is not lost
    sb = HeatSandbox(seed=args.seed, api_key=args.api_key, sites=args.sites, host=args.host,
                     port=args.port).start()  # fmt: skip
    print(f"HEAT sandbox ready: {args.sites} site(s)", flush=True)
    print(f"base URL:  {sb.base_url}", flush=True)
    print(f"admin URL: {sb.admin_url}  (GET truth, requests, stats; POST <action>)", flush=True)
    print(f"site ids:  {', '.join(sb.site_ids)}", flush=True)
    return serve_until_stopped(sb, stop)


if __name__ == "__main__":
    sys.exit(main())
