"""gunicorn.conf.py: settings from the environment and the per-worker GIL switch interval."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

CONF = Path(__file__).resolve().parents[2] / "gunicorn.conf.py"


def load(monkeypatch, **env):
    for name in ("GUNICORN_THREADS", "GUNICORN_WORKER_CONNECTIONS", "GIL_SWITCH_INTERVAL_MS"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    spec = importlib.util.spec_from_file_location("gunicorn_conf_under_test", CONF)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_defaults(monkeypatch):
    conf = load(monkeypatch)
    assert conf.worker_class == "gthread" and conf.threads == 8
    assert conf.worker_connections == 12  # threads + 4: a busy worker leaves new ones to others
    assert conf.gil_switch_interval == 0.0005


def test_environment_overrides(monkeypatch):
    conf = load(monkeypatch, GUNICORN_THREADS="4", GIL_SWITCH_INTERVAL_MS="2")
    assert conf.worker_connections == 8 and conf.gil_switch_interval == 0.002
    assert load(monkeypatch, GUNICORN_WORKER_CONNECTIONS="100").worker_connections == 100


def test_post_fork_sets_the_switch_interval(monkeypatch):
    conf = load(monkeypatch, GIL_SWITCH_INTERVAL_MS="0.25")
    before = sys.getswitchinterval()
    try:
        conf.post_fork(None, None)
        assert abs(sys.getswitchinterval() - 0.00025) < 1e-9
    finally:
        sys.setswitchinterval(before)
