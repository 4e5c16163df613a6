"""Harness for the concurrency, load and chaos tests: real OS processes, real HTTP on loopback.

- `Stack`: the simulator (in this process), the app's database, and an in-process app that
  installs portals through the real flow (install POST + ONAPPINSTALL over HTTP) and lets the
  test read and decrypt the store. Nothing between the app and the simulator is mocked.
- `Gunicorn`: the app exactly as production runs it (devtools/harness `AppProcess`:
  `gunicorn -c gunicorn.conf.py`, gthread workers, its own process group, stopped by group
  SIGTERM, then SIGKILL) with the stack's settings.
- `Driver`: one OS process (`stored_call.py`) that builds the app with `create_app()` and makes
  one REST call with the portal's *stored* grant, after an optional "go" on stdin so several
  drivers start their calls at the same instant.

Every loop here is bounded by a deadline; every process started here is killed by process group.
The settings, the launchers and the in-process server are devtools/harness; this module adds
what the concurrency suite needs on top (the stack's store, drivers, /proc socket counts).
"""

from __future__ import annotations

import collections
import contextlib
import json
import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
import sqlalchemy as sa

from devtools.harness import (
    AppProcess,
    Served,
    app_settings,
    free_port,
    new_simulator,
    process_env,
    wait_until,
)
from devtools.harness.settings import ROOT

__all__ = ["ROOT", "free_port", "wait_until"]

HERE = Path(__file__).resolve().parent

# Designed error pages: 5xx the app means to send (threats.md §4.2), each with a problem code.
DESIGNED_5XX = {502, 503, 504}
PROBLEM = re.compile(r'data-problem="([a-z_]+)"')


def problem_code(body: str) -> str | None:
    match = PROBLEM.search(body)
    return match.group(1) if match else None


# --- the stack: simulator + database + in-process app ------------------------------------------


class Stack:
    def __init__(self, tmp_path: Path, database_url: str, **extra: str) -> None:
        self.tmp_path = tmp_path
        # PostgreSQL sessions of this stack carry a unique application_name, so lock waits can
        # be counted for this test alone on a server other people use too.
        self.pg_application_name = f"leadcard_test_{uuid.uuid4().hex[:10]}"
        if not database_url.startswith("sqlite"):
            sep = "&" if "?" in database_url else "?"
            database_url = f"{database_url}{sep}application_name={self.pg_application_name}"
        self.database_url = database_url
        self.port = free_port()
        self.app_url = f"http://127.0.0.1:{self.port}"
        self.sim = new_simulator(self.app_url)
        # The grant journal (and any key file) of this stack stays in its tmp folder.
        self.settings: dict[str, str] = app_settings(
            app_url=self.app_url, oauth_url="", database_url=database_url,
            instance_path=tmp_path / "instance",
            **{"DB_AUTO_MIGRATE": "1", "LOG_LEVEL": "WARNING", **extra})
        del self.settings["B24_OAUTH_URL"]  # set by start(), once the simulator has its port
        self.app = None
        self._served: Served | None = None

    # lifecycle
    def start(self) -> Stack:
        from app import create_app

        self.sim.start()
        self.settings["B24_OAUTH_URL"] = self.sim.oauth_url
        self.app = create_app(self.settings)
        return self

    def serve(self) -> None:
        """Serve the in-process app on the app port (werkzeug, threaded)."""
        self._served = Served(self.app, self.port)

    def stop_serving(self) -> None:
        if self._served is not None:
            self._served.stop()
            self._served = None

    def close(self) -> None:
        self.stop_serving()
        if self.app is not None:
            self.svc.engine.dispose()
        self.sim.stop()

    # the app, as the tests see it
    @property
    def svc(self):  # type: ignore[no-untyped-def]
        return self.app.extensions["leadcard"]

    @property
    def store(self):  # type: ignore[no-untyped-def]
        return self.svc.store

    def member(self, portal: str) -> str:
        return self.sim.portals[portal].member_id

    def env(self, **extra: str) -> dict[str, str]:
        """Environment for an app process: this stack's settings, nothing from the shell."""
        return process_env(self.settings, **extra)

    def post(self, url: str, form: dict, timeout: float = 30, **kw: Any) -> requests.Response:
        if not url.startswith("http"):
            url = self.app_url + url
        return requests.post(url, data=form, timeout=timeout, allow_redirects=False, **kw)

    def install(self, portal: str) -> None:
        """The real flow: the installer frame POST, then the simulator delivers ONAPPINSTALL."""
        url, form = self.sim.install_request(portal, user_id=1)
        response = self.post(url, form)
        assert response.status_code == 200, response.text[:500]
        assert self.sim.finish_install(portal) in (200, 201)

    # stored grant
    def expire_stored(self, portal: str) -> int:
        """Expire the stored access token at the simulator and in the row; return its version."""
        from leadcard.storage.portals import portals

        member = self.member(portal)
        creds = self.store.credentials(member)
        self.sim.expire_access_token(creds.access_token)
        with self.svc.engine.begin() as conn:
            conn.execute(portals.update().where(portals.c.member_id == member)
                         .values(expires_at=time.time() - 600))
        return creds.version

    def assert_stored_pair_current(self, portal: str):  # type: ignore[no-untyped-def]
        """The row decrypts to the simulator's newest pair of the stored chain."""
        creds = self.store.credentials(self.member(portal))
        world = self.sim.world
        with world.lock:
            grant = world.grants_by_refresh.get(creds.refresh_token)
            assert grant is not None, "stored refresh token unknown to the OAuth server"
            assert not grant.refresh_used, "stored refresh token was already spent (grant lost)"
            assert grant.access_token == creds.access_token, "stored access/refresh are not a pair"
        world.check_access(creds.access_token, portal)  # raises unless REST accepts it
        return creds

    def token_stats(self) -> dict[str, int]:
        world = self.sim.world
        with world.lock:
            c = world.oauth_counters
            return {"refresh": int(c["token"].get("refresh_token", 0)),
                    "rotated": int(c["token_rotated"]), "aborted": int(c["token_aborted"])}

    def placement(self, portal: str, user_id: int, lead_id: int,
                  session: requests.Session | None = None, expire: bool = False,
                  timeout: float = 30) -> requests.Response:
        url, form = self.sim.placement_request(portal, user_id=user_id, lead_id=lead_id)
        if expire:
            self.sim.expire_access_token(form["AUTH_ID"])
        poster = session or requests
        return poster.post(url, data=form, timeout=timeout, allow_redirects=False)

    def lead_title(self, portal: str, lead_id: int) -> str:
        with self.sim.world.lock:
            return str(self.sim.world.portal(portal).leads[lead_id]["TITLE"])


