"""The Bitrix24 simulator (devtools/devportal) for a harness: in this process or in its own.

`new_simulator` builds one in this process with the test registration (tests then read and
change its world directly); `SimulatorProcess` runs `python -m devtools.devportal` (or the
bench's keep-alive variant) in its own process — its own GIL, as a real portal would be —
driven over its /_sim/ control API.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import requests

from devtools.devportal import Simulator
from devtools.devportal.servers import free_port
from devtools.harness.settings import CLIENT_ID, CLIENT_SECRET, ROOT, inherited_env


def free_ports(n: int) -> list[int]:
    """``n`` distinct ports for servers started later (see devportal.servers.free_port)."""
    ports: list[int] = []
    while len(ports) < n:
        port = free_port()
        if port not in ports:
            ports.append(port)
    return ports


def new_simulator(app_url: str, **kw: Any) -> Simulator:
    """A simulator (not started) whose registered app is ``app_url`` with the test
    registration (settings.CLIENT_ID / CLIENT_SECRET); ``kw`` as for `Simulator`."""
    return Simulator(app_url=app_url, client_id=CLIENT_ID, client_secret=CLIENT_SECRET, **kw)


class SimulatorProcess:
    """`python -m <module>` serving the simulator on three free loopback ports."""

    def __init__(self, app_url: str, log_path: Path, module: str = "devtools.devportal",
                 client_id: str = CLIENT_ID, client_secret: str = CLIENT_SECRET) -> None:
        self.oauth_port, p1, p2 = free_ports(3)
        self.url = f"http://127.0.0.1:{self.oauth_port}"
        self.log_path = Path(log_path)
        self.cmd = [sys.executable, "-m", module, "--app-url", app_url,
                    "--client-id", client_id, "--client-secret", client_secret,
                    "--oauth-port", str(self.oauth_port), "--portal-ports", f"{p1},{p2}", "--json"]
        self.proc: subprocess.Popen | None = None
        self.info: dict = {}

    def start(self, timeout: float = 30.0) -> SimulatorProcess:
        """Start and wait until the OAuth server and every portal server answer."""
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        env = inherited_env()
        env["PYTHONPATH"] = str(ROOT)
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(self.cmd, cwd=ROOT, env=env, stdout=log,
                                         stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                         start_new_session=True)
        deadline = time.monotonic() + timeout
        with requests.Session() as http:
            http.trust_env = False
            while True:
                if self.proc.poll() is not None:
                    raise RuntimeError(f"simulator exited during start-up; see {self.log_path}")
                try:
                    self.info = http.get(self.url + "/_sim/portals", timeout=2).json()
                    # the OAuth server answers before the portal servers have bound their ports
                    if all(not p["domain"].endswith(":0") for p in self.info["portals"]):
                        return self
                except requests.RequestException:
                    pass
                if time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError(f"simulator did not start within {timeout:g}s; "
                                       f"see {self.log_path}")
                time.sleep(0.1)

    def portal(self, name: str) -> dict:
        """A portal's description from /_sim/portals (domain, client_endpoint, member_id …)."""
        return next(p for p in self.info["portals"] if p["name"] == name)

    @property
    def pid(self) -> int:
        assert self.proc is not None, "not started"
        return self.proc.pid

    def stop(self, timeout: float = 15.0) -> None:
        """SIGTERM to its group (it stops its servers), SIGKILL after ``timeout``."""
        if self.proc is None:
            return
        for sig, wait in ((signal.SIGTERM, timeout), (signal.SIGKILL, 5.0)):
            try:
                os.killpg(self.proc.pid, sig)
            except ProcessLookupError:
                pass
            try:
                self.proc.wait(timeout=wait)
                return
            except subprocess.TimeoutExpired:
                continue
