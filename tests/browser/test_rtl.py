"""Issue 15: the card in Arabic, right to left, in Chromium.

Lead 101 (the rich demo lead) opened with LANG ``ar`` at 1280 px (the lead page with the
portal chrome) and at 360 px (Bitrix24's side slider): the page says ``lang="ar"
dir="rtl"``, the header's start edge is on the right (its title hugs the right side, the
stage and amount sit to its left), labels and values start on the right, phone numbers
and e-mails still read left to right, and nothing scrolls sideways. A screenshot of each
width goes to test-output/screenshots/lead-101_ar_<width>.png; the 1280-px one, cropped
to the lead page area, is docs/screenshots/lead-card-ar.png, written when missing or with
LEADCARD_UPDATE_SCREENSHOTS=1 (otherwise the fresh crop lands next to the others to
compare).
"""

from __future__ import annotations

import pytest

from tests.browser.browser_helpers import (
    REPO,
    SCREENSHOTS,
    frame_metrics,
    keep_docs_shot,
    wait_app_frame,
)
from tests.browser.test_screenshots import _settle, png_size

DOCS_SHOT = REPO / "docs" / "screenshots" / "lead-card-ar.png"

BOXES = """() => {
  const box = (sel) => { const e = document.querySelector(sel);
    if (!e) return null; const r = e.getBoundingClientRect();
    return {left: r.left, right: r.right, width: r.width}; };
  // a title's lines fill its block: the last line shows which side the text starts from
  const lastLine = (sel) => { const e = document.querySelector(sel); const r = document.createRange();
    r.selectNodeContents(e); const lines = r.getClientRects(); const l = lines[lines.length - 1];
    return {left: l.left, right: l.right, width: l.width}; };
  const dir = (sel) => { const e = document.querySelector(sel);
    return e ? getComputedStyle(e).direction : null; };
  return {
    lang: document.documentElement.lang, dir: document.documentElement.dir,
    direction: getComputedStyle(document.body).direction,
    header: box('.lc-header'), main: box('.lc-header__main'), title: lastLine('.lc-header__title'), stage: box('.lc-stage'),
    meta: box('.lc-header__meta'), label: box('.lc-section--contact .lc-field__label'),
    value: box('.lc-section--contact .lc-field__value'),
    phone: dir('.lc-value--phone > .lc-link'), email: dir('.lc-value--email > .lc-link'),
  };
}"""


@pytest.mark.parametrize("width", [1280, 360])
def test_arabic_card_mirrors(sim, installed, make_page, watch, width):
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page = make_page(width=width, height=900)
    url = installed.lead_url(101, user_id=1, lang="ar", tab="app")
    page.goto(url + ("&IFRAME=Y&IFRAME_TYPE=SIDE_SLIDER" if width < 700 else ""))
    _, frame = wait_app_frame(page)
    _settle(page, frame)

    b = frame.evaluate(BOXES)
    assert (b["lang"], b["dir"], b["direction"]) == ("ar", "rtl", "rtl")
    header = b["header"]
    # start edge on the right: right gap small, left gap big (the stage under the title
    # when narrow; side by side it is the header's end, checked below)
    for part in ("title", "stage") if width < 700 else ("title",):
        box = b[part]
        assert header["right"] - box["right"] < box["left"] - header["left"], (part, b)
        assert header["right"] - box["right"] < 40, (part, b)  # only the panel's padding
    if width >= 700:  # side by side: the stage and amount come after the title, to its left
        assert b["meta"]["right"] <= b["main"]["left"] + 1, b
    for row in ("label", "value"):  # labels and values start on the right as well
        assert header["right"] - b[row]["right"] < 40, (row, b)
    assert (b["phone"], b["email"]) == ("ltr", "ltr"), b  # "+44 …" never reads backwards

    m = frame_metrics(frame)
    assert m["scrollWidth"] <= m["clientWidth"], m
    assert m["bodyScrollWidth"] <= m["clientWidth"], m
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")

    path = SCREENSHOTS / f"lead-101_ar_{width}.png"
    page.screenshot(path=str(path), full_page=True)
    w, h = png_size(path)
    assert w == width and h > 800
    assert path.stat().st_size > 20_000, "a blank screenshot?"
    if width == 1280:
        crop = SCREENSHOTS / "lead-card-ar.png"
        page.locator("main").screenshot(path=str(crop))
        keep_docs_shot(crop, DOCS_SHOT)
    watch.assert_clean()
