"""Standalone runner: ``python -m devtools.devportal --app-url ... --client-id ... --client-secret ...``.

Starts the OAuth server and the portals on 127.0.0.1, prints their URLs, and runs
until interrupted.  Drive it from another process through ``/_sim/`` on the OAuth port.
"""

from __future__ import annotations

import argparse
import json
import logging
import signal
import threading

from .simulator import Simulator


def _ports(value: str) -> list[int]:
    return [int(p) for p in value.split(",") if p.strip()]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m devtools.devportal", description=__doc__)
    ap.add_argument("--app-url", default="http://127.0.0.1:8000", help="base URL of the Lead Card app")
    ap.add_argument("--client-id", default="local.devportal.leadcard")
    ap.add_argument("--client-secret", default="devportal-secret")
    ap.add_argument("--oauth-port", type=int, default=0, help="0 = any free port")
    ap.add_argument("--portal-ports", type=_ports, default=None, help="comma list, one per portal")
    ap.add_argument("--portals", default="a,b", help="comma list of portal names")
    ap.add_argument("--scope", default="crm,placement,user_brief")
    ap.add_argument("--installed", action="store_true", help="start with the app marked installed")
    ap.add_argument("--no-rate-limit", action="store_true", help="disable the leaky bucket")
    ap.add_argument("--json", action="store_true", help="print the portal description as JSON")
    ap.add_argument("-v", "--verbose", action="store_true")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO)

    sim = Simulator(app_url=args.app_url, client_id=args.client_id, client_secret=args.client_secret,
                    portals=[p.strip() for p in args.portals.split(",") if p.strip()],
                    oauth_port=args.oauth_port, portal_ports=args.portal_ports, scope=args.scope,
                    installed=args.installed)
    sim.start()
    if args.no_rate_limit:
        sim.knobs(rate_limit=False)
    if args.json:
        print(json.dumps(sim.describe(), indent=2), flush=True)
    else:
        print(f"OAuth server     {sim.oauth_url}  (token: {sim.token_url}, REST: {sim.server_endpoint})")
        print(f"Control API      {sim.oauth_url}/_sim/stats | /_sim/portals | /_sim/knobs | /_sim/faults")
        for name, p in sim.portals.items():
            print(f"Portal {name:<9} {p.base_url}/  member_id={p.member_id}")
            print(f"   leads         {p.base_url}/?user=1   (user 1 admin, user 2 sales rep)")
            print(f"   lead tab      {p.lead_url(101 if name == 'a' else 201, tab='app')}")
            print(f"   install app   {p.base_url}/marketplace/app/?user=1")
        print(f"App              {args.app_url} (installer {sim.app.url(sim.app.install_path)}, "
              f"events {sim.app.url(sim.app.events_path)})", flush=True)

    stop = threading.Event()
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    stop.wait()
    sim.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
