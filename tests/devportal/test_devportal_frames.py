"""Frame POSTs (placement / installer), event forms, and the portal's browser pages."""

from __future__ import annotations

import json
import re
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from tests.conftest import load_payload

# Key sets of the documented payloads (tests/fixtures/payloads, sources in SOURCES.md):
# placement_crm_lead_detail_tab_post.docs.json is the old lead-tab example; the current docs
# add SERVER_ENDPOINT, APPLICATION_TOKEN, APPLICATION_SCOPE
# (placement_crm_deal_detail_tab_post.current_docs.json).
QUERY_KEYS = {"DOMAIN", "PROTOCOL", "LANG", "APP_SID"}
OLD_LEAD_TAB_FORM = {"AUTH_ID", "AUTH_EXPIRES", "REFRESH_ID", "member_id", "status", "PLACEMENT", "PLACEMENT_OPTIONS"}
NEWER_FIELDS = {"SERVER_ENDPOINT", "APPLICATION_TOKEN", "APPLICATION_SCOPE"}
INSTALL_FORM = {"AUTH_ID", "AUTH_EXPIRES", "REFRESH_ID", "SERVER_ENDPOINT", "APPLICATION_TOKEN",
                "APPLICATION_SCOPE", "member_id", "status", "PLACEMENT"}


def _split(url: str) -> tuple[str, dict]:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}{parts.path}", {k: v[0] for k, v in parse_qs(parts.query).items()}


def test_placement_request_shape(sim, fake_app, rest):
    url, form = sim.placement_request("a", 2, 101, lang="de")
    base, query = _split(url)
    assert base == fake_app.url + "/placement"
    assert set(query) == QUERY_KEYS
    assert query["DOMAIN"] == sim.portals["a"].domain and query["PROTOCOL"] == "0" and query["LANG"] == "de"
    assert re.fullmatch(r"[0-9a-f]{32}", query["APP_SID"])
    assert set(form) == OLD_LEAD_TAB_FORM | NEWER_FIELDS
    assert list(form) == ["AUTH_ID", "AUTH_EXPIRES", "REFRESH_ID", "SERVER_ENDPOINT", "APPLICATION_TOKEN",
                          "APPLICATION_SCOPE", "member_id", "status", "PLACEMENT", "PLACEMENT_OPTIONS"]
    assert form["PLACEMENT"] == "CRM_LEAD_DETAIL_TAB" and form["PLACEMENT_OPTIONS"] == '{"ID":"101"}'
    assert form["AUTH_EXPIRES"] == "3600" and form["status"] == "L"
    assert form["SERVER_ENDPOINT"] == sim.server_endpoint
    assert form["member_id"] == sim.portals["a"].member_id
    assert form["APPLICATION_TOKEN"] == sim.portals["a"].application_token
    assert all(isinstance(v, str) for v in form.values())
    # the tokens belong to the viewing user
    assert rest("a", "profile", form["AUTH_ID"]).json()["result"]["ID"] == "2"
    # the documented payloads (tests/fixtures/payloads, sources in SOURCES.md)
    old = load_payload("placement_crm_lead_detail_tab_post.docs.json")
    new = load_payload("placement_crm_deal_detail_tab_post.current_docs.json")
    assert set(old["query"]) == set(query) and set(new["form"]) == set(form)
    assert set(old["form"]) == OLD_LEAD_TAB_FORM


def test_old_frame_fields_knob(sim):
    sim.knobs(portal="a", frame_fields="old", placement_options_uri=True)
    _url, form = sim.placement_request("a", 1, 102)
    assert set(form) == OLD_LEAD_TAB_FORM
    opts = json.loads(form["PLACEMENT_OPTIONS"])
    assert opts["ID"] == "102" and opts["URI"].startswith("/crm/lead/details/102/")
    assert "\\/crm\\/lead" in form["PLACEMENT_OPTIONS"]   # PHP json_encode escapes "/"


def test_placement_request_uses_bound_handler(sim, fake_app):
    sim.bind_placement("b", handler=fake_app.url + "/tab?x=1")
    url, _form = sim.placement_request("b", 1, 201)
    assert url.startswith(fake_app.url + "/tab?x=1&DOMAIN=")


def test_install_request_shape(sim, fake_app):
    url, form = sim.install_request("a", 1)
    base, query = _split(url)
    assert base == fake_app.url + "/install" and set(query) == QUERY_KEYS
    assert set(form) == INSTALL_FORM and form["PLACEMENT"] == "DEFAULT"
    doc = load_payload("install_frame_post.docs.json")
    assert set(doc["form"]) == set(form) and set(doc["query"]) == set(query)


