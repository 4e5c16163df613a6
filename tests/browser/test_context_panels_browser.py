"""The lead's context panels in the simulated lead page, in Chromium (issue 12).

Every panel visible at a 360-px phone (Bitrix24's side slider) and at a 1280-px desktop, no
sideways scrolling inside the frame, the frame fitted to the taller card, duplicates opening
in the Bitrix24 slider, and the converted lead's "What came of it".
"""

from __future__ import annotations

import pytest

from tests.browser.browser_helpers import frame_metrics, wait_app_frame, wait_fitted

PANELS = ("next", "history", "duplicates", "products")


def _open(page, portal, lead_id: int, width: int, user_id: int = 1):
    url = portal.lead_url(lead_id, user_id=user_id, lang="en", tab="app")
    page.goto(url + ("&IFRAME=Y&IFRAME_TYPE=SIDE_SLIDER" if width < 700 else ""))
    return wait_app_frame(page)


@pytest.mark.parametrize("width", [360, 1280])
def test_every_panel_visible_without_sideways_scroll(sim, installed, make_page, watch, width):
    page = make_page(width=width, height=900)
    locator, frame = _open(page, installed, 101, width)
    for key in PANELS:
        panel = locator.locator(f".lc-ctx--{key}")
        panel.scroll_into_view_if_needed()
        assert panel.is_visible(), key
        box = panel.bounding_box()
        assert box and box["width"] > 200 and box["height"] > 40, (key, box)
    assert locator.locator(".lc-ctx--next .lc-act--overdue").count() == 1
    assert locator.locator(".lc-ctx--products tbody tr").count() == 3
    assert locator.locator(".lc-header .lc-fact").count() == 3
    m = wait_fitted(page, frame)
    assert m["scrollWidth"] <= m["clientWidth"], m
    assert m["bodyScrollWidth"] <= m["clientWidth"], m
    if width >= 1280:
        # Two panels side by side on a desktop: next steps and history share a row.
        nxt = locator.locator(".lc-ctx--next").bounding_box()
        hist = locator.locator(".lc-ctx--history").bounding_box()
        assert abs(nxt["y"] - hist["y"]) < 2 and hist["x"] > nxt["x"], (nxt, hist)
    watch.assert_clean()


def test_a_duplicate_opens_in_the_bitrix24_slider(sim, installed, page, watch):
    locator, frame = _open(page, installed, 101, 1280)
    link = locator.locator('.lc-ctx--duplicates a[data-b24-path="/crm/company/details/21/"]')
    before = frame.url
    link.click()
    page.locator(".slider-overlay").wait_for(state="visible")
    assert "/crm/company/details/21/" in page.locator(".slider-path").inner_text()
    assert frame.url == before  # the frame did not navigate
    watch.assert_clean()


@pytest.mark.parametrize("width", [360, 1280])
def test_what_came_of_a_converted_lead(sim, installed, make_page, watch, width):
    page = make_page(width=width, height=900)
    locator, frame = _open(page, installed, 106, width, user_id=2)
    came = locator.locator(".lc-ctx--came")
    came.scroll_into_view_if_needed()
    assert came.is_visible()
    assert came.locator("a[data-b24-path]").count() == 3  # deal 302 is not the rep's to read
    m = frame_metrics(frame)
    assert m["scrollWidth"] <= m["clientWidth"], m
    watch.assert_clean()
