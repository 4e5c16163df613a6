"""The whole path over real HTTP: install → ONAPPINSTALL → tab → refresh → uninstall."""

from __future__ import annotations

import time

from leadcard.storage.portals import ACTIVE, UNINSTALLED


def placement(sim, live_app, lead_id, user_id=1, lang="en", **overrides):
    url, form = sim.placement_request("a", user_id=user_id, lead_id=lead_id, lang=lang)
    form.update(overrides)
    return live_app.post(url, form)


def test_install_binds_tab_and_uninstall_event_once(sim, live_app, installed):
    store = live_app.services.store
    portal = store.get(installed.member_id)
    assert portal.status == ACTIVE and portal.placement_bound and portal.events_bound
    assert portal.domain == installed.domain
    # Installing again (admin re-runs the installer) must not duplicate bindings.
    url, form = sim.install_request("a", user_id=1)
    assert live_app.post(url, form).status_code == 200
    bindings = sim.bindings("a")
    tabs = [b for b in bindings["placements"] if b["placement"] == "CRM_LEAD_DETAIL_TAB"]
    assert [b["handler"] for b in tabs] == [live_app.url + "/placement"]
    events = [e for e in bindings["events"] if e["event"] == "ONAPPUNINSTALL"]
    assert [e["handler"] for e in events] == [live_app.url + "/events"]
    # ONAPPINSTALL (delivered by the simulator) stored the application_token.
    assert store.application_token_matches(installed.member_id, installed.application_token)


def test_install_page_finishes_installation_in_the_frame(sim, live_app):
    url, form = sim.install_request("a", user_id=1)
    response = live_app.post(url, form)
    assert response.status_code == 200
    assert 'data-lc-install="finish"' in response.text  # frame.js then calls installFinish()


def test_tab_shows_the_lead(sim, live_app, installed):
    lead = sim.sample_lead("a", "rich")
    response = placement(sim, live_app, lead["ID"])
    assert response.status_code == 200, response.text[:300]
    assert lead["TITLE"] in response.text
    csp = response.headers["Content-Security-Policy"]
    assert f"frame-ancestors {installed.base_url}" in csp
    assert "X-Frame-Options" not in response.headers
    assert "Set-Cookie" not in response.headers
    assert response.headers["Cache-Control"] == "no-store"


def test_user_without_rights_gets_no_access_card(sim, live_app, installed):
    lead = sim.sample_lead("a", "private")  # not readable by user 2
    response = placement(sim, live_app, lead["ID"], user_id=2)
    assert response.status_code == 403
    assert lead["TITLE"] not in response.text
    assert placement(sim, live_app, lead["ID"], user_id=1).status_code == 200


def test_missing_lead_and_bad_input(sim, live_app, installed):
    assert placement(sim, live_app, 987654).status_code == 404
    before = sim.stats()["rest_requests"]
    for options in ("", "{", '{"ID":"0"}', '{"ID":"abc"}', "[]"):
        response = placement(sim, live_app, 1, PLACEMENT_OPTIONS=options)
        assert response.status_code == 400
        assert "Traceback" not in response.text
    assert sim.stats()["rest_requests"] == before  # no upstream call for invalid input


def test_unknown_portal_gets_not_installed_card(sim, live_app):
    lead = sim.sample_lead("a", "rich")
    response = placement(sim, live_app, lead["ID"])
    assert response.status_code == 403
    assert lead["TITLE"] not in response.text


def test_expired_viewer_token_is_renewed_once(sim, live_app, installed):
    lead = sim.sample_lead("a", "rich")
    url, form = sim.placement_request("a", user_id=1, lead_id=lead["ID"])
    sim.expire_access_token(form["AUTH_ID"])
    before = sim.stats()["token_calls"].get("refresh_token", 0)
    response = live_app.post(url, form)
    assert response.status_code == 200
    assert lead["TITLE"] in response.text
    assert sim.stats()["token_calls"].get("refresh_token", 0) == before + 1


