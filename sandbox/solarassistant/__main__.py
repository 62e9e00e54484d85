"""Run the SolarAssistant sandbox (cloud API + HTTPS proxy) in the foreground until Ctrl-C.

    python -m sandbox.solarassistant --sites 6 --offline 2 --cloud-port 8766 --proxy-port 8767

Then, in another shell (the printed lines give the exact values)::

    export SOURCES__SOLARASSISTANT__API_TOKEN=<--api-token>
    export SOURCES__SOLARASSISTANT__BASE_URL=http://127.0.0.1:8766/api/v1
    export REQUESTS_CA_BUNDLE=<printed certificate path>
    solarsync poll solarassistant --every 10s --for 5m

Admin (on the cloud port): ``GET /__admin/truth/<table>``, ``GET /__admin/truth/metrics/<site>``,
``GET /__admin/stats``, ``POST /__admin/tick``, ``POST /__admin/expire_tokens``,
``POST /__admin/offline?site=<id>&mode=502|504|timeout|drop`` (no mode: online again),
``POST /__admin/remove_member?site=<id>&user=<id>``,
``POST /__admin/value?site=<id>&topic=<topic>&value=<JSON>[&unit=kWh]`` (a scripted reading),
``POST /__admin/remove_topic?site=<id>&topic=<topic>``.
"""

from __future__ import annotations

import argparse
import sys

from sandbox.solarassistant import SolarAssistantSandbox


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m sandbox.solarassistant", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--cloud-port", type=int, default=8766)
    parser.add_argument("--proxy-port", type=int, default=8767)
    parser.add_argument("--api-token", default="sa_DEMO_TOKEN", help="token clients must send")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--sites", type=int, default=6)
    parser.add_argument("--org-users", type=int, default=45)
    parser.add_argument("--no-org", action="store_true", help="GET /users answers 403")
    parser.add_argument(
        "--offline", type=int, default=1, help="how many sites are offline (the last ones)"
    )
    parser.add_argument("--offline-mode", default="502", choices=["502", "504", "timeout", "drop"])
    parser.add_argument("--token-ttl", type=float, default=7 * 24 * 3600, help="seconds")
    parser.add_argument("--cert-dir", default=None, help="where the proxy certificate is written")
    args = parser.parse_args(argv)
    from sandbox.common.foreground import serve_until_stopped, stop_on_signals

    stop = stop_on_signals()  # before "ready": a signal right after it is not lost

    sb = SolarAssistantSandbox(
        seed=args.seed,
        api_token=args.api_token,
        sites=args.sites,
        org_users=args.org_users,
        has_org=not args.no_org,
        token_ttl=args.token_ttl,
        host=args.host,
        cloud_port=args.cloud_port,
        proxy_port=args.proxy_port,
        cert_dir=args.cert_dir,
    )
    for site in sb.sites[len(sb.sites) - max(0, args.offline) :]:
        sb.set_offline(site.id, args.offline_mode)
    sb.start()
    offline = ", ".join(str(s) for s in sb.stats()["offline"]) or "none"
    print(f"SolarAssistant sandbox: {len(sb.sites)} sites (offline: {offline})", flush=True)
    print(f"cloud base URL:     {sb.base_url}")
    print(f"proxy host:         {sb.proxy_host} (HTTPS, self-signed)")
    print(f"REQUESTS_CA_BUNDLE: {sb.ca_bundle}")
    print("auth: Bearer <the --api-token you passed>. Ctrl-C to stop.", flush=True)
    return serve_until_stopped(sb, stop)


if __name__ == "__main__":
    sys.exit(main())
