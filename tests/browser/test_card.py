"""The lead card in the simulator's lead page (tests 2, 3, 4, 6 and 9 of the browser suite).

2. every sample lead renders: card visible in the iframe, the lead's title, and a silent
   console (parent and frame) — no errors, no 4xx/5xx, no page errors, no dialogs;
3. no horizontal scrolling inside the frame at a 360-px phone and a 1200-px desktop;
4. the iframe is fitted to the content through resizeWindow, grows when "Show all
   fields" opens and shrinks back when it closes;
6. company / contact / user links open in the Bitrix24 slider via openPath and never
   navigate the frame;
9. the placement page opened top-level (not in Bitrix24) is still a readable page.
"""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import TimeoutError as PlaywrightTimeout

from tests.browser.browser_helpers import (
    APP_FRAME,
    SAMPLE_LEADS,
    assert_page_assets,
    csp_violations,
    frame_metrics,
    iframe_height,
    open_lead_tab,
    post_top_level,
    wait_app_frame,
    wait_fitted,
)


def _norm(text: str) -> str:
    return " ".join(text.split())


@pytest.mark.parametrize("lead_id", sorted(SAMPLE_LEADS), ids=lambda i: f"{i}-{SAMPLE_LEADS[i]}")
def test_sample_lead_renders(sim, installed, page, watch, lead_id):
    expected = sim.sample_lead("a", SAMPLE_LEADS[lead_id])
    locator, frame = open_lead_tab(page, installed, lead_id)

    header = locator.locator("header.lc-header")
    assert header.is_visible()
    assert _norm(header.locator("h1").inner_text()) == _norm(expected["TITLE"])
    assert locator.locator("[data-problem]").count() == 0, "an error card instead of the lead"
    assert frame.evaluate("document.documentElement.getAttribute('lang')") == "en"
    # the card really is the visible part of the page (not a 0-px iframe)
    box = page.locator(APP_FRAME).bounding_box()
    assert box["width"] > 600 and box["height"] > 100

    stage = header.locator(".lc-stage")
    semantic = {"F": "f", "S": "s"}.get(expected["STATUS_SEMANTIC_ID"], "p")
    assert f"lc-stage--{semantic}" in stage.get_attribute("class")

    assert csp_violations(frame) == []
    assert page.evaluate("window.__lcCsp") == []
    assert page.evaluate("DevPortal.errors") == []
    assert_page_assets(page)    # favicon of the portal page, source maps of every script
    watch.assert_clean()


def _open(page, portal, lead_id: int, width: int):
    """At phone width open the lead as Bitrix24 does in its side slider (IFRAME=Y: no
    portal chrome), so the frame gets the phone's width instead of 1/3 of it."""
    url = portal.lead_url(lead_id, user_id=1, lang="en", tab="app")
    page.goto(url + ("&IFRAME=Y&IFRAME_TYPE=SIDE_SLIDER" if width < 700 else ""))
    return wait_app_frame(page)


@pytest.mark.parametrize("width", [360, 1200])
def test_no_horizontal_scroll(sim, installed, make_page, watch, width):
    page = make_page(width=width, height=800)
    for lead_id in (101, 103, 106):   # longest content, hostile long strings, 9 990 000 RUB
        _, frame = _open(page, installed, lead_id, width)
        m = frame_metrics(frame)
        # the frame spans (nearly) the whole page width available to it
        min_width = width - 60 if width < 700 else width - 300   # portal chrome at desktop width
        assert m["clientWidth"] >= min_width, m
        assert m["scrollWidth"] <= m["clientWidth"], f"lead {lead_id} at {width}px: {m}"
        assert m["bodyScrollWidth"] <= m["clientWidth"], f"lead {lead_id} at {width}px: {m}"
        parent = page.evaluate("[document.documentElement.scrollWidth, document.documentElement.clientWidth]")
        assert parent[0] <= parent[1], f"the portal page scrolls sideways at {width}px: {parent}"
    watch.assert_clean()


def _last_resize(page) -> dict:
    return page.evaluate(
        "() => { const sid = document.querySelector('iframe.app-frame').dataset.appSid;"
        " const r = DevPortal.resizes.filter(x => x.appSid === sid); return {n: r.length, last: r[r.length - 1]}; }")


def _wait_resize_after(page, count: int, what: str) -> None:
    try:
        page.wait_for_function(
            "n => { const sid = document.querySelector('iframe.app-frame').dataset.appSid;"
            " return DevPortal.resizes.filter(x => x.appSid === sid).length > n; }", arg=count,
            timeout=5000)
    except PlaywrightTimeout:
        raise AssertionError(f"no resizeWindow from the frame after {what}") from None
    page.wait_for_timeout(150)   # let a trailing resize (fonts, images) land