def test_stored_token_refresh_on_expiry(sim, live_app, installed):
    """App-level calls renew the stored grant exactly once on expired_token."""
    from leadcard.bitrix24.rest import Deadline

    store = live_app.services.store
    creds = store.credentials(installed.member_id)
    sim.expire_access_token(creds.access_token)
    before = sim.stats()["token_calls"].get("refresh_token", 0)
    info = live_app.services.portal_api.call(installed.member_id, "app.info",
                                             deadline=Deadline.after(10))
    assert info
    assert sim.stats()["token_calls"].get("refresh_token", 0) == before + 1
    assert store.credentials(installed.member_id).version == creds.version + 1


def test_uninstall_event_deletes_tokens(sim, live_app, installed):
    store = live_app.services.store
    assert sim.uninstall("a") in (200, 201)
    portal = store.get(installed.member_id)
    assert portal.status == UNINSTALLED and not portal.has_tokens
    lead = sim.sample_lead("a", "rich")
    assert placement(sim, live_app, lead["ID"]).status_code == 403


def test_forged_uninstall_is_rejected(sim, live_app, installed):
    store = live_app.services.store
    form = sim.onappuninstall_form("a")
    form["auth[application_token]"] = "0" * 32
    response = live_app.post("/events", form)
    assert response.status_code == 401
    assert store.get(installed.member_id).status == ACTIVE
    unknown = sim.onappuninstall_form("a")
    unknown["auth[member_id]"] = "f" * 32
    assert live_app.post("/events", unknown).status_code == 401


def test_insider_uninstall_with_copied_token_is_not_believed(sim, live_app, installed):
    """application_token rides in every placement POST; the OAuth server must confirm."""
    response = live_app.post("/events", sim.onappuninstall_form("a"))
    assert response.status_code == 200
    assert live_app.services.store.get(installed.member_id).status == ACTIVE


def test_unconfirmable_uninstall_keeps_the_portal(sim, live_app, installed):
    """OAuth server down, or our grant already refused: a matching application_token alone
    (visible to every portal user) does not remove the portal."""
    from leadcard.storage.portals import REAUTH_REQUIRED

    store = live_app.services.store
    sim.inject_error("oauth", "app.info", "INTERNAL_SERVER_ERROR", status=500, count=None)
    assert live_app.post("/events", sim.onappuninstall_form("a")).status_code == 200
    assert store.get(installed.member_id).status == ACTIVE
    sim.clear_faults()
    store.mark(installed.member_id, REAUTH_REQUIRED, "token_revoked")
    assert live_app.post("/events", sim.onappuninstall_form("a")).status_code == 200
    portal = store.get(installed.member_id)
    assert portal.status == REAUTH_REQUIRED and portal.has_tokens


def test_views_are_not_stalled_by_a_slow_refresh(sim, live_app, installed):
    """A refresh holds the token row's lock during the OAuth call (on SQLite, the file's
    write lock); card views of other users must not wait behind it."""
    import threading


    lead = sim.sample_lead("a", "minimal")
    assert placement(sim, live_app, lead["ID"]).status_code == 200  # warm the cache
    store = live_app.services.store
    creds = store.credentials(installed.member_id)
    sim.knobs(oauth_latency=2.0)
    refresher = threading.Thread(
        target=lambda: live_app.services.portal_api.renew(installed.member_id, creds.version))
    refresher.start()
    try:
        time.sleep(0.3)  # the refresher now holds the lock and waits on the OAuth server
        assert refresher.is_alive()
        response = placement(sim, live_app, lead["ID"])
        assert response.status_code == 200
        assert refresher.is_alive(), "the view waited for the refresh to finish"
    finally:
        refresher.join(timeout=10)
        sim.knobs(oauth_latency=0.0)
    assert store.credentials(installed.member_id).version == creds.version + 1
