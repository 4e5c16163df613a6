"""The nginx front (deploy/, bin/serve) against slow clients, over real TLS on loopback.

gunicorn's gthread worker gives a connection a thread while its request is still arriving, so
a few dozen slow sockets (workers x threads = 16 by default) hold every thread: no card for
anyone, /healthz times out. Production therefore runs behind nginx, which buffers whole
requests and answers; `bin/serve` starts both the way production does.

- Without the front (the defect, kept as the control): a bounded slowloris against gunicorn
  directly makes a view and /healthz miss 2 s.
- With it: 200 header-drip sockets, 80 slow bodies and 50 idle sockets against nginx for 12 s,
  while a normal viewer gets the card, over https verified against the test's certificate,
  within 2 s every time, /healthz answers, and one client address cannot hold more requests
  than `limit_conn` allows. The app's security headers pass through unchanged.
- `bin/serve` stops both processes on SIGTERM, and stops gunicorn and exits 1 when nginx dies.

The attacker (slowloris.py) is its own process on 127.0.0.2; the viewer is 127.0.0.1.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from markupsafe import escape

from deploy import tls
from devtools.devportal.servers import free_port
from tests.concurrency.concurrency_harness import ROOT, Stack, gunicorns, running_stack, wait_until

pytestmark = pytest.mark.slow

NGINX = "/usr/sbin/nginx"
HERE = Path(__file__).resolve().parent
VIEW_LIMIT = 2.0  # the defect's bound: a normal viewer gets the card within 2 s
LEAD = 101


@pytest.fixture(scope="module", autouse=True)
def _nginx_installed() -> None:
    # Not a skip: the front is what production runs, and bin/test installs Debian's nginx.
    assert os.access(NGINX, os.X_OK), (
        f"{NGINX} is missing: bin/test installs Debian's nginx (apt-get install -y nginx)")


@pytest.fixture
def stack(tmp_path) -> Iterator[Stack]:
    """Portals installed through the real flow on the embedded SQLite default; the in-process
    server stopped so gunicorn can take the app port. The per-portal bucket is opened wide:
    the viewer's repeated views are not what this test is about."""
    with running_stack(tmp_path, f"sqlite:///{tmp_path}/leadcard.sqlite3",
                       B24_RATE_PER_SECOND="1000", B24_RATE_BURST="1000") as s:
        s.stop_serving()
        yield s


# --- the attacker -----------------------------------------------------------------------------


class Slowloris:
    """slowloris.py in its own process; `done()` waits for its counts."""

    def __init__(self, port: int, duration: float, tls_ca: Path | None = None,
                 **counts: int) -> None:
        args = [sys.executable, str(HERE / "slowloris.py"), str(port), "--duration", str(duration)]
        if tls_ca is not None:
            args += ["--tls-ca", str(tls_ca)]
        for name, n in counts.items():
            args += [f"--{name}", str(n)]
        self.duration = duration
        self.proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     stdin=subprocess.DEVNULL, text=True, start_new_session=True)
        assert self.proc.stdout is not None
        ready = self._line(timeout=30)
        assert ready.get("event") == "ready", ready
        self.ends_at = time.monotonic() + duration  # upper bound: its clock started earlier

    def _line(self, timeout: float) -> dict:
        found: list[str] = []
        reader = threading.Thread(target=lambda: found.append(self.proc.stdout.readline()),
                                  daemon=True)
        reader.start()
        reader.join(timeout)
        if not found or not found[0].startswith("{"):
            self.close()
            raise AssertionError(f"slowloris said nothing useful: {found!r} "
                                 f"{self.proc.stderr.read()[-2000:]}")
        return json.loads(found[0])

    def running(self) -> bool:
        return self.proc.poll() is None and time.monotonic() < self.ends_at

    def done(self) -> dict:
        result = self._line(timeout=self.duration + 15)
        assert result.get("event") == "done", result
        return result

    def close(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=5)


