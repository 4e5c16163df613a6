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
from typing import Any

import requests

from devtools.harness.processes import children_of
from devtools.harness.settings import ROOT, process_env


class StartupError(RuntimeError):
    """The app process exited or did not become healthy in time (message: its log's tail)."""


class AppProcess:
    """One gunicorn master and its workers, serving ``settings`` on ``127.0.0.1:port``."""

    def __init__(self, settings: Mapping[str, str], *, port: int, log_path: Path | None,
                 workers: int = 2, threads: int | None = None, app_spec: str | None = None,
                 conf: str = "gunicorn.conf.py", args: Sequence[str] = (),
                 stop_signal: int = signal.SIGTERM, stop_timeout: float = 10.0,
                 **extra_env: str) -> None:
        """``app_spec``: a WSGI app other than gunicorn.conf.py's own (the bench's baseline);
        ``stop_signal``: what the group gets first (SIGINT: gunicorn's quick shutdown,
        SIGTERM: graceful); ``log_path`` None: the output goes to this process's own (the
        demo's terminal); ``extra_env``: gunicorn knobs such as GUNICORN_ACCESS_LOG."""
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.log_path = Path(log_path) if log_path is not None else None
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
    def start(self, timeout: float = 30.0) -> AppProcess:
        """Start and wait until /healthz answers 200 and all workers are up."""
        if self.log_path is None:
            self.proc = self._spawn(None)
        else:
            self.log_path.parent.mkdir(parents=True, exist_ok=True)
            with open(self.log_path, "ab") as log:
                self.proc = self._spawn(log)
        deadline = time.monotonic() + timeout
        while not self._healthy():
            if self.proc.poll() is not None:
                raise StartupError(f"gunicorn exited during start-up:\n{self._log_tail()}")
            if time.monotonic() > deadline:
                self.stop()
                raise StartupError(f"Lead Card did not become healthy at {self.url} within "
                                   f"{timeout:g}s:\n{self._log_tail()}")
            time.sleep(0.1)
        return self

    def _spawn(self, log: Any) -> subprocess.Popen:
        # its own session: the caller's Ctrl-C does not reach the workers behind its back,
        # and stop() can end the whole group
        return subprocess.Popen(self.cmd, cwd=ROOT, env=self.env, stdout=log,
                                stderr=subprocess.STDOUT if log else None,
                                stdin=subprocess.DEVNULL, start_new_session=True)

    def _log_tail(self) -> str:
        return self.log()[-3000:] if self.log_path else "(see its output above)"

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

    def __enter__(self) -> AppProcess:
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
        if self.log_path is None:
            return ""
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def log_size(self) -> int:
        assert self.log_path is not None, "output not captured"
        return self.log_path.stat().st_size

    def log_since(self, offset: int) -> str:
        assert self.log_path is not None, "output not captured"
        with open(self.log_path, "rb") as fh:
            fh.seek(offset)
            return fh.read().decode(errors="replace")
