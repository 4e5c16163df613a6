"""Test 8: the designed cards for "no access" and "not installed", inside the portal frame.

* User 2 (sales rep) may not read the private lead 104.  The simulator's lead page for
  104 already refuses user 2 (as Bitrix24 does), so the tab is opened the other way it
  happens in Bitrix24: user 2 is on a lead page they can read and the portal posts a
  lead tab for lead 104 into the same frame (e.g. rights changed while the page was
  open) — the simulator's ``DevPortal.open``.  Our card must be the access-denied
  card, with none of lead 104's data.
* Portal "b" never installed Lead Card (its lead tab points at us anyway): the
  "not installed" card, in the portal's German.
* Portal "a" after an uninstall (ONAPPUNINSTALL delivered, our tokens deleted) with a
  stale tab: the "not installed" card.  The test reinstalls afterwards.

Error pages answer with their HTTP status (403 / 401 …); Chromium reports that status of
the frame document as a console error, which ``allow_status`` permits for the frame
document only — anything else in the console still fails the test.
"""

from __future__ import annotations

import requests

from tests.browser.browser_helpers import (
    expected,
    iframe_height,
    open_lead_tab,
    wait_app_frame,
    wait_fitted,
)

PRIVATE = {"title": "Confidential: board member referral", "secrets": ["Viktor", "Brandt", "555 0143",
                                                                       "250,000", "250000"]}


def _problem(locator) -> tuple[str, str]:
    card = locator.locator("[data-problem]")
    card.wait_for()
    return card.get_attribute("data-problem"), " ".join(card.locator("h1").inner_text().split())


def _assert_fitted(page, frame) -> None:
    m = wait_fitted(page, frame)
    assert abs(iframe_height(page) - m["scrollHeight"]) <= 3
    assert m["scrollWidth"] <= m["clientWidth"]


def test_sales_rep_sees_no_access_card(sim, installed, app_server, page, watch):
    locator, frame = open_lead_tab(page, installed, 101, user_id=2)   # readable for user 2
    assert locator.locator("h1.lc-header__title").is_visible()
    page.evaluate("""() => DevPortal.open(document.querySelector('.app-frame-container'),
                       {kind: 'placement', binding: 0, lead: 104, user: 2, lang: 'en'})""")
    page.wait_for_function(
        "() => DevPortal.resizes.length > 0 && DevPortal.resizes[DevPortal.resizes.length - 1].appSid"
        " === document.querySelector('iframe.app-frame').dataset.appSid")
    locator, frame = wait_app_frame(page, ready="[data-problem]")
    code, title = _problem(locator)
    assert code == "access_denied"
    assert title == expected("en", "You don't have access to this lead")
    text = frame.evaluate("document.body.innerText")
    assert PRIVATE["title"] not in text
    for secret in PRIVATE["secrets"]:
        assert secret not in text
    assert locator.locator("header.lc-header").count() == 0
    _assert_fitted(page, frame)
    watch.assert_clean(allow_status=((403, app_server.url + "/placement"),))


def test_unknown_portal_sees_not_installed_card(sim, installed, app_server, page, watch):
    sim.bind_placement("b", handler=app_server.url + "/placement", title="Lead Card")
    portal = sim.portals["b"]
    assert portal.lang == "de"
    locator, frame = open_lead_tab(page, portal, 201, user_id=1, lang="de", ready="[data-problem]")
    code, title = _problem(locator)
    assert code == "not_installed"
    assert title == expected("de", "Lead Card is not installed on this Bitrix24")
    assert frame.evaluate("document.documentElement.lang") == "de"
    assert "Anfrage: Lagerregale" not in frame.evaluate("document.body.innerText")
    _assert_fitted(page, frame)
    status = [s for s, u in watch.bad_responses if u.startswith(app_server.url + "/placement")]
    assert len(status) == 1 and 400 <= status[0] < 500
    watch.assert_clean(allow_status=((status[0], app_server.url + "/placement"),))


def test_uninstalled_portal_sees_not_installed_card(sim, installed, app_server, page, watch):
    assert sim.uninstall("a") == 200        # ONAPPUNINSTALL reached us; tokens deleted
    try:
        # a stale tab that still points at us
        sim.bind_placement("a", handler=app_server.url + "/placement", title="Lead Card")
        locator, frame = open_lead_tab(page, installed, 101, ready="[data-problem]")
        code, title = _problem(locator)
        assert code == "not_installed"
        assert title == expected("en", "Lead Card is not installed on this Bitrix24")
        assert "fleet telematics" not in frame.evaluate("document.body.innerText")
        _assert_fitted(page, frame)
        status = [s for s, u in watch.bad_responses if u.startswith(app_server.url + "/placement")]
        assert len(status) == 1 and 400 <= status[0] < 500
        watch.assert_clean(allow_status=((status[0], app_server.url + "/placement"),))
    finally:
        url, form = sim.install_request("a", user_id=1)
        assert requests.post(url, data=form, timeout=30).status_code == 200
        sim.finish_install("a")
