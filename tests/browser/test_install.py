"""Test 1: an administrator installs Lead Card from the simulator's marketplace page.

The click opens our /install page in the portal's iframe; that page confirms the
installing token with the OAuth server, binds the lead tab and the uninstall event, and
calls installFinish() through the vendored JS library — which the simulator's parent
answers (setInstallFinish) by marking the app installed.  Afterwards a lead page shows
our "Lead Card" tab and the tab renders the card.
"""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

from tests.browser.browser_helpers import assert_page_assets, open_lead_tab


def test_install_through_marketplace_page(sim, app_server, page, watch):
    portal = sim.portals["a"]
    assert not portal.installed

    page.goto(portal.base_url + "/marketplace/app/?user=1&lang=en")
    with page.expect_response(lambda r: r.url.startswith(app_server.url + "/install?")) as answer:
        page.click("[data-action=install]")

    # our install page went into the marketplace iframe and says it is done (it is on
    # screen only until the portal reloads the frame, so read it from the response) ...
    install = answer.value
    assert install.status == 200
    html = install.text()
    assert 'data-lc-install="finish"' in html and "lc-state--success" in html
    install_sid = parse_qs(urlsplit(install.url).query)["APP_SID"][0]

    # ... and the JS library delivered installFinish to the portal
    page.wait_for_function("window.DevPortal.installFinished === true")
    assert portal.installed
    assert page.get_attribute("#install-state", "data-installed") == "Y"
    assert page.get_attribute("#market-frame", "data-install-finished") == "Y"
    finish = page.evaluate("DevPortal.messages.filter(m => m.command === 'setInstallFinish').map(m => m.appSid)")
    assert finish == [install_sid]
    assert page.evaluate("DevPortal.errors") == []

    bindings = sim.bindings("a")
    tabs = [b for b in bindings["placements"] if b["placement"] == "CRM_LEAD_DETAIL_TAB"]
    assert [b["handler"] for b in tabs] == [app_server.url + "/placement"]
    assert any(e["event"] == "ONAPPUNINSTALL" for e in bindings["events"])

    # after installFinish the portal reloads the frame into the app's main page; let it
    # settle so its console output is part of the checks below
    page.wait_for_function(
        "sid => { const f = document.querySelector('#market-frame iframe.app-frame');"
        " return f && f.dataset.appSid !== sid && DevPortal.messages.some(m => m.appSid === f.dataset.appSid); }",
        arg=install_sid)
    page.frame_locator("#market-frame iframe.app-frame").locator(".lc-app").wait_for()
    page.locator("#market-frame iframe.app-frame").element_handle().content_frame().wait_for_load_state("load")
    assert_page_assets(page)

    # the lead page now has our tab, and it renders the card
    page.goto(portal.lead_url(101, user_id=1, lang="en"))
    tab = page.locator("button.app-tab")
    assert tab.count() == 1
    assert tab.inner_text() == "Lead Card"
    assert page.locator(".note").count() == 0  # "No CRM_LEAD_DETAIL_TAB tab: ..." is gone

    locator, _ = open_lead_tab(page, portal, 101)
    assert locator.locator("h1.lc-header__title").inner_text() == sim.sample_lead("a", "rich")["TITLE"]
    watch.assert_clean()