def test_event_forms(sim):
    install = sim.onappinstall_form("a")
    doc = load_payload("onappinstall_event.phpsdk_fixture.json")
    expected = {"event", "event_handler_id", "ts", "data[VERSION]", "data[LANGUAGE_ID]"} | {
        f"auth[{k}]" for k in ("access_token", "expires", "expires_in", "scope", "domain", "server_endpoint",
                               "status", "client_endpoint", "member_id", "user_id", "application_token")}
    assert set(install) == expected
    flat = {k for k, v in doc.items() if not isinstance(v, dict)} | {
        f"{k}[{kk}]" for k, v in doc.items() if isinstance(v, dict) for kk in v}
    assert flat == set(install)
    uninstall = sim.onappuninstall_form("a", clean=True)
    assert uninstall["data[CLEAN]"] == "1" and "auth[access_token]" not in uninstall


# --- pages -------------------------------------------------------------------------------

def test_lead_page_tabs_and_escaping(sim, fake_app):
    sim.bind_placement("a", handler=fake_app.url + "/placement", title="Lead Card",
                       lang_all={"en": {"TITLE": "Lead Card"}, "de": {"TITLE": "Lead-Karte"}})
    page = requests.get(sim.portals["a"].lead_url(103, user_id=2, lang="de", tab="app"), timeout=5)
    assert page.status_code == 200
    assert 'data-tab="app-0">Lead-Karte</button>' in page.text
    assert "<script>alert('title')" not in page.text and "&lt;script&gt;alert(&#x27;title&#x27;)" in page.text
    assert "<img src=x onerror" not in page.text
    assert '"autoOpen": "app-0"' in page.text
    assert "#eef2f4" in requests.get(sim.portals["a"].base_url + "/_devportal/static/portal.css", timeout=5).text


def test_lead_page_without_install_has_no_app_tab(sim, fake_app):
    sim.bind_placement("a", handler=fake_app.url + "/placement", installed=False)
    page = requests.get(sim.portals["a"].lead_url(101, tab="app"), timeout=5)
    assert 'class="tab app-tab"' not in page.text and "not installed" in page.text


def test_lead_page_access_denied_and_index(sim):
    assert requests.get(sim.portals["a"].lead_url(104, user_id=2), timeout=5).status_code == 403
    assert requests.get(sim.portals["a"].lead_url(104, user_id=1), timeout=5).status_code == 200
    index = requests.get(sim.portals["a"].base_url + "/?user=2", timeout=5).text
    assert "/crm/lead/details/101/?user=2" in index and "/marketplace/app/" in index
    market = requests.get(sim.portals["a"].base_url + "/marketplace/app/?user=1", timeout=5).text
    assert 'data-action="install"' in market
    assert 'data-action="install"' not in requests.get(
        sim.portals["a"].base_url + "/marketplace/app/?user=2", timeout=5).text


def test_frame_post_api_and_install_finish_api(sim, fake_app):
    base = sim.portals["a"].base_url
    spec = requests.post(base + "/_devportal/api/frame-post", json={"kind": "install", "user": 1, "lang": "en"},
                         timeout=5).json()
    init = spec["init"]
    assert init["INSTALL"] is True and init["PLACEMENT"] == "DEFAULT" and init["IS_ADMIN"] is True
    assert init["AUTH_ID"] == spec["form"]["AUTH_ID"] and init["APP_SID"] == spec["app_sid"]
    assert set(init) == {"DOMAIN", "PROTOCOL", "PATH", "LANG", "APP_SID", "AUTH_ID", "AUTH_EXPIRES", "REFRESH_ID",
                         "MEMBER_ID", "IS_ADMIN", "APP_OPTIONS", "USER_OPTIONS", "PLACEMENT", "PLACEMENT_OPTIONS",
                         "INSTALL", "FIRST_RUN"}
    denied = requests.post(base + "/_devportal/api/frame-post", json={"kind": "install", "user": 2}, timeout=5)
    assert denied.status_code == 403
    done = requests.post(base + "/_devportal/api/install-finish", json={"app_sid": spec["app_sid"]}, timeout=5).json()
    assert done["delivery_status"] == 200 and sim.portals["a"].installed
    assert done["next"]["init"]["INSTALL"] is False and done["next"]["url"].startswith(fake_app.url + "/?")
    assert len(fake_app.events("ONAPPINSTALL")) == 1
    refreshed = requests.post(base + "/_devportal/api/refresh-auth", json={"app_sid": spec["app_sid"]}, timeout=5)
    assert set(refreshed.json()) == {"AUTH_ID", "REFRESH_ID", "AUTH_EXPIRES"}


def test_avatar_and_unknown_pages(sim):
    svg = requests.get(sim.portals["a"].base_url + "/upload/avatar/2.svg", timeout=5)
    assert svg.status_code == 200 and svg.text.startswith("<svg")
    assert requests.get(sim.portals["b"].base_url + "/upload/avatar/2.svg", timeout=5).status_code == 404


@pytest.mark.parametrize("portal", ["a", "b"])
def test_member_ids_are_distinct_hex(sim, portal):
    assert re.fullmatch(r"[0-9a-f]{32}", sim.portals[portal].member_id)
    assert sim.portals["a"].member_id != sim.portals["b"].member_id