def _assert_fitted(page, frame) -> dict:
    m = wait_fitted(page, frame)
    height = iframe_height(page)
    last = _last_resize(page)["last"]
    assert last["height"] == int(page.get_attribute(APP_FRAME, "data-height"))
    assert abs(height - last["height"]) <= 1
    assert abs(height - m["scrollHeight"]) <= 3, (height, m)
    # no inner scrollbar: the frame's document is not taller than its viewport
    assert m["scrollHeight"] <= m["clientHeight"] + 1, m
    return m


def test_iframe_fits_content_and_follows_details(sim, installed, page, watch):
    locator, frame = open_lead_tab(page, installed, 101)
    first = _assert_fitted(page, frame)
    assert first["scrollHeight"] > 400, "the default 400-px iframe was never resized"

    details = locator.locator("details.lc-all")
    assert details.count() == 1
    n = _last_resize(page)["n"]
    details.locator("summary").click()
    _wait_resize_after(page, n, "opening 'Show all fields'")
    assert frame.evaluate("document.querySelector('details.lc-all').open") is True
    opened = _assert_fitted(page, frame)
    assert opened["scrollHeight"] > first["scrollHeight"] + 20
    assert details.locator(".lc-fields").is_visible()

    n = _last_resize(page)["n"]
    details.locator("summary").click()
    _wait_resize_after(page, n, "closing 'Show all fields' (the iframe must shrink back)")
    closed = _assert_fitted(page, frame)
    assert abs(closed["scrollHeight"] - first["scrollHeight"]) <= 3, "the iframe did not shrink back"
    watch.assert_clean()


@pytest.mark.parametrize("selector, path", [
    # in the lead's own sections (the context panels above them link duplicates too)
    (".lc-section--company a[data-b24-path^='/crm/company/']", "/crm/company/details/7/"),
    (".lc-section--contact a[data-b24-path^='/crm/contact/']", "/crm/contact/details/15/"),
    ("a.lc-user[data-b24-path]", "/company/personal/user/2/"),
], ids=["company", "contact", "user"])
def test_portal_links_open_in_slider(sim, installed, page, watch, selector, path):
    locator, frame = open_lead_tab(page, installed, 101)
    frame_url = frame.url
    navigations = []
    page.on("framenavigated", lambda f: navigations.append(f) if f == frame else None)
    placement_posts = len([r for r in watch.app_requests if r[0] == "POST"])

    link = locator.locator(selector).first
    assert link.get_attribute("href") == "#"
    assert link.get_attribute("data-b24-path") == path
    link.click()

    page.wait_for_function("DevPortal.paths.length > 0")
    paths = page.evaluate("DevPortal.paths")
    assert len(paths) == 1
    assert paths[0].split("?")[0] == path
    assert "IFRAME=Y" in paths[0]
    overlay = page.locator(".slider-overlay")
    overlay.wait_for(state="visible")
    page.locator(".slider-frame").wait_for(state="attached")
    page.frame_locator(".slider-frame").locator("h1").wait_for()

    page.click(".slider-close")
    overlay.wait_for(state="hidden")
    page.wait_for_timeout(200)
    assert frame.url == frame_url
    assert frame.evaluate("location.hash") == ""
    assert navigations == []
    assert len([r for r in watch.app_requests if r[0] == "POST"]) == placement_posts
    assert locator.locator("header.lc-header").is_visible()
    events = [e["command"] for e in sim.stats()["frame_events"]]
    assert "openPath" in events
    watch.assert_clean()


@pytest.mark.parametrize("width", [360, 1200])
def test_placement_page_opened_top_level(sim, installed, make_page, watch, width):
    page = make_page(width=width, height=800)
    url, form = sim.placement_request("a", 1, 101, lang="en")
    post_top_level(page, url, form)
    page.wait_for_url(re.compile(r".*/placement\?.*"))
    page.wait_for_load_state("load")
    page.wait_for_timeout(300)   # the JS library gives up on the missing parent

    title = page.locator("h1.lc-header__title")
    assert title.is_visible()
    assert title.inner_text() == sim.sample_lead("a", "rich")["TITLE"]
    assert page.locator("section.lc-section").count() >= 3
    assert page.evaluate("document.documentElement.classList.contains('lc-in-frame')") is False
    m = frame_metrics(page.main_frame)
    assert m["scrollWidth"] <= m["clientWidth"], m
    # readable: body text is not tiny
    size = page.evaluate("parseFloat(getComputedStyle(document.querySelector('.lc-field__value')).fontSize)")
    assert size >= 13
    # "Show all fields" still works without the portal
    page.locator("details.lc-all summary").click()
    assert page.locator("details.lc-all .lc-fields").is_visible()
    assert page.evaluate("window.__lcCsp") == []
    assert_page_assets(page)    # our own favicon now, and the JS library's source map
    watch.assert_clean()