@contextlib.contextmanager
def slowloris(port: int, duration: float, **kw) -> Iterator[Slowloris]:
    attack = Slowloris(port, duration, **kw)
    try:
        yield attack
    finally:
        attack.close()


# --- bin/serve ------------------------------------------------------------------------------


class Serve:
    """`python -m deploy.serve` (what bin/serve runs) for a stack: gunicorn on the stack's app
    port behind nginx on `https://127.0.0.1:<port>`, with the test's certificate."""

    def __init__(self, stack: Stack, tmp_path: Path) -> None:
        self.cert, key = tls.self_signed(tmp_path / "tls", ["127.0.0.1", "localhost"])
        self.port = free_port()
        self.url = f"https://127.0.0.1:{self.port}"
        self.run_dir = tmp_path / "serve"
        self.log_path = tmp_path / "serve.log"
        env = stack.env(WEB_CONCURRENCY="2", GUNICORN_THREADS="8", GUNICORN_GRACEFUL_TIMEOUT="3",
                        GUNICORN_ACCESS_LOG="", TLS_CERT=str(self.cert), TLS_KEY=str(key))
        log = open(self.log_path, "w")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "deploy.serve", "--listen", f"127.0.0.1:{self.port}",
             "--app-port", str(stack.port), "--run-dir", str(self.run_dir)],
            cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            start_new_session=True)
        log.close()

    def wait_ready(self) -> Serve:
        def healthy() -> bool:
            assert self.proc.poll() is None, "bin/serve exited during start-up:\n" + self.log()
            try:
                return self.get("/healthz", timeout=1).status_code == 200
            except requests.RequestException:
                return False

        wait_until(healthy, 60, "nginx + gunicorn answering /healthz over https", interval=0.2)
        return self

    def get(self, path: str, timeout: float) -> requests.Response:
        return requests.get(self.url + path, timeout=timeout, verify=str(self.cert))

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-4000:]

    def nginx_master_pid(self) -> int:
        return int((self.run_dir / "nginx.pid").read_text())

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=45)
            except subprocess.TimeoutExpired:
                pass
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)  # stragglers of the group, if any
        self.proc.wait(timeout=5)


@contextlib.contextmanager
def serving(stack: Stack, tmp_path: Path) -> Iterator[Serve]:
    front = Serve(stack, tmp_path)
    try:
        yield front.wait_ready()
    finally:
        front.close()


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with contextlib.suppress(OSError):  # a zombie (exited, not yet reaped) is not alive
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().split(") ")[1].split()[0] != "Z"
    return True


# --- the viewer -----------------------------------------------------------------------------


def view(url: str, form: dict, timeout: float, **kw) -> tuple[str, float]:
    """POST the frame; "card" when the answer is the lead's card, else what went wrong."""
    started = time.monotonic()
    try:
        r = requests.post(url, data=form, timeout=timeout, allow_redirects=False, **kw)
    except requests.RequestException as exc:
        return type(exc).__name__, time.monotonic() - started
    elapsed = time.monotonic() - started
    if r.status_code == 200 and "lc-header__title" in r.text and form["_title"] in r.text:
        return "card", elapsed
    return f"status {r.status_code}", elapsed


def frame(stack: Stack, base_url: str) -> tuple[str, dict]:
    """The placement POST Bitrix24 sends for lead 101 of portal a, aimed at `base_url`."""
    url, form = stack.sim.placement_request("a", user_id=1, lead_id=LEAD)
    form = dict(form, _title=str(escape(stack.lead_title("a", LEAD))))
    return base_url + url[len(stack.app_url):], form


# --- the tests ------------------------------------------------------------------------------


