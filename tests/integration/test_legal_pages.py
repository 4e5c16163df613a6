"""Issue 14, Market rules over real HTTP: /privacy and /license (GET and HEAD, linked from
the app's pages, framed by the portal that links them) and the home page's simple-CRM note
(crm.settings.mode.get through the simulator: on, off, failing, cached)."""

from __future__ import annotations

import html
import re

import requests

from devtools.harness import serve_app
from tests.integration.harness import app_settings

NOTE = 'data-lc-note="simple-crm"'
MODE = "crm.settings.mode.get"


def mode_calls(sim) -> int:
    return dict(sim.stats()["portals"]["a"].get("rest_methods", {})).get(MODE, 0)


def open_home(sim, live_app, lang="en"):
    url, form = sim.app_request("a", user_id=1, lang=lang)
    response = live_app.post(url, form)
    assert response.status_code == 200, response.text[:300]
    return response


def test_pages_answer_get_and_head(live_app):
    for path in ("/privacy", "/license"):
        for method in ("GET", "HEAD"):
            response = requests.request(method, live_app.url + path, timeout=10)
            assert response.status_code == 200, (method, path)
            assert response.headers["Content-Type"].startswith("text/html")
            assert response.headers["Cache-Control"] == "public, max-age=300"
        page = requests.get(live_app.url + path, headers={"Accept-Language": "ru"}, timeout=10)
        assert '<html lang="ru" dir="ltr">' in page.text


def test_privacy_states_the_configured_retention(sim, app_port, tmp_path):
    live = serve_app(app_settings(sim, app_port, tmp_path, REST_LOG_DAYS="5",
                                  VENDOR_NAME="Example Vendor GmbH"), app_port)
    try:
        text = requests.get(live.url + "/privacy", timeout=10).text
    finally:
        live.stop()
    assert "deleted automatically after 5 days" in text
    assert "operated by Example Vendor GmbH" in text


def test_home_links_both_pages_and_the_portal_may_frame_them(sim, live_app, installed):
    page = open_home(sim, live_app, lang="de").text
    links = {kind: html.unescape(href) for href, kind in
             re.findall(r'href="([^"]+)"[^>]*data-lc-legal="(\w+)"', page)}
    assert set(links) == {"privacy", "license"}
    for href in links.values():
        assert f"member_id={installed.member_id}" in href and "lang=de" in href
        response = requests.get(live_app.url + href, timeout=10)
        assert response.status_code == 200 and '<html lang="de" dir="ltr">' in response.text
        csp = response.headers["Content-Security-Policy"]
        assert f"frame-ancestors {installed.base_url}" in csp


def test_install_page_links_both_pages(sim, live_app):
    url, form = sim.install_request("a", user_id=1)
    page = live_app.post(url, form).text
    assert 'data-lc-legal="privacy"' in page and 'data-lc-legal="license"' in page


def test_classic_crm_has_no_note(sim, live_app, installed):
    assert NOTE not in open_home(sim, live_app).text
    assert mode_calls(sim) == 1


def test_simple_crm_is_noted_and_the_answer_cached(sim, live_app, installed):
    sim.set_crm_mode("a", 2)
    first = open_home(sim, live_app).text
    assert NOTE in first and "simple CRM mode" in first
    calls = mode_calls(sim)
    assert calls == 1
    assert NOTE in open_home(sim, live_app).text
    assert mode_calls(sim) == calls  # cached per portal: no second call


def test_a_failing_mode_call_means_no_note_and_still_200(sim, live_app, installed):
    sim.set_crm_mode("a", 2)
    sim.inject_error("a", MODE, "INTERNAL_SERVER_ERROR", status=500, count=None)
    assert NOTE not in open_home(sim, live_app).text
    sim.clear_faults("a")
    sim.inject_error("a", MODE, "ACCESS_DENIED", status=403, count=None)
    assert NOTE not in open_home(sim, live_app).text
    sim.clear_faults("a")
    assert NOTE in open_home(sim, live_app).text  # failures were not cached


def test_a_hung_mode_call_is_cut_short(sim, live_app, installed):
    sim.set_crm_mode("a", 2)
    fault = sim.set_fault("a", MODE, "hang", seconds=8, count=1)
    assert NOTE not in open_home(sim, live_app).text  # gave up (deadline 3 s), page 200
    assert [f["fired"] for f in sim.world.faults.list() if f["id"] == fault] == [1]


def test_card_views_never_ask(sim, live_app, installed):
    url, form = sim.placement_request("a", user_id=1, lead_id=101)
    assert requests.post(url, data=form, timeout=30).status_code == 200
    assert mode_calls(sim) == 0
