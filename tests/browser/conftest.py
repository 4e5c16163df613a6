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

import pytest
import requests

from devtools.harness import StartupError, app_settings, free_port, new_simulator, sqlite_url
from tests.browser.browser_helpers import CHROMIUM, AppServer, Watch, new_page

# --- environment -------------------------------------------------------------------------

@pytest.fixture(scope="session", autouse=True)
def _chromium_present():
    if not os.path.exists(CHROMIUM):
        pytest.skip(f"{CHROMIUM} is not installed (Debian package 'chromium'); "
                    "the browser suite needs a real Chromium")


# `browser` (one Chromium for the whole run) is in tests/conftest.py: the simulator's own
# browser tests use it too, and two Playwright instances cannot share the test thread.


# --- simulator + gunicorn per module -----------------------------------------------------

@pytest.fixture(scope="module")
def app_port() -> int:
    return free_port()


@pytest.fixture(scope="module")
def sim(app_port):
    simulator = new_simulator(f"http://127.0.0.1:{app_port}")
    simulator.start()
    yield simulator
    simulator.stop()


@pytest.fixture(scope="module")
def app_server(sim, app_port, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("leadcard-gunicorn")
    settings = app_settings(app_url=f"http://127.0.0.1:{app_port}", oauth_url=sim.oauth_url,
                            database_url=sqlite_url(tmp), instance_path=tmp / "instance",
                            LOG_LEVEL="INFO")
    # SIGINT: gunicorn's quick shutdown; TERM would wait for views in flight.
    server = AppServer(settings, port=app_port, log_path=tmp / "gunicorn.log", workers=2,
                       stop_signal=signal.SIGINT, stop_timeout=15, GUNICORN_ACCESS_LOG="-")
    try:
        server.start(timeout=30)
    except StartupError as exc:
        pytest.fail(str(exc))
    try:
        yield server
    finally:
        server.stop()


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


