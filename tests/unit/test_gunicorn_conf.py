"""gunicorn.conf.py: settings from the environment, the worker class and the per-worker GIL
switch interval."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

CONF = Path(__file__).resolve().parents[2] / "gunicorn.conf.py"


def load(monkeypatch, **env):
    for name in ("GUNICORN_THREADS", "GUNICORN_WORKER_CONNECTIONS", "GUNICORN_KEEPALIVE",
                 "GUNICORN_ACCESS_LOG", "GIL_SWITCH_INTERVAL_MS"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    spec = importlib.util.spec_from_file_location("gunicorn_conf_under_test", CONF)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_defaults(monkeypatch):
    conf = load(monkeypatch)
    assert conf.worker_class == "leadcard.web.gthread_worker.ThreadWorker" and conf.threads == 8
    # keep-alive off and one connection per thread: a busy worker leaves new ones to others
    assert conf.keepalive == 0 and conf.worker_connections == 8
    assert conf.gil_switch_interval == 0.0005


def test_the_worker_class_is_gunicorns_gthread_worker():
    from gunicorn.util import load_class
    from gunicorn.workers.gthread import ThreadWorker as GunicornThreadWorker

    assert issubclass(load_class("leadcard.web.gthread_worker.ThreadWorker"), GunicornThreadWorker)


def test_environment_overrides(monkeypatch):
    conf = load(monkeypatch, GUNICORN_THREADS="4", GIL_SWITCH_INTERVAL_MS="2")
    assert conf.worker_connections == 4 and conf.gil_switch_interval == 0.002
    # keep-alive on: room for 4 idle kept-alive connections besides the threads
    conf = load(monkeypatch, GUNICORN_THREADS="4", GUNICORN_KEEPALIVE="5")
    assert conf.keepalive == 5 and conf.worker_connections == 8
    assert load(monkeypatch, GUNICORN_WORKER_CONNECTIONS="100").worker_connections == 100


def test_access_log_stdout_by_default_and_off_when_empty(monkeypatch):
    assert load(monkeypatch).accesslog == "-"
    assert load(monkeypatch, GUNICORN_ACCESS_LOG="/var/log/leadcard/access.log").accesslog == (
        "/var/log/leadcard/access.log")
    assert load(monkeypatch, GUNICORN_ACCESS_LOG="").accesslog is None


def test_post_fork_sets_the_switch_interval(monkeypatch):
    conf = load(monkeypatch, GIL_SWITCH_INTERVAL_MS="0.25")
    before = sys.getswitchinterval()
    try:
        conf.post_fork(None, None)
        assert abs(sys.getswitchinterval() - 0.00025) < 1e-9
    finally:
        sys.setswitchinterval(before)


def test_each_master_gets_a_fresh_metrics_directory(monkeypatch, tmp_path):
    """on_starting gives every master its own empty PROMETHEUS_MULTIPROC_DIR (a previous
    run's or another server's files would be summed into this one's /metrics)."""
    import os

    monkeypatch.setenv("PROMETHEUS_MULTIPROC_PARENT", str(tmp_path))
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", "/nonexistent/stale")
    conf = load(monkeypatch)
    conf._fresh_metrics_dir()
    first = os.environ["PROMETHEUS_MULTIPROC_DIR"]
    conf._fresh_metrics_dir()
    second = os.environ["PROMETHEUS_MULTIPROC_DIR"]
    assert first != second and first != "/nonexistent/stale"
    for path in (first, second):
        assert os.path.dirname(path) == str(tmp_path) and os.listdir(path) == []
