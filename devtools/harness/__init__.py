"""The one harness that tests, the benchmark and the demo use to run Lead Card locally.

- `settings`: the test registration (client id/secret) and the settings builder — the only
  place tests get a client id, a secret key, a token key ring or an instance folder from;
- `gunicorn.AppProcess`: the app exactly as production runs it (`gunicorn -c gunicorn.conf.py`),
  in its own process group, with an environment built from explicit settings;
- `inprocess`: the app (or any WSGI app) in a werkzeug threaded server inside the caller's
  process, so tests can reach its objects;
- `simulator`: the Bitrix24 simulator (devtools/devportal) in this process or in its own;
- `processes`: bounded waiting and /proc facts (gunicorn's workers, CPU seconds).

Everything listens on 127.0.0.1 only; every wait is bounded by a deadline.
"""

from devtools.harness.gunicorn import AppProcess, StartupError
from devtools.harness.inprocess import LiveApp, Served, serve_app
from devtools.harness.processes import children_of, wait_until
from devtools.harness.settings import (
    CLIENT_ID,
    CLIENT_SECRET,
    SECRET_KEY,
    app_settings,
    process_env,
    sqlite_url,
)
from devtools.harness.simulator import SimulatorProcess, free_port, free_ports, new_simulator

__all__ = [
    "AppProcess", "CLIENT_ID", "CLIENT_SECRET", "LiveApp", "SECRET_KEY", "Served",
    "SimulatorProcess", "StartupError", "app_settings", "children_of", "free_port",
    "free_ports", "new_simulator", "process_env", "serve_app", "sqlite_url", "wait_until",
]
