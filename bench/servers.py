"""The systems under test and the simulator, as the benchmark starts and drives them.

Both are started with devtools/harness: the app (Lead Card or the hand-made baseline) under
gunicorn with `AppProcess`, the simulator in its own process with `SimulatorProcess`
(its own GIL, like a real portal), driven over its /_sim/ control API.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests

from bench.config import PORTAL, VIEWER, Config
from devtools.harness import AppProcess, SimulatorProcess, app_settings, sqlite_url
from devtools.harness.settings import ROOT

PY = sys.executable


class Procs:
    """Every process this run started; `stop_all` ends them by id (and their own group).

    Servers (`AppProcess`, `SimulatorProcess`) are tracked with `track`; helper processes
    (storm drivers, py-spy) are started with `start`."""

    def __init__(self) -> None:
        self.items: list[subprocess.Popen] = []
        self.servers: list[Any] = []

    def track(self, server: Any) -> Any:
        self.servers.append(server)
        return server

    def stop_server(self, server: Any) -> None:
        server.stop()
        if server in self.servers:
            self.servers.remove(server)

    def start(self, cmd: list[str], **kw: Any) -> subprocess.Popen:
        proc = subprocess.Popen(cmd, cwd=ROOT, start_new_session=True, **kw)
        self.items.append(proc)
        return proc

    def stop(self, proc: subprocess.Popen, timeout: float = 15.0) -> None:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                try:  # the group we created for it (gunicorn workers included)
                    os.killpg(proc.pid, signal.SIGKILL)
                except OSError:
                    proc.kill()
                proc.wait(timeout=5)
        if proc in self.items:
            self.items.remove(proc)

    def stop_all(self) -> None:
        for proc in list(reversed(self.items)):
            with contextlib.suppress(Exception):  # best effort on the way out
                self.stop(proc)
        for server in list(reversed(self.servers)):
            with contextlib.suppress(Exception):
                self.stop_server(server)


# --- the simulator, as a subprocess driven over /_sim/ -----------------------------------------


# --- the simulator, as a subprocess driven over /_sim/ -----------------------------------------


class Sim:
    """The simulator's process (devtools/harness `SimulatorProcess`) and its control API."""

    def __init__(self, procs: Procs, app_url: str, log_path: Path, server: str = "keepalive",
                 lead_id: int = 101) -> None:
        # "keepalive": the same simulator behind an HTTP/1.1 keep-alive server (see
        # bench/keepalive_sim.py); "werkzeug": as shipped (Connection: close on every answer).
        module = "bench.keepalive_sim" if server == "keepalive" else "devtools.devportal"
        self.process = procs.track(SimulatorProcess(app_url, log_path, module=module))
        try:
            self.process.start()
        except RuntimeError as exc:
            raise SystemExit(str(exc)) from None
        self.proc = self.process.proc
        self.url = self.process.url
        self.info = self.process.info
        self.portal = self.process.portal(PORTAL)
        self.lead_id = lead_id
        self.http = requests.Session()
        self.http.trust_env = False

    def _post(self, path: str, body: dict | None = None) -> Any:
        r = self.http.post(self.url + "/_sim/" + path, json=body or {}, timeout=30)
        r.raise_for_status()
        return r.json()

    def knobs(self, portal: str | None = None, **values: Any) -> dict:
        return self._post("knobs", dict(values, **({"portal": portal} if portal else {})))

    def stats(self) -> dict:
        r = self.http.get(self.url + "/_sim/stats", timeout=30)
        r.raise_for_status()
        return r.json()

    def reset_stats(self) -> None:
        self._post("reset", {"stats": True, "rate": True})

    def install_request(self, user_id: int = 1) -> tuple[str, dict]:
        d = self._post("install_request", {"portal": PORTAL, "user_id": user_id})
        return d["url"], d["form"]

    def finish_install(self, user_id: int = 1) -> int:
        return int(
            self._post("finish_install", {"portal": PORTAL, "user_id": user_id})["delivery_status"]
        )

    def placement_request(
        self, user_id: int = VIEWER, lead_id: int | None = None
    ) -> tuple[str, dict]:
        d = self._post(
            "placement_request",
            {"portal": PORTAL, "user_id": user_id, "lead_id": lead_id or self.lead_id},
        )
        return d["url"], d["form"]

    def tokens(self, user_id: int = VIEWER) -> dict:
        return self._post("tokens", {"portal": PORTAL, "user_id": user_id})

    def edit_lead(self, lead_id: int, round_no: int) -> None:
        """Change the viewed lead as a user would (new title, new DATE_MODIFY)."""
        self._post("edit_lead", {"portal": PORTAL, "lead_id": lead_id,
                                 "fields": {"TITLE": f"Bench edit #{round_no}"}})

    def expire_token(self, access_token: str) -> None:
        self._post("expire_token", {"access_token": access_token})

    def close(self) -> None:
        self.http.close()


