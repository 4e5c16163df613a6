"""Fixtures of the integration suite (`sim`, `live_app`, `installed`); see harness.py."""

from __future__ import annotations

import pytest

from devtools.harness import free_port, new_simulator, serve_app
from tests.integration.harness import app_settings


@pytest.fixture
def app_port():
    return free_port()


@pytest.fixture
def sim(app_port):
    simulator = new_simulator(f"http://127.0.0.1:{app_port}")
    simulator.start()
    yield simulator
    simulator.stop()


@pytest.fixture
def live_app(sim, app_port, tmp_path):
    live = serve_app(app_settings(sim, app_port, tmp_path), app_port)
    yield live
    live.stop()


@pytest.fixture
def installed(sim, live_app):
    """Portal "a" with Lead Card installed through the real install flow."""
    portal = sim.portals["a"]
    url, form = sim.install_request("a", user_id=1)
    response = live_app.post(url, form)
    assert response.status_code == 200, response.text[:500]
    assert sim.finish_install("a") in (200, 201)
    return portal
