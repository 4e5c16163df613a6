"""Operator CLI (`flask portals …`, `db upgrade`) and the app's own pages (/, /healthz)."""

from __future__ import annotations


import requests

from leadcard.tokens import ACTIVE, REAUTH_REQUIRED


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
    assert result.exit_code == 0 and "0002" in result.output


def test_healthz(live_app):
    response = requests.get(live_app.url + "/healthz", timeout=5)
    assert response.status_code == 200 and response.json() == {"status": "ok", "database": "ok"}


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