def counts(stats: dict) -> dict:
    """The counters the benchmark reads from one /_sim/stats answer."""
    portal = stats["portals"][PORTAL]
    return {
        "rest": portal["rest_requests"],
        "methods": dict(portal.get("rest_methods", {})),
        "batch_commands": dict(portal.get("batch_commands", {})),
        "rate_limited": portal.get("rate_limited", 0),
        "refresh": stats.get("token_calls", {}).get("refresh_token", 0),
        "token_statuses": dict(stats.get("oauth", {}).get("statuses", {})),
    }


# --- the app under gunicorn -------------------------------------------------------------------


@dataclass
class Subject:
    """One system under test: Lead Card or the baseline."""

    key: str
    title: str
    app_spec: str | None  # gunicorn WSGI app; None = gunicorn.conf.py's own (Lead Card)
    storm_driver: str  # bench.storm_driver target
    post_check: list[str]  # one real CLI run after the storm (stored grant still usable?)


SUBJECTS = {
    "leadcard": Subject(
        "leadcard",
        "Lead Card",
        None,
        "leadcard",
        [PY, "-m", "flask", "--app", "app", "portals", "check"],
    ),
    "baseline": Subject(
        "baseline",
        "baseline (hand-made)",
        "bench.baseline_app:create_app()",
        "baseline",
        [PY, "-m", "bench.baseline_app", "check"],
    ),
}


def app_env_settings(cfg: Config, subject: Subject, sim: Sim, app_url: str) -> dict[str, str]:
    """The subject's settings (the baseline reads the same names, plus BASELINE_STATE)."""
    folder = cfg.tmp / subject.key
    return app_settings(
        app_url=app_url, oauth_url=sim.url, database_url=sqlite_url(folder),
        instance_path=folder / "instance",
        # The app's own per-portal bucket (Bitrix24: 2 req/s, burst 50) would cap the
        # throughput phase at 2 views/s on one portal; it stays ON (its SQL cost is paid on
        # every upstream request) but with a rate that never makes anyone wait.
        B24_RATE_PER_SECOND=str(cfg.rate_per_second),
        B24_RATE_BURST=str(int(cfg.rate_per_second)),
        BASELINE_STATE=str(folder / "baseline_state.json"),
    )


def start_app(procs: Procs, cfg: Config, subject: Subject, sim: Sim, port: int) -> AppProcess:
    """The subject under gunicorn with the production settings file, healthy, all workers up."""
    url = f"http://127.0.0.1:{port}"
    app = procs.track(AppProcess(
        app_env_settings(cfg, subject, sim, url), port=port,
        log_path=cfg.tmp / subject.key / "gunicorn.log", workers=cfg.workers,
        threads=cfg.threads, app_spec=subject.app_spec, conf=cfg.gunicorn_conf,
        # --no-control-socket: gunicorn 27 otherwise takes over ~/.gunicorn/gunicorn.ctl, which
        # a developer's own gunicorn (bin/demo) may be using; nothing else differs from
        # production.
        args=["--no-control-socket"], stop_timeout=40, PYTHONUNBUFFERED="1",
    ))
    try:
        app.start(timeout=90)
    except RuntimeError as exc:
        raise SystemExit(f"{exc}\n(log: {app.log_path})") from None
    return app
