"""Fixtures of the security suite (helpers and the wire observers live in `harness.py`)."""

from __future__ import annotations

import pytest

from tests.security.harness import (
    Egress,
    RecordingServer,
    app_settings,
    free_port,
    install_portal,
    start_app,
    start_sim,
)

# --- fixtures -------------------------------------------------------------------------------

@pytest.fixture
def app_port() -> int:
    return free_port()


@pytest.fixture
def sim(app_port):
    simulator = start_sim(app_port)
    yield simulator
    simulator.stop()


@pytest.fixture
def app_overrides() -> dict:
    """Extra settings for `live_app`; modules override this fixture."""
    return {}


@pytest.fixture
def sqlite_url(tmp_path) -> str:
    return f"sqlite:///{tmp_path}/leadcard.sqlite3"


@pytest.fixture
def live_app(sim, app_port, sqlite_url, app_overrides):
    live = start_app(app_settings(sim, app_port, sqlite_url, **app_overrides), app_port)
    yield live
    live.stop()


@pytest.fixture
def installed(sim, live_app):
    """Portal "a" with Lead Card installed through the real install flow."""
    return install_portal(sim, live_app, "a")


@pytest.fixture
def egress(monkeypatch, sim, app_port):
    recorder = Egress().install(monkeypatch)
    recorder.app_port = app_port
    return recorder


@pytest.fixture
def evil():
    server = RecordingServer()
    yield server
    server.stop()
