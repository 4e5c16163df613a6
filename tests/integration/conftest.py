"""Integration harness: the simulator and the app, talking real HTTP on loopback.

The app runs in a werkzeug threaded server inside the test process (tests can reach its
objects), the simulator in its own servers; nothing is mocked between them.
"""

from __future__ import annotations

import threading

import pytest
from cryptography.fernet import Fernet
import requests
from werkzeug.serving import make_server

from devtools.devportal import Simulator
from devtools.devportal.servers import free_port

CLIENT_ID = "local.leadcard.test"
CLIENT_SECRET = "test-client-secret-" + "s" * 24


class LiveApp:
    def __init__(self, app, server):
        self.app = app
        self.server = server
        self.url = f"http://127.0.0.1:{server.server_port}"

    @property
    def services(self):
        return self.app.extensions["leadcard"]

    def post(self, url_or_path: str, form: dict, **kw) -> requests.Response:
        url = url_or_path if url_or_path.startswith("http") else self.url + url_or_path
        return requests.post(url, data=form, timeout=30, allow_redirects=False, **kw)


def _serve(app) -> LiveApp:
    server = make_server("127.0.0.1", 0, app, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return LiveApp(app, server)


@pytest.fixture
def app_port():
    return free_port()


@pytest.fixture
def sim(app_port):
    simulator = Simulator(app_url=f"http://127.0.0.1:{app_port}", client_id=CLIENT_ID,
                          client_secret=CLIENT_SECRET)
    simulator.start()
    yield simulator
    simulator.stop()


def app_settings(sim, app_port, tmp_path, **extra) -> dict:
    return {
        **sim.app_settings(),
        "SECRET_KEY": "integration-secret-key-" + "k" * 20,
        "DATABASE_URL": f"sqlite:///{tmp_path}/leadcard.sqlite3",
        "INSTANCE_PATH": str(tmp_path / "instance"),
        "TOKEN_KEYS": Fernet.generate_key().decode(),
        **extra,
    }


@pytest.fixture
def live_app(sim, app_port, tmp_path):
    from app import create_app

    app = create_app(app_settings(sim, app_port, tmp_path))
    server = make_server("127.0.0.1", app_port, app, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    live = LiveApp(app, server)
    yield live
    server.shutdown()
    live.services.engine.dispose()


@pytest.fixture
def installed(sim, live_app):
    """Portal "a" with Lead Card installed through the real install flow."""
    portal = sim.portals["a"]
    url, form = sim.install_request("a", user_id=1)
    response = live_app.post(url, form)
    assert response.status_code == 200, response.text[:500]
    assert sim.finish_install("a") in (200, 201)
    return portal