def test_without_the_front_a_slowloris_starves_gunicorn(stack):
    """The defect, as the control: gunicorn alone, the default 2 workers x 8 threads."""
    with gunicorns(stack) as start:
        g = start(workers=2, threads=8)
        url, form = frame(stack, g.url)
        assert view(url, form, timeout=10)[0] == "card"
        with slowloris(stack.port, duration=6, headers=40, bodies=8, idle=20) as attack:
            time.sleep(1)
            outcome, elapsed = view(url, form, timeout=VIEW_LIMIT + 1)
            try:
                health = requests.get(g.url + "/healthz", timeout=VIEW_LIMIT).status_code
            except requests.RequestException as exc:
                health = type(exc).__name__
            attack.done()
        assert outcome != "card" or elapsed > VIEW_LIMIT, (outcome, elapsed)
        assert health != 200
        # Once the slow sockets are gone the same view works: it was only starved.
        assert view(url, form, timeout=10)[0] == "card"


def test_behind_nginx_a_viewer_gets_cards_through_a_slowloris(stack, tmp_path):
    with serving(stack, tmp_path) as front:
        url, form = frame(stack, front.url)
        verify = str(front.cert)
        outcome, _ = view(url, form, timeout=10, verify=verify)
        assert outcome == "card", outcome + "\n" + front.log()

        # nginx passes the app's security headers through and adds none of its own.
        direct = requests.post(stack.app_url + url[len(front.url):], data=form, timeout=10)
        proxied = requests.post(url, data=form, timeout=10, verify=verify)
        assert "X-Frame-Options" not in proxied.headers
        assert "Strict-Transport-Security" not in proxied.headers
        origin = stack.sim.portals["a"].base_url
        assert f"frame-ancestors {origin}" in proxied.headers["Content-Security-Policy"]
        for name in ("X-Content-Type-Options", "Referrer-Policy", "Cache-Control"):
            assert proxied.headers.get(name) == direct.headers.get(name), name
        assert proxied.headers["Server"] == "nginx"  # no version (server_tokens off)

        views: list[tuple[str, float]] = []
        health: list[tuple[object, float]] = []
        with slowloris(front.port, duration=12, tls_ca=front.cert,
                       headers=200, bodies=80, idle=50) as attack:
            time.sleep(1.5)  # let the drip start
            while attack.running() and len(views) < 40:
                views.append(view(url, form, timeout=VIEW_LIMIT + 3, verify=verify))
                started = time.monotonic()
                try:
                    status: object = front.get("/healthz", timeout=VIEW_LIMIT + 3).status_code
                except requests.RequestException as exc:
                    status = type(exc).__name__
                health.append((status, time.monotonic() - started))
                time.sleep(0.3)
            result = attack.done()

        counts, statuses = result["counts"], result["statuses"]
        # The attack was real: every socket opened and dripped; nginx cut the endless headers
        # (client_header_timeout) and refused bodies beyond limit_conn for the one address.
        assert counts["open_at_ready"] == 330, counts
        assert counts.get("closed_headers", 0) >= 100, counts
        assert statuses.get("429", 0) >= 16, statuses
        slow = [(o, round(t, 2)) for o, t in views if o != "card" or t > VIEW_LIMIT]
        assert not slow, f"views that missed the card within {VIEW_LIMIT} s: {slow} of {views}"
        assert len(views) >= 8, views
        bad = [(s, round(t, 2)) for s, t in health if s != 200 or t > VIEW_LIMIT]
        assert not bad, f"/healthz during the attack: {bad}"

        # SIGTERM stops nginx and gunicorn, and bin/serve exits 0.
        nginx_pid = front.nginx_master_pid()
        front.proc.send_signal(signal.SIGTERM)
        assert front.proc.wait(timeout=45) == 0, front.log()
        assert not alive(nginx_pid)
        with pytest.raises(requests.ConnectionError):
            requests.get(stack.app_url + "/healthz", timeout=2)


def test_serve_stops_gunicorn_and_fails_when_nginx_dies(stack, tmp_path):
    with serving(stack, tmp_path) as front:
        os.kill(front.nginx_master_pid(), signal.SIGKILL)
        assert front.proc.wait(timeout=30) == 1, front.log()
        assert "nginx exited" in front.log()
        with pytest.raises(requests.ConnectionError):
            requests.get(stack.app_url + "/healthz", timeout=2)
