"""placement.* / event.* bindings and the install / uninstall lifecycle pushes."""

from __future__ import annotations

import json


def test_placement_bind_is_idempotent(sim, rest, token, fake_app):
    t = token("a", 1)
    args = dict(PLACEMENT="CRM_LEAD_DETAIL_TAB", HANDLER=fake_app.url + "/placement", TITLE="Lead Card",
                LANG_ALL={"en": {"TITLE": "Lead Card"}, "de": {"TITLE": "Lead-Karte"}})
    for _ in range(3):
        r = rest("a", "placement.bind", t, **args)
        assert r.status_code == 200 and r.json()["result"] is True
    got = rest("a", "placement.get", t).json()["result"]
    assert got == [{"placement": "CRM_LEAD_DETAIL_TAB", "userId": 0, "handler": fake_app.url + "/placement",
                    "options": [], "title": "Lead Card", "description": "",
                    "langAll": {"en": {"TITLE": "Lead Card"}, "de": {"TITLE": "Lead-Karte"}}}]
    # a second handler is a second binding
    rest("a", "placement.bind", t, PLACEMENT="CRM_LEAD_DETAIL_TAB", HANDLER=fake_app.url + "/other")
    assert len(rest("a", "placement.get", t).json()["result"]) == 2
    r = rest("a", "placement.unbind", t, PLACEMENT="CRM_LEAD_DETAIL_TAB", HANDLER=fake_app.url + "/other")
    assert r.json()["result"] == {"count": 1}


def test_placement_bind_errors(rest, token, fake_app):
    rep = rest("a", "placement.bind", token("a", 2), PLACEMENT="CRM_LEAD_DETAIL_TAB", HANDLER=fake_app.url)
    assert rep.status_code == 403 and rep.json()["error"] == "ACCESS_DENIED"
    missing = rest("a", "placement.bind", token("a", 1), HANDLER=fake_app.url)
    # RD placement-bind.md: ERROR_ARGUMENT comes with HTTP 200 and an "argument" key
    assert missing.status_code == 200
    assert missing.json() == {"error": "ERROR_ARGUMENT", "error_description": "Argument 'PLACEMENT' is null or empty",
                              "argument": "PLACEMENT"}
    bad = rest("a", "placement.bind", token("a", 1), PLACEMENT="NOT_A_PLACEMENT", HANDLER=fake_app.url)
    assert bad.json()["error"] == "ERROR_PLACEMENT_NOT_FOUND"
    proto = rest("a", "placement.bind", token("a", 1), PLACEMENT="CRM_LEAD_DETAIL_TAB", HANDLER="ftp://x/y")
    assert proto.json()["error"] == "ERROR_UNSUPPORTED_PROTOCOL"


def test_event_bind_duplicate_and_get_unbind(rest, token, fake_app):
    t = token("a", 1)
    h = fake_app.url + "/events"
    first = rest("a", "event.bind", t, event="ONAPPUNINSTALL", handler=h)
    assert first.status_code == 200 and first.json()["result"] is True
    dup = rest("a", "event.bind", t, event="onappuninstall", handler=h)
    assert dup.status_code == 400
    assert dup.json() == {"error": "ERROR_HANDLER_ALREADY_EXIST", "error_description": "Handler already exists!"}
    assert rest("a", "event.get", t).json()["result"] == [
        {"event": "ONAPPUNINSTALL", "handler": h, "auth_type": "0", "offline": 0}]
    nf = rest("a", "event.bind", t, event="ONNOTHING", handler=h)
    assert nf.status_code == 400 and nf.json()["error"] == "ERROR_EVENT_NOT_FOUND"
    assert rest("a", "event.unbind", t, event="ONAPPUNINSTALL", handler=h).json()["result"] == {"count": 1}
    assert rest("a", "event.get", t).json()["result"] == []


def test_finish_install_delivers_onappinstall(sim, fake_app):
    status = sim.finish_install("a")
    assert status == 200 and sim.portals["a"].installed
    [ev] = fake_app.events("ONAPPINSTALL")
    assert ev["content_type"].startswith("application/x-www-form-urlencoded")
    # exact key set of payloads/onappinstall_event.phpsdk_fixture.json, flattened PHP-style
    assert set(ev["form"]) == {
        "event", "event_handler_id", "data[VERSION]", "data[LANGUAGE_ID]", "ts", "auth[access_token]",
        "auth[expires]", "auth[expires_in]", "auth[scope]", "auth[domain]", "auth[server_endpoint]",
        "auth[status]", "auth[client_endpoint]", "auth[member_id]", "auth[user_id]", "auth[application_token]"}
    f = ev["form"]
    assert f["auth[domain]"] == sim.portals["a"].domain
    assert f["auth[member_id]"] == sim.portals["a"].member_id
    assert f["auth[application_token]"] == sim.portals["a"].application_token
    assert f["auth[server_endpoint]"] == sim.server_endpoint and f["auth[user_id]"] == "1"
    # the pushed token works
    assert sim.world.check_access(f["auth[access_token]"], "a").user_id == 1
    assert sim.stats()["deliveries"][-1]["status"] == 200


def test_docs_shape_knob_for_onappinstall(sim):
    sim.knobs(onappinstall_shape="docs")
    form = sim.onappinstall_form("b")
    assert "auth[refresh_token]" in form and "data[INSTALLED]" in form and "event_handler_id" not in form


def test_uninstall_revokes_tokens_bindings_and_pushes_onappuninstall(sim, rest, token, fake_app):
    t = token("a", 1)
    sim.finish_install("a")
    rest("a", "placement.bind", t, PLACEMENT="CRM_LEAD_DETAIL_TAB", HANDLER=fake_app.url + "/placement")
    rest("a", "event.bind", t, event="ONAPPUNINSTALL", handler=fake_app.url + "/events")
    assert sim.uninstall("a", clean=True) == 200
    [ev] = fake_app.events("ONAPPUNINSTALL")
    assert ev["form"] == {
        "event": "ONAPPUNINSTALL", "data[LANGUAGE_ID]": "en", "data[CLEAN]": "1", "ts": ev["form"]["ts"],
        "auth[domain]": sim.portals["a"].domain, "auth[server_endpoint]": sim.server_endpoint,
        "auth[client_endpoint]": sim.portals["a"].client_endpoint, "auth[member_id]": sim.portals["a"].member_id,
        "auth[application_token]": sim.portals["a"].application_token}
    assert rest("a", "profile", t).json()["error"] == "invalid_token"
    assert not sim.portals["a"].installed
    assert sim.bindings("a") == {"placements": [], "events": []}
    # other portals keep working
    assert rest("b", "profile", token("b", 1)).status_code == 200


def test_uninstall_page_api(sim, fake_app, rest, token):
    import requests
    sim.finish_install("a")
    rest("a", "event.bind", token("a", 1), event="ONAPPUNINSTALL", handler=fake_app.url + "/events")
    r = requests.post(sim.portals["a"].base_url + "/_devportal/api/uninstall", json={"user": 1, "clean": False},
                      timeout=5)
    assert r.json() == {"delivery_statuses": [200]}
    assert fake_app.events("ONAPPUNINSTALL")[0]["form"]["data[CLEAN]"] == "0"
    denied = requests.post(sim.portals["a"].base_url + "/_devportal/api/uninstall", json={"user": 2}, timeout=5)
    assert denied.status_code == 403
    assert json.loads(denied.text)["error"]