@contextlib.contextmanager
def running_stack(tmp_path: Path, database_url: str, **extra: str) -> Iterator[Stack]:
    """Portals a and b installed through the real flow; the in-process app still serving."""
    s = Stack(tmp_path, database_url, **extra)
    try:
        s.start()
        s.serve()
        s.install("a")
        s.install("b")
        yield s
    finally:
        s.close()


@pytest.fixture
def stack(database_url, tmp_path):
    with running_stack(tmp_path, database_url) as s:
        yield s


# --- gunicorn -------------------------------------------------------------------------------


def rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    raise AssertionError(f"no VmRSS for {pid}")


def _established_to(port: int) -> set[str]:
    """Socket inodes of established TCP connections to 127.0.0.1:`port` (/proc/net/tcp)."""
    inodes = set()
    with open("/proc/net/tcp") as fh:
        next(fh)
        for line in fh:
            parts = line.split()
            remote, state, inode = parts[2], parts[3], parts[9]
            if state == "01" and int(remote.split(":")[1], 16) == port:
                inodes.add(inode)
    return inodes


def _socket_inodes(pid: int) -> set[str]:
    found = set()
    try:
        for fd in os.listdir(f"/proc/{pid}/fd"):
            try:
                target = os.readlink(f"/proc/{pid}/fd/{fd}")
            except OSError:
                continue
            if target.startswith("socket:["):
                found.add(target[8:-1])
    except OSError:
        pass
    return found


def pids_connected_to(pids: list[int], port: int) -> list[int]:
    """Which of `pids` hold an established TCP connection to 127.0.0.1:`port`."""
    inodes = _established_to(port)
    return [pid for pid in pids if _socket_inodes(pid) & inodes]


def connections_to(pids: list[int], port: int) -> int:
    """How many established TCP connections to 127.0.0.1:`port` the `pids` hold."""
    inodes = _established_to(port)
    return sum(len(_socket_inodes(pid) & inodes) for pid in pids)


class Gunicorn(AppProcess):
    """`python -m gunicorn -c gunicorn.conf.py` for a stack, on the stack's app port."""

    def __init__(self, stack: Stack, workers: int = 2, threads: int = 4, port: int | None = None,
                 **extra: str) -> None:
        """`port` other than the stack's: a second "host" sharing the database (APP_URL is
        still the stack's: the registered handler URL)."""
        super().__init__(stack.settings, port=port or stack.port,
                         log_path=stack.tmp_path / f"gunicorn-{uuid.uuid4().hex[:6]}.log",
                         workers=workers, threads=threads, GUNICORN_GRACEFUL_TIMEOUT="3",
                         GUNICORN_ACCESS_LOG="-", **extra)
        self.stack = stack


