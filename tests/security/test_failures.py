"""Every failure a user can meet, driven through the simulator (threats.md §4.2 F1–F20).

Each test asserts the in-frame page: HTTP status, the problem code the page carries
(`data-problem`) and the translated title from problems.py, and that no trace, framework
page or upstream HTML reaches the user. Attempts are counted at the simulator (or on the
wire where the simulator only records a request after answering it).
"""

from __future__ import annotations

import json
import os
import shutil
import time
import uuid

import pytest
import requests
import sqlalchemy as sa

from leadcard.storage.portals import ACTIVE, PAYMENT_REQUIRED, REAUTH_REQUIRED
from tests.security.harness import (
    TcpProxy,
    app_settings,
    assert_designed_page,
    assert_no_trace,
    install_portal,
    placement,
    start_app,
)

READ_TIMEOUT = 1.0
BUDGET = 3.0


@pytest.fixture
def app_overrides():
    # Small timeouts so a hanging Bitrix24 costs the suite about a second, not ten.
    return {"B24_CONNECT_TIMEOUT": "1", "B24_READ_TIMEOUT": str(READ_TIMEOUT),
            "VIEW_BUDGET_SECONDS": str(BUDGET)}


@pytest.fixture
def sqlite_url(tmp_path):
    # Own directory, so the database-down test can make it disappear.
    return f"sqlite:///{tmp_path}/db/leadcard.sqlite3"


def portal_requests(sim, name="a"):
    return sim.stats()["portals"][name]["rest_requests"]


def token_calls(sim, grant_type="refresh_token"):
    return sim.stats()["token_calls"].get(grant_type, 0)


def timed(fn):
    start = time.monotonic()
    response = fn()
    return response, time.monotonic() - start


# --- F1: timeout ---------------------------------------------------------------------------

def test_portal_timeout_answers_504_within_budget(sim, live_app, installed, egress):
    sim.set_fault("a", "*", "hang", seconds=4 * READ_TIMEOUT, count=None)
    mark = egress.mark()
    response, elapsed = timed(lambda: placement(sim, live_app, 101))
    assert_designed_page(live_app, response, "portal_timeout", 504)
    assert elapsed < BUDGET, elapsed
    assert elapsed >= READ_TIMEOUT * 0.9
    # A read timeout is not retried: one request went to the portal.
    # (Counted on the wire: the simulator records a request only once it has answered.)
    sent = [e for e in egress.outbound(mark) if e.kind == "send" and e.peer[1] == installed.port
            and e.data.startswith(b"POST /rest/")]
    assert len(sent) == 1, egress.request_lines(mark)


# --- F2: drop, 5xx, HTML -------------------------------------------------------------------

def test_connection_drop_is_retried_once_then_502(sim, live_app, installed):
    sim.set_fault("a", "*", "drop", count=None)
    before = portal_requests(sim)
    response = placement(sim, live_app, 101)
    assert_designed_page(live_app, response, "portal_error", 502)
    assert portal_requests(sim) - before == 2


def test_5xx_json_then_html_is_retried_once_then_502(sim, live_app, installed):
    sim.inject_error("a", "*", "INTERNAL_SERVER_ERROR", count=1)
    sim.set_fault("a", "*", "html", status=502, count=1)
    before = portal_requests(sim)
    response = placement(sim, live_app, 101)
    assert_designed_page(live_app, response, "portal_error", 502)
    assert portal_requests(sim) - before == 2
    # The portal is fine again: the next view renders.
    lead = sim.sample_lead("a", "rich")
    again = placement(sim, live_app, lead["ID"])
    assert again.status_code == 200 and lead["TITLE"] in again.text


def test_html_error_page_is_never_echoed(sim, live_app, installed):
    marker = f"PORTAL-HTML-{uuid.uuid4().hex}"
    body = f"<html><body><h1>Bad Gateway</h1><script>alert('{marker}')</script>nginx</body></html>"
    sim.set_fault("a", "*", "html", status=502, body=body, count=None)
    response = placement(sim, live_app, 101)
    assert_designed_page(live_app, response, "portal_error", 502)
    assert marker not in response.text
    assert "nginx" not in response.text and "Bad Gateway" not in response.text


def test_html_with_200_status_is_a_portal_error(sim, live_app, installed):
    sim.set_fault("a", "*", "html", status=200, body="<html>maintenance</html>", count=None)
    response = placement(sim, live_app, 101)
    assert_designed_page(live_app, response, "portal_error", 502)
    assert "maintenance" not in response.text


