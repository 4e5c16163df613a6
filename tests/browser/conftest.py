"""Browser harness: real Chromium, real gunicorn, the devportal simulator, all on 127.0.0.1.

Per test module: a started ``Simulator`` and Lead Card served by gunicorn in a subprocess
(exactly as ``devtools/demo.py`` runs it) on a free port, with a throw-away SQLite database
and a freshly generated token key.  ``installed`` installs the app on portal "a" once per
module (the real install POST + ``finish_install``; ``test_install.py`` clicks through the
marketplace page instead).  One Chromium per session; every test gets its own context and
a ``Watch`` that records console messages, page errors, dialogs, CSP violations, failed
responses and any request that tries to leave 127.0.0.1 (Chromium resolves no other host).
``assert_page_assets`` covers what a plain page load does not show: a missing favicon of a
top-level page and a missing source map (DevTools fetches those only when it is open).
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time

import pytest
import requests
from cryptography.fernet import Fernet

from browser_helpers import (CHROMIUM, CHROMIUM_ARGS, CLIENT_ID, CLIENT_SECRET, REPO, AppServer,
                             Watch, new_page)
from devtools.devportal import Simulator
from devtools.devportal.servers import free_port


# --- environment -------------------------------------------------------------------------

@pytest.fixture(scope="session", autouse=True)
def _chromium_present():
    if not os.path.exists(CHROMIUM):
        pytest.skip(f"{CHROMIUM} is not installed (Debian package 'chromium'); "
                    "the browser suite needs a real Chromium")


@pytest.fixture(scope="session")
def browser():
    from playwright.sync_api import sync_playwright

    pw = sync_playwright().start()
    b = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
    yield b
    b.close()
    pw.stop()


# --- simulator + gunicorn per module -----------------------------------------------------

@pytest.fixture(scope="module")
def app_port() -> int:
    return free_port()


@pytest.fixture(scope="module")
def sim(app_port):
    simulator = Simulator(app_url=f"http://127.0.0.1:{app_port}", client_id=CLIENT_ID,
                          client_secret=CLIENT_SECRET)
    simulator.start()
    yield simulator
    simulator.stop()


@pytest.fixture(scope="module")
def app_server(sim, app_port, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("leadcard-gunicorn")
    url = f"http://127.0.0.1:{app_port}"
    env = dict(
        os.environ,
        **sim.app_settings(),
        SECRET_KEY="browser-suite-secret-key-" + "k" * 24,
        DATABASE_URL=f"sqlite:///{tmp}/leadcard.sqlite3",
        INSTANCE_PATH=str(tmp / "instance"),
        TOKEN_KEYS=Fernet.generate_key().decode(),
        HOST="127.0.0.1",
        PORT=str(app_port),
        WEB_CONCURRENCY="2",
        GUNICORN_ACCESS_LOG="-",
        LOG_LEVEL="INFO",
    )
    env.pop("REDIS_URL", None)
    log_path = tmp / "gunicorn.log"
    log = open(log_path, "wb")
    proc = subprocess.Popen([sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py"],
                            cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT)
    server = AppServer(url, proc, log_path)
    try:
        deadline = time.monotonic() + 30
        while True:
            if proc.poll() is not None:
                pytest.fail(f"gunicorn exited during start-up:\n{server.log()[-3000:]}")
            try:
                if requests.get(url + "/healthz", timeout=1).status_code == 200:
                    break
            except requests.RequestException:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"Lead Card did not become healthy:\n{server.log()[-3000:]}")
            time.sleep(0.1)
        yield server
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)   # gunicorn's quick shutdown; TERM waits for views in flight
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        log.close()


@pytest.fixture(scope="module")
def installed(sim, app_server):
    """Portal "a" with Lead Card installed through the real install POST + installFinish."""
    url, form = sim.install_request("a", user_id=1)
    response = requests.post(url, data=form, timeout=30, allow_redirects=False)
    assert response.status_code == 200, response.text[:500]
    assert sim.finish_install("a") in (200, 201)
    assert sim.bindings("a")["placements"], "install did not bind CRM_LEAD_DETAIL_TAB"
    return sim.portals["a"]


@pytest.fixture(autouse=True)
def _server_log_clean(request):
    """No traceback / ERROR line in gunicorn's log while a test ran."""
    if "app_server" not in request.fixturenames:
        yield
        return
    server: AppServer = request.getfixturevalue("app_server")
    start = server.log_size()
    yield
    new = server.log_since(start)
    bad = [line for line in new.splitlines()
           if "Traceback" in line or re.search(r"\b(ERROR|CRITICAL)\b", line)]
    assert not bad, "gunicorn logged errors during the test:\n" + "\n".join(bad[:20])


@pytest.fixture
def watch() -> Watch:
    return Watch()


@pytest.fixture
def make_page(browser, watch, request):
    """``make_page(width=1200)`` → a page in a fresh context; closed after the test."""
    contexts = []
    app_url = None
    if "app_server" in request.fixturenames:
        app_url = request.getfixturevalue("app_server").url

    def make(width: int = 1200, height: int = 900):
        context, page = new_page(browser, watch, app_url, width, height)
        contexts.append(context)
        return page

    yield make
    for c in contexts:
        c.close()


@pytest.fixture
def page(make_page):
    return make_page()


