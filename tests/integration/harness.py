"""Integration harness: the simulator and the app, talking real HTTP on loopback.

The app runs in a werkzeug threaded server inside the test process (tests can reach its
objects), the simulator in its own servers; nothing is mocked between them. The machinery
is devtools/harness; this module only fixes what the integration suite's fixtures share.
"""

from __future__ import annotations

from pathlib import Path

from devtools.devportal import Simulator
from devtools.harness import LiveApp, sqlite_url
from devtools.harness import app_settings as harness_settings

__all__ = ["LiveApp", "app_settings"]


def app_settings(sim: Simulator, app_port: int, tmp_path: Path, **extra: str) -> dict:
    """The app on ``app_port`` against ``sim``, a SQLite file and an instance folder in
    ``tmp_path``; ``extra`` adds or overrides settings."""
    return harness_settings(app_url=f"http://127.0.0.1:{app_port}", oauth_url=sim.oauth_url,
                            database_url=sqlite_url(tmp_path), instance_path=tmp_path / "instance",
                            **extra)