# --- F3/F4: limits -------------------------------------------------------------------------

def test_query_limit_twice_then_success_renders_after_backoff(sim, live_app, installed):
    lead = sim.sample_lead("a", "rich")
    sim.inject_error("a", "*", "QUERY_LIMIT_EXCEEDED", count=2)
    before = portal_requests(sim)
    response, elapsed = timed(lambda: placement(sim, live_app, lead["ID"]))
    assert response.status_code == 200, response.text[:300]
    assert lead["TITLE"] in response.text
    assert portal_requests(sim) - before == 3
    assert 1.0 < elapsed < BUDGET  # backed off (0.5 s + 1 s, jittered) within the budget


def test_query_limit_permanent_is_503_with_retry_after_and_three_attempts(sim, live_app, installed):
    sim.inject_error("a", "*", "QUERY_LIMIT_EXCEEDED", count=None)
    before = portal_requests(sim)
    response, elapsed = timed(lambda: placement(sim, live_app, 101))
    assert_designed_page(live_app, response, "rate_limited", 503)
    assert int(response.headers["Retry-After"]) >= 1
    assert portal_requests(sim) - before == 3
    assert elapsed < BUDGET


def test_operation_time_limit_is_not_retried(sim, live_app, installed):
    sim.inject_error("a", "*", "OPERATION_TIME_LIMIT", count=None)
    before = portal_requests(sim)
    response = placement(sim, live_app, 101)
    assert_designed_page(live_app, response, "operation_limit", 503)
    assert portal_requests(sim) - before == 1


# --- F6/F7: the viewer's token -------------------------------------------------------------

def test_expired_viewer_token_is_renewed_once_and_stored_chain_untouched(sim, live_app, installed):
    store = live_app.store
    stored = store.credentials(installed.member_id)
    lead = sim.sample_lead("a", "rich")
    url, form = sim.placement_request("a", user_id=1, lead_id=lead["ID"])
    sim.expire_access_token(form["AUTH_ID"])
    before = token_calls(sim)
    response = live_app.post(url, form)
    assert response.status_code == 200 and lead["TITLE"] in response.text
    assert token_calls(sim) - before == 1
    after = store.credentials(installed.member_id)
    assert (after.version, after.access_token, after.refresh_token) == (
        stored.version, stored.access_token, stored.refresh_token)


def test_viewer_refresh_refused_shows_session_expired(sim, live_app, installed):
    url, form = sim.placement_request("a", user_id=1, lead_id=101)
    sim.expire_access_token(form["AUTH_ID"])
    sim.inject_error("oauth", "token", "invalid_grant", count=None)
    before = token_calls(sim)
    response = live_app.post(url, form)
    assert_designed_page(live_app, response, "session_expired", 401)
    assert token_calls(sim) - before == 1  # one attempt, no loop
    portal = live_app.store.get(installed.member_id)
    assert portal.status == ACTIVE  # the viewer's chain is not the stored one


def test_expired_viewer_token_without_refresh_id_is_session_expired(sim, live_app, installed):
    url, form = sim.placement_request("a", user_id=1, lead_id=101)
    sim.expire_access_token(form["AUTH_ID"])
    form.pop("REFRESH_ID")
    before = token_calls(sim)
    response = live_app.post(url, form)
    assert_designed_page(live_app, response, "session_expired", 401)
    assert token_calls(sim) == before


@pytest.mark.parametrize("how", ["unknown_token", "injected_invalid_token"])
def test_invalid_viewer_token_is_401_card(sim, live_app, installed, how):
    overrides = {}
    if how == "unknown_token":
        overrides["AUTH_ID"] = uuid.uuid4().hex * 2
    else:
        sim.inject_error("a", "*", "invalid_token", count=None)
    before_tokens = dict(sim.stats()["token_calls"])
    response = placement(sim, live_app, 101, **overrides)
    assert_designed_page(live_app, response, "not_verified", 401)  # threats.md F7
    assert sim.stats()["token_calls"] == before_tokens  # nothing renewed


# --- F9: the stored grant is revoked; reconnect ----------------------------------------------