# An access-log line per request naming the worker pid (%(p)s), for tests that check which
# processes served a burst.
PID_ACCESS_LOG = {
    "GUNICORN_CMD_ARGS": "--access-logformat 'access pid=%(p)s status=%(s)s %(m)s %(U)s'"
}


def served_by(hosts: list[Gunicorn], path: str = "/placement") -> collections.Counter:
    """Requests for ``path`` per worker pid, from the access logs of gunicorns started with
    PID_ACCESS_LOG."""
    counts: collections.Counter = collections.Counter()
    for g in hosts:
        for line in g.log().splitlines():
            if "access pid=" in line and path in line:
                counts[line.split("access pid=")[1].split()[0]] += 1
    return counts


@contextlib.contextmanager
def gunicorns(stack: Stack) -> Iterator[Callable[..., Gunicorn]]:
    """Start gunicorns for `stack`; on the stack's own port the in-process server stops first."""
    started: list[Gunicorn] = []

    def start(**kw: Any) -> Gunicorn:
        if kw.get("port") in (None, stack.port):
            stack.stop_serving()
        g = Gunicorn(stack, **kw)
        started.append(g)
        return g.start()

    try:
        yield start
    finally:
        for g in started:
            g.stop()


@pytest.fixture
def gunicorn_factory(stack):
    with gunicorns(stack) as start:
        yield start


# --- one-call driver processes ----------------------------------------------------------------


class Driver:
    """One OS process running `stored_call.py`: builds the app, makes one stored-grant call."""

    def __init__(self, stack: Stack, member: str, wait_for_go: bool = True,
                 method: str = "app.info", pause_before_store: bool = False) -> None:
        self.log_path = stack.tmp_path / f"driver-{uuid.uuid4().hex[:6]}.log"
        args = [sys.executable, str(HERE / "stored_call.py"), member, "--method", method]
        if wait_for_go:
            args.append("--wait-for-go")
        if pause_before_store:
            args.append("--pause-before-store")
        log = open(self.log_path, "w")
        self.proc = subprocess.Popen(args, cwd=ROOT, env=stack.env(), stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=log, text=True,
                                     start_new_session=True)
        log.close()
        self._lines: queue.Queue = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            line = line.strip()
            if line.startswith("{"):
                self._lines.put(json.loads(line))
        self._lines.put({"event": "eof"})

    def expect(self, event: str, timeout: float) -> dict:
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"driver {self.proc.pid}: no {event!r} within {timeout}s; "
                                     f"stderr:\n{self.stderr()[-2000:]}")
            try:
                msg = self._lines.get(timeout=remaining)
            except queue.Empty:
                continue
            if msg.get("event") == event:
                return msg
            if msg.get("event") == "eof":
                raise AssertionError(f"driver {self.proc.pid} ended before {event!r}; "
                                     f"stderr:\n{self.stderr()[-2000:]}")

    def has_output(self) -> bool:
        return not self._lines.empty()

    def go(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write("go\n")
        self.proc.stdin.flush()

    def signal(self, sig: int) -> None:
        try:
            os.killpg(self.proc.pid, sig)
        except ProcessLookupError:
            pass

    def stderr(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def close(self) -> None:
        if self.proc.poll() is None:
            self.signal(signal.SIGKILL)
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:  # pragma: no cover
            pass


@pytest.fixture
def drivers():
    started: list[Driver] = []

    def start(stack: Stack, member: str, **kw: Any) -> Driver:
        d = Driver(stack, member, **kw)
        started.append(d)
        return d

    try:
        yield start
    finally:
        for d in started:
            d.close()


def pg_backends_waiting_on_lock(stack: Stack) -> int:
    """How many of this stack's app sessions wait on a lock right now (PostgreSQL only)."""
    from leadcard.core.config import normalise_database_url

    url = normalise_database_url(stack.database_url).replace(
        stack.pg_application_name, stack.pg_application_name + "_probe")
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as conn:
            return int(conn.exec_driver_sql(
                "SELECT count(*) FROM pg_stat_activity WHERE application_name = %(name)s "
                "AND wait_event_type = 'Lock'", {"name": stack.pg_application_name}
            ).scalar_one())
    finally:
        engine.dispose()
