"""`bin/demo`: Lead Card under gunicorn + the local Bitrix24 portal simulator, one command.

The app runs exactly as in production (gunicorn, gthread workers, the embedded SQLite
default under instance/), configured to talk to the simulator's OAuth server over plain
http on loopback. The simulator plays two portals; open the printed URL, click
"Install app", then open a lead and its "Lead Card" tab.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys

from devtools.devportal import Simulator
from devtools.harness import AppProcess, StartupError

CLIENT_ID = "local.leadcard.demo"
CLIENT_SECRET = "demo-client-secret-not-for-production"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="bin/demo", description=__doc__)
    ap.add_argument("--port", type=int, default=int(os.environ.get("PORT", "8000")))
    ap.add_argument("--sim-port", type=int, default=5010,
                    help="OAuth server port; portals use the next two ports")
    args = ap.parse_args(argv)

    app_url = f"http://127.0.0.1:{args.port}"
    sim = Simulator(app_url=app_url, client_id=CLIENT_ID, client_secret=CLIENT_SECRET,
                    oauth_port=args.sim_port, portal_ports=[args.sim_port + 1, args.sim_port + 2])
    sim.start()
    # Only the simulator's registration and a secret key: no storage setting, so the app
    # uses its embedded SQLite default under instance/ (settings from the shell are not
    # inherited, see devtools/harness/settings.py).
    settings = {**sim.app_settings(), "SECRET_KEY": os.environ.get(
        "SECRET_KEY", "demo-secret-key-change-me-in-production")}
    gunicorn = AppProcess(settings, port=args.port, log_path=None, workers=2, stop_timeout=35)
    try:
        try:
            gunicorn.start(timeout=30)
        except StartupError as exc:
            raise SystemExit(str(exc)) from None
        portal = sim.portals["a"]
        print("\n  Lead Card is running with a simulated Bitrix24 (Ctrl-C stops both).\n")
        print(f"  1. Install:   {portal.base_url}/marketplace/app/?user=1")
        print(f"  2. Open:      {portal.lead_url(101, user_id=1, tab='app')}")
        print(f"     as user 2 (sales rep): {portal.lead_url(101, user_id=2, tab='app')}")
        print("     In the card: comment, plan a to-do, mark one done, move the stage")
        print("     (\"Processed\" is refused until \"Decision maker\" is filled, as a portal can).")
        print(f"     Read-only for user 2 (he may read it, not change it): "
              f"{portal.lead_url(102, user_id=2, tab='app')}")
        print(f"  Portal home:  {portal.base_url}/?user=1      App: {app_url}\n", flush=True)
        signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
        assert gunicorn.proc is not None
        gunicorn.proc.wait()
    except KeyboardInterrupt:
        pass
    finally:
        gunicorn.stop()
        sim.stop()
    return 0

if __name__ == "__main__":
    sys.exit(main())