def test_stored_grant_invalid_grant_marks_reauth_and_reconnect_works(sim, live_app, installed,
                                                                    egress):
    store, member_id = live_app.store, installed.member_id
    runner = live_app.app.test_cli_runner()
    sim.expire_access_token(store.credentials(member_id).access_token)
    sim.inject_error("oauth", "token", "invalid_grant", count=None)
    result = runner.invoke(args=["portals", "check"])
    assert result.exit_code == 1 and "token_revoked" in result.output
    portal = store.get(member_id)
    assert portal.status == REAUTH_REQUIRED and portal.has_tokens  # row kept
    sim.clear_faults()

    # Users keep working with their own AUTH_ID meanwhile (F9).
    lead = sim.sample_lead("a", "rich")
    card = placement(sim, live_app, lead["ID"])
    assert card.status_code == 200 and lead["TITLE"] in card.text

    # An administrator reconnects: /reconnect → the portal's authorize page with a state.
    start = live_app.get(f"/reconnect?member_id={member_id}")
    assert start.status_code == 302
    location = start.headers["Location"]
    assert location.startswith(f"{installed.base_url}/oauth/authorize/?")
    assert f"client_id={live_app.services.settings.client_id}" in location
    assert "state=" in location
    assert "Set-Cookie" not in start.headers
    with egress.ignored():  # the browser follows the redirect to the portal
        authorize = requests.get(location, allow_redirects=False, timeout=10)
    assert authorize.status_code == 302
    callback = authorize.headers["Location"]
    assert callback.startswith(f"{live_app.url}/oauth/callback?")
    version = store.get(member_id).token_version
    done = requests.get(callback, allow_redirects=False, timeout=10)
    assert done.status_code == 200, done.text[:300]
    assert_no_trace(done)
    portal = store.get(member_id)
    assert portal.status == ACTIVE and portal.token_version == version + 1
    assert token_calls(sim, "authorization_code") == 1
    result = runner.invoke(args=["portals", "check"])
    assert result.exit_code == 0, result.output  # the new grant works

    # The state is single-use: replaying the callback changes nothing.
    replay = requests.get(callback, allow_redirects=False, timeout=10)
    assert_designed_page(live_app, replay, "not_verified", 403)
    assert token_calls(sim, "authorization_code") == 1
    assert store.get(member_id).token_version == version + 1
    # A state made up by someone else is refused the same way.
    forged = callback.split("state=")[0] + "state=" + uuid.uuid4().hex
    assert requests.get(forged, allow_redirects=False, timeout=10).status_code == 403
    # client_secret only ever went to the OAuth server.
    oauth_port = sim.world.oauth_port
    secret = live_app.services.settings.client_secret.encode()
    assert secret in egress.sent_to(oauth_port)
    assert secret not in egress.sent_anywhere_but({oauth_port})


def test_reconnect_for_unknown_portal_is_refused(sim, live_app):
    response = live_app.get(f"/reconnect?member_id={'f' * 32}")
    assert_designed_page(live_app, response, "not_installed", 403)


# --- F11/F12/F17: answers that end the view ---------------------------------------------------

@pytest.mark.parametrize(
    ("error", "code", "status"),
    [
        ("PAYMENT_REQUIRED", "payment_required", 403),
        ("user_access_error", "user_access", 403),
        ("insufficient_scope", "insufficient_scope", 403),
        ("METHOD_CONFIRM_WAITING", "insufficient_scope", 403),
        ("ACCESS_DENIED", "access_denied", 403),
        ("NOT_INSTALLED", "app_not_installed", 403),
        ("PORTAL_DELETED", "portal_closed", 503),
    ],
)
def test_rest_errors_end_the_view_without_retry(sim, live_app, installed, error, code, status):
    sim.inject_error("a", "*", error, count=None)
    before = portal_requests(sim)
    response = placement(sim, live_app, 101)
    assert_designed_page(live_app, response, code, status)
    assert portal_requests(sim) - before == 1
    portal = live_app.store.get(installed.member_id)
    assert portal.status == ACTIVE and portal.has_tokens  # PORTAL_DELETED is not deletion


