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
import subprocess
import sys
import time

import requests

from devtools.devportal import Simulator

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
    env = dict(
        os.environ,
        **sim.app_settings(),
        SECRET_KEY=os.environ.get("SECRET_KEY", "demo-secret-key-change-me-in-production"),
        HOST="127.0.0.1",
        PORT=str(args.port),
    )
    env.pop("DATABASE_URL", None)  # the embedded SQLite default
    gunicorn = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py"], env=env,
    )
    try:
        _wait_healthy(app_url + "/healthz", gunicorn)
        portal = sim.portals["a"]
        print("\n  Lead Card is running with a simulated Bitrix24 (Ctrl-C stops both).\n")
        print(f"  1. Install:   {portal.base_url}/marketplace/app/?user=1")
        print(f"  2. Open:      {portal.lead_url(101, user_id=1, tab='app')}")
        print(f"     as user 2 (sales rep): {portal.lead_url(101, user_id=2, tab='app')}")
        print(f"  Portal home:  {portal.base_url}/?user=1      App: {app_url}\n", flush=True)
        signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
        gunicorn.wait()
    except KeyboardInterrupt:
        pass
    finally:
        if gunicorn.poll() is None:
            gunicorn.terminate()
            try:
                gunicorn.wait(timeout=35)
            except subprocess.TimeoutExpired:
                gunicorn.kill()
        sim.stop()
    return 0


def _wait_healthy(url: str, process: subprocess.Popen, timeout: float = 30.0) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if process.poll() is not None:
            raise SystemExit("gunicorn exited during start-up; see its output above")
        try:
            if requests.get(url, timeout=1).status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(0.2)
    raise SystemExit(f"Lead Card did not become healthy at {url}")


if __name__ == "__main__":
    sys.exit(main())
