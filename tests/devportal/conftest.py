"""Fixtures for the devportal simulator tests: a started Simulator and a fake app."""

from __future__ import annotations

import pytest
import requests

from devtools.harness import new_simulator
from tests.devportal.devportal_helpers import CLIENT_ID, CLIENT_SECRET, FakeApp, Rest


@pytest.fixture(scope="session")
def fake_app():
    app = FakeApp()
    yield app
    app.stop()


@pytest.fixture(scope="session")
def sim(fake_app):
    simulator = new_simulator(fake_app.url)
    simulator.start()
    yield simulator
    simulator.stop()


@pytest.fixture(autouse=True)
def clean_world(request):
    """Every test starts from default knobs, no faults, empty counters, app not installed."""
    if "sim" not in request.fixturenames:
        yield
        return
    simulator = request.getfixturevalue("sim")
    fake = request.getfixturevalue("fake_app")
    simulator.reset(stats=True, rate=True, faults=True, knobs=True, clock=True,
                    context=True)
    simulator.app.scope = "crm,placement,user_brief"
    with simulator.world.lock:
        for p in simulator.world.portals.values():
            p.placements = []
            p.events = []
            p.installed = False
    fake.clear()
    yield


@pytest.fixture
def rest(sim):
    return Rest(sim)


@pytest.fixture
def token(sim):
    """Factory: an access token for (portal, user)."""
    def make(portal: str = "a", user_id: int = 1) -> str:
        return sim.issue_tokens(portal, user_id)["access_token"]
    return make


@pytest.fixture
def refresh(sim):
    def call(refresh_token: str, method: str = "POST", **overrides) -> requests.Response:
        params = {"grant_type": "refresh_token", "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET,
                  "refresh_token": refresh_token, **overrides}
        if method == "GET":
            return requests.get(sim.token_url, params=params, timeout=5)
        return requests.post(sim.token_url, data=params, timeout=5)
    return call