def test_payment_required_from_the_oauth_server(sim, live_app):
    # (a) while installing: the OAuth server refuses the installer's token.
    url, form = sim.install_request("a", user_id=1)
    sim.inject_error("oauth", "app.info", "PAYMENT_REQUIRED", count=1)
    response = live_app.post(url, form)
    assert_designed_page(live_app, response, "payment_required", 403)
    assert live_app.store.get(sim.portals["a"].member_id) is None
    installed = install_portal(sim, live_app, "a")
    store = live_app.store

    # (b) the viewer's renewal is refused with PAYMENT_REQUIRED.
    url, form = sim.placement_request("a", user_id=1, lead_id=101)
    sim.expire_access_token(form["AUTH_ID"])
    sim.inject_error("oauth", "token", "PAYMENT_REQUIRED", count=1)
    response = live_app.post(url, form)
    assert_designed_page(live_app, response, "payment_required", 403)

    # (c) the stored grant's refresh: the portal is marked, one token call, no loop.
    sim.expire_access_token(store.credentials(installed.member_id).access_token)
    sim.inject_error("oauth", "token", "PAYMENT_REQUIRED", count=None)
    before = token_calls(sim)
    result = live_app.app.test_cli_runner().invoke(args=["portals", "check"])
    assert result.exit_code == 1 and "payment_required" in result.output
    assert token_calls(sim) - before == 1
    assert store.get(installed.member_id).status == PAYMENT_REQUIRED


# --- F15: portal moved -----------------------------------------------------------------------

def test_portal_moved_is_confirmed_by_the_oauth_server_before_any_token_goes_there(
        sim, live_app, installed, egress, caplog):
    store, member_id = live_app.store, installed.member_id
    old_port = installed.port
    new_base = sim.move_portal("a")
    new_port = sim.portals["a"].port
    assert new_port != old_port
    lead = sim.sample_lead("a", "rich")
    url, form = sim.placement_request("a", user_id=1, lead_id=lead["ID"])
    mark = egress.mark()
    with caplog.at_level("WARNING", logger="leadcard"):
        response = live_app.post(url, form)
    assert response.status_code == 200, response.text[:300]
    assert lead["TITLE"] in response.text
    portal = store.get(member_id)
    assert portal.client_endpoint == f"{new_base}/rest/"
    assert portal.domain == new_base.split("://", 1)[1]
    assert f"frame-ancestors {new_base}" in response.headers["Content-Security-Policy"]
    assert any("moved" in r.getMessage() for r in caplog.records)

    # On the wire: old host (302) → OAuth server app.info → only then the new host.
    sends = [e for e in egress.outbound(mark) if e.kind == "send"]
    oauth_port = sim.world.oauth_port
    first_new = min(e.seq for e in sends if e.peer[1] == new_port)
    app_info = [e.seq for e in sends if e.peer[1] == oauth_port and b"/rest/app.info" in e.data]
    assert app_info and app_info[0] < first_new
    assert any(e.peer[1] == old_port for e in sends if e.seq < app_info[0])
    token = form["AUTH_ID"].encode()
    assert not any(token in e.data for e in sends if e.peer[1] == new_port and e.seq < app_info[0])
    assert sim.stats()["portals"]["a"]["redirects"] == 1
    # The next view goes straight to the new host.
    before = sim.stats()["portals"]["a"]["redirects"]
    assert placement(sim, live_app, lead["ID"]).status_code == 200
    assert sim.stats()["portals"]["a"]["redirects"] == before


# --- F18: OAuth server down during install ----------------------------------------------------

@pytest.mark.parametrize("kind", ["drop", "html", "hang", "error"])
def test_oauth_server_down_during_install_is_designed_503(sim, live_app, kind):
    spec = {"count": None}
    if kind == "hang":
        spec["seconds"] = 3 * READ_TIMEOUT
    if kind == "error":
        spec.update(error="INTERNAL_SERVER_ERROR", status=500)
    sim.set_fault("oauth", "app.info", kind, **spec)
    url, form = sim.install_request("a", user_id=1)
    response, elapsed = timed(lambda: live_app.post(url, form))
    assert_designed_page(live_app, response, "oauth_unavailable", 503)
    assert elapsed < BUDGET
    assert live_app.store.get(sim.portals["a"].member_id) is None
    assert sim.stats()["portals"]["a"]["rest_requests"] == 0


# --- F19: database down ------------------------------------------------------------------------

def _db_down_checks(sim, live_app, installed):
    lead = sim.sample_lead("a", "rich")
    response, elapsed = timed(lambda: placement(sim, live_app, lead["ID"]))
    assert_designed_page(live_app, response, "db_unavailable", 503)
    assert elapsed < 3.0
    assert lead["TITLE"] not in response.text
    health, elapsed = timed(lambda: live_app.get("/healthz"))
    assert health.status_code == 503 and elapsed < 3.0
    assert health.json()["status"] == "error" and health.json()["database"] == "unavailable"
    event = live_app.post("/events", sim.onappuninstall_form("a"))
    assert event.status_code == 503
    assert event.json() == {"status": "error", "error": "db_unavailable"}
    url, form = sim.install_request("a", user_id=1)
    assert_designed_page(live_app, live_app.post(url, form), "db_unavailable", 503)


