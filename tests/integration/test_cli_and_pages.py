"""Operator CLI (`flask portals …`, `db upgrade`) and the app's own pages (/, /healthz)."""

from __future__ import annotations

import re

import requests

from leadcard.storage.portals import ACTIVE, REAUTH_REQUIRED


def test_portals_list_shows_no_secrets(sim, live_app, installed):
    result = live_app.app.test_cli_runner().invoke(args=["portals", "list"])
    assert result.exit_code == 0
    assert installed.member_id in result.output and installed.domain in result.output
    creds = live_app.services.store.credentials(installed.member_id)
    assert creds.access_token not in result.output and creds.refresh_token not in result.output
    assert "1 portal(s)" in result.output


def test_portals_check_renews_expired_token_and_reports_failures(sim, live_app, installed):
    store = live_app.services.store
    runner = live_app.app.test_cli_runner()
    sim.expire_access_token(store.credentials(installed.member_id).access_token)
    before = sim.stats()["token_calls"].get("refresh_token", 0)
    result = runner.invoke(args=["portals", "check"])
    assert result.exit_code == 0, result.output
    assert f"ok   {installed.member_id}" in result.output
    assert sim.stats()["token_calls"].get("refresh_token", 0) == before + 1

    # The grant is revoked: check fails with a non-zero exit code and marks the portal.
    sim.expire_access_token(store.credentials(installed.member_id).access_token)
    sim.inject_error("oauth", "token", "invalid_grant", status=400, count=None)
    result = runner.invoke(args=["portals", "check"])
    assert result.exit_code == 1
    assert "FAIL" in result.output and "token_revoked" in result.output
    assert store.get(installed.member_id).status == REAUTH_REQUIRED


def test_portals_check_reports_an_undecryptable_row_and_goes_on(sim, live_app, installed):
    """Issue 10 defect 7: a row written under another key ring (a host started with the
    wrong TOKEN_KEYS) is one failing portal, not a traceback that ends the command."""
    import sqlalchemy as sa
    from cryptography.fernet import Fernet

    from leadcard.storage.keyring import KeyRing
    from leadcard.storage.portals import portals

    url, form = sim.install_request("b", user_id=1)
    assert live_app.post(url, form).status_code == 200
    assert sim.finish_install("b") in (200, 201)
    a, b = installed.member_id, sim.portals["b"].member_id
    foreign = KeyRing([Fernet.generate_key().decode()])
    with live_app.services.engine.begin() as conn:
        conn.execute(sa.update(portals).where(portals.c.member_id == a).values(
            access_token=foreign.encrypt("a-foreign-access"),
            refresh_token=foreign.encrypt("a-foreign-refresh"),
            application_token=foreign.encrypt("a-foreign-application-token")))

    result = live_app.app.test_cli_runner().invoke(args=["portals", "check"])
    assert result.exit_code == 1, result.output
    assert f"FAIL {a}" in result.output and "undecryptable_token" in result.output
    assert f"ok   {b}" in result.output  # the command went on to the next portal
    assert "Traceback" not in result.output
    assert isinstance(result.exception, SystemExit)  # exit 1, not an exception

    # A view of that portal is the designed page, not a 500.
    url, form = sim.placement_request("a", user_id=1, lead_id=101)
    page = requests.post(url, data=form, timeout=30)
    assert page.status_code == 503 and 'data-problem="db_unavailable"' in page.text


def test_portals_renew_older_than(sim, live_app, installed):
    store = live_app.services.store
    runner = live_app.app.test_cli_runner()
    version = store.get(installed.member_id).token_version
    result = runner.invoke(args=["portals", "renew", "--older-than", "30"])
    assert result.exit_code == 0 and "0 renewed" in result.output  # installed just now
    result = runner.invoke(args=["portals", "renew", "--older-than", "0"])
    assert result.exit_code == 0 and "1 renewed" in result.output, result.output
    assert store.get(installed.member_id).token_version == version + 1
    assert store.get(installed.member_id).status == ACTIVE


def test_db_upgrade_command(live_app):
    result = live_app.app.test_cli_runner().invoke(args=["db", "upgrade"])
    from leadcard.storage import db

    head = db.head_revision(live_app.services.engine)
    assert result.exit_code == 0 and f"revision {head}" in result.output


def test_healthz(live_app):
    response = requests.get(live_app.url + "/healthz", timeout=5)
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "database": "ok", "bucket": "ok"}  # no Redis here


def test_home_page_shows_connection_status(sim, live_app, installed):
    url, form = sim.app_request("a", user_id=1)
    response = live_app.post(url, form)
    assert response.status_code == 200
    assert installed.domain in response.text
    assert f"frame-ancestors {installed.base_url}" in response.headers["Content-Security-Policy"]


def test_home_page_reseeds_a_lost_grant(sim, live_app, installed):
    store = live_app.services.store
    store.mark(installed.member_id, REAUTH_REQUIRED, "token_revoked")
    url, form = sim.app_request("a", user_id=1)
    assert live_app.post(url, form).status_code == 200
    assert store.get(installed.member_id).status == ACTIVE
    assert store.credentials(installed.member_id).refresh_token == form["REFRESH_ID"]


def test_home_page_refuses_a_forged_token(sim, live_app, installed):
    url, form = sim.app_request("a", user_id=1)
    form["AUTH_ID"] = "forged" + "0" * 40
    response = live_app.post(url, form)
    assert response.status_code == 403
    assert "couldn&#39;t verify your Bitrix24 session" in response.text or \
        "couldn't verify your Bitrix24 session" in response.text
    assert "Access token valid until" not in response.text  # no status for unverified callers


def test_home_page_without_bitrix_context(live_app):
    response = requests.get(live_app.url + "/", timeout=5)
    assert response.status_code == 200
    assert "frame-ancestors 'none'" in response.headers["Content-Security-Policy"]


def test_unknown_path_and_method_get_designed_pages(live_app):
    response = requests.get(live_app.url + "/nope", timeout=5)
    assert response.status_code == 404 and "Traceback" not in response.text
    response = requests.get(live_app.url + "/placement", timeout=5)
    assert response.status_code == 405 and "<html" in response.text.lower()


def test_vendor_console_head_checks_and_a_person_opening_the_installer_url(live_app):
    """Bitrix24 Market's vendor console checks the application and installer URLs with HEAD
    and wants 200/301/302 (market/preparing-to-publish/faq.md); a person opening the
    installer URL in a browser gets the app's page, not 405."""
    for path in ("/", "/install"):
        head = requests.head(live_app.url + path, timeout=5, allow_redirects=False)
        assert head.status_code == 200, path
        assert head.text == ""
    page = requests.get(live_app.url + "/install", timeout=5)
    assert page.status_code == 200 and "<html" in page.text.lower()
    home = requests.get(live_app.url + "/", timeout=5).text
    nonce = re.compile(r'nonce="[^"]+"')
    assert nonce.sub("", page.text) == nonce.sub("", home)  # the home page
    assert "Set-Cookie" not in page.headers
    assert "frame-ancestors" in page.headers["Content-Security-Policy"]


def test_liveness_and_readiness_probes(live_app):
    live = requests.get(live_app.url + "/livez", timeout=5)
    assert (live.status_code, live.json()) == (200, {"status": "ok"})
    ready = requests.get(live_app.url + "/readyz", timeout=5)
    assert ready.status_code == 200 and ready.json()["status"] == "ok"
    assert ready.json() == requests.get(live_app.url + "/healthz", timeout=5).json()
