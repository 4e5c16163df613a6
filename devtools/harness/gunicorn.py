"""`AppProcess`: the app under gunicorn exactly as production runs it, for tests and the bench.

`python -m gunicorn -c gunicorn.conf.py [wsgi app]` on 127.0.0.1, in its own process group
(so its workers can be ended with it), with an environment built from explicit settings
(`settings.process_env`), its output captured in a log file, started once /healthz answers
200 and every worker is up, stopped by a signal to the whole group and SIGKILL after a
deadline.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

import requests

from devtools.harness.processes import children_of
from devtools.harness.settings import ROOT, process_env


class StartupError(RuntimeError):
    """The app process exited or did not become healthy in time (message: its log's tail)."""


class AppProcess:
    """One gunicorn master and its workers, serving ``settings`` on ``127.0.0.1:port``."""

    def __init__(self, settings: Mapping[str, str], *, port: int, log_path: Path,
                 workers: int = 2, threads: int | None = None, app_spec: str | None = None,
                 conf: str = "gunicorn.conf.py", args: Sequence[str] = (),
                 stop_signal: int = signal.SIGTERM, stop_timeout: float = 10.0,
                 **extra_env: str) -> None:
        """``app_spec``: a WSGI app other than gunicorn.conf.py's own (the bench's baseline);
        ``stop_signal``: what the group gets first (SIGINT: gunicorn's quick shutdown,
        SIGTERM: graceful); ``extra_env``: gunicorn knobs such as GUNICORN_ACCESS_LOG."""
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.log_path = Path(log_path)
        self.workers = workers
        self.stop_signal = stop_signal
        self.stop_timeout = stop_timeout
        knobs = {"HOST": "127.0.0.1", "PORT": str(port), "WEB_CONCURRENCY": str(workers)}
        if threads is not None:
            knobs["GUNICORN_THREADS"] = str(threads)
        self.env = process_env(settings, **knobs, **extra_env)
        self.cmd = [sys.executable, "-m", "gunicorn", "-c", conf, *args]
        if app_spec:
            self.cmd.append(app_spec)
        self.proc: subprocess.Popen | None = None

    # lifecycle
    def start(self, timeout: float = 30.0) -> "AppProcess":
        """Start and wait until /healthz answers 200 and all workers are up."""
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(self.cmd, cwd=ROOT, env=self.env, stdout=log,
                                         stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                         start_new_session=True)
        deadline = time.monotonic() + timeout
        while not self._healthy():
            if self.proc.poll() is not None:
                raise StartupError(f"gunicorn exited during start-up:\n{self.log()[-3000:]}")
            if time.monotonic() > deadline:
                self.stop()
                raise StartupError(f"Lead Card did not become healthy at {self.url} within "
                                   f"{timeout:g}s:\n{self.log()[-3000:]}")
            time.sleep(0.1)
        return self

    def _healthy(self) -> bool:
        try:
            ok = requests.get(self.url + "/healthz", timeout=1).status_code == 200
        except requests.RequestException:
            return False
        # /healthz may have been answered by the first worker while the others boot
        return ok and len(self.worker_pids()) >= self.workers

    def stop(self) -> None:
        """Signal the whole group (``stop_signal``), then SIGKILL whatever is left of it."""
        if self.proc is None:
            return
        try:
            os.killpg(self.proc.pid, self.stop_signal)
        except ProcessLookupError:
            pass
        try:
            self.proc.wait(timeout=self.stop_timeout)
        except subprocess.TimeoutExpired:
            pass
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)  # stragglers of the group, if any
        except ProcessLookupError:
            pass
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:  # pragma: no cover - SIGKILL cannot be ignored
            pass

    def __enter__(self) -> "AppProcess":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # what callers look at
    @property
    def pid(self) -> int:
        assert self.proc is not None, "not started"
        return self.proc.pid

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def worker_pids(self) -> list[int]:
        return children_of(self.pid)

    def pids(self) -> list[int]:
        """The master and its workers."""
        return [self.pid, *self.worker_pids()]

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def log_size(self) -> int:
        return self.log_path.stat().st_size

    def log_since(self, offset: int) -> str:
        with open(self.log_path, "rb") as fh:
            fh.seek(offset)
            return fh.read().decode(errors="replace")