def _db_back_checks(sim, live_app, installed):
    lead = sim.sample_lead("a", "rich")
    response = placement(sim, live_app, lead["ID"])
    assert response.status_code == 200 and lead["TITLE"] in response.text
    assert live_app.get("/healthz").status_code == 200
    assert live_app.store.get(installed.member_id).status == ACTIVE


def test_sqlite_database_unavailable_is_designed_503_and_recovers(sim, live_app, installed,
                                                                  sqlite_url):
    db_dir = os.path.dirname(sqlite_url.split("///", 1)[1])
    live_app.services.engine.dispose()
    shutil.move(db_dir, db_dir + ".away")
    with open(db_dir, "w") as blocker:  # the path can no longer be opened or created
        blocker.write("not a directory")
    try:
        _db_down_checks(sim, live_app, installed)
    finally:
        os.remove(db_dir)
        shutil.move(db_dir + ".away", db_dir)
    _db_back_checks(sim, live_app, installed)


def test_postgresql_unavailable_is_designed_503_and_recovers(sim, app_port, app_overrides):
    pg_url = os.environ.get("TEST_DATABASE_URL", "")
    if not pg_url:
        pytest.skip("needs TEST_DATABASE_URL=postgresql://…")
    from leadcard.core.config import normalise_database_url

    base = sa.engine.make_url(normalise_database_url(pg_url))
    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(base)
    with admin.begin() as conn:
        conn.exec_driver_sql(f"CREATE SCHEMA {schema}")
    proxy = TcpProxy((base.host or "127.0.0.1", base.port or 5432)).start()
    url = base.set(host="127.0.0.1", port=proxy.port).update_query_dict(
        {"options": f"-csearch_path={schema}"})
    live = start_app(app_settings(sim, app_port, url.render_as_string(hide_password=False),
                                  **app_overrides), app_port)
    try:
        installed = install_portal(sim, live, "a")
        proxy.stop()  # PostgreSQL "stops": connections die, new ones are refused
        try:
            _db_down_checks(sim, live, installed)
        finally:
            proxy.start()
        _db_back_checks(sim, live, installed)
    finally:
        live.stop()
        proxy.stop()
        with admin.begin() as conn:
            conn.exec_driver_sql(f"DROP SCHEMA {schema} CASCADE")
        admin.dispose()


def test_unexpected_exception_is_designed_500_page(sim, live_app, installed, monkeypatch):
    """F23: whatever breaks inside, the user sees the designed page with a support code."""
    from leadcard.card import build as cards

    def boom(*args, **kwargs):
        raise RuntimeError("secret internals " + json.dumps({"where": "build_card"}))

    monkeypatch.setattr(cards, "build_card", boom)
    response = placement(sim, live_app, 101)
    assert response.status_code == 500
    assert "data-problem=\"internal\"" in response.text
    assert "secret internals" not in response.text and "build_card" not in response.text
    for marker in ("Traceback", 'File "', "RuntimeError"):
        assert marker not in response.text
    assert response.headers["X-Request-Id"] in response.text  # the support code


def test_oauth_server_5xx_on_renewal_is_transient_not_a_revocation(sim, live_app, installed):
    """F18: a failing token endpoint neither ends the grant nor blames the credentials."""
    store, member_id = live_app.store, installed.member_id
    url, form = sim.placement_request("a", user_id=1, lead_id=101)
    sim.expire_access_token(form["AUTH_ID"])
    sim.inject_error("oauth", "token", "INTERNAL_SERVER_ERROR", status=500, count=None)
    response = live_app.post(url, form)
    assert_designed_page(live_app, response, "oauth_unavailable", 503)

    stored = store.credentials(member_id)
    sim.expire_access_token(stored.access_token)
    result = live_app.app.test_cli_runner().invoke(args=["portals", "check"])
    assert result.exit_code == 1 and "oauth_unavailable" in result.output
    portal = store.get(member_id)
    assert portal.status == ACTIVE and portal.token_version == stored.version
    sim.clear_faults()  # the server is back: the same stored refresh token still works
    assert live_app.app.test_cli_runner().invoke(args=["portals", "check"]).exit_code == 0
