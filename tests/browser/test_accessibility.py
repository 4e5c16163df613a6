"""WCAG 2.1 AA, keyboard use and no scroll bar, for every state of the card (issue 15).

* axe-core (tests/vendor/axe-core, test-only) over each state the salesperson or an admin
  can see: the rich lead with its context panels, with "Show all fields" and the to-do form
  open, after a comment and a refused stage move, right-to-left (LANG=ar), the other sample
  leads, the no-access card, each error card the frame can show (lead not found, not
  installed, Bitrix24 error), the install page, the app's home page (connected and not),
  privacy, licence and the 404 page — zero serious or critical violations, and no link in
  running text told apart by colour alone;
* the keyboard alone reaches every control of the card in document order, each with a
  visible focus indicator (3:1 against what is behind it); Enter / Space toggle "Show all
  fields", Enter opens the to-do form and a slider link;
* at 1280 and 360 px the frame's document never scrolls on either axis once the frame asked
  the portal for its height: the rich lead, after "Show all fields", right-to-left, with long
  context panels, after actions, a card whose content changes in place, and the tallest
  error card (Bitrix24 Market rejects frames with scroll bars,
  market/preparing-to-publish/common-requirements.md in bitrix24/b24restdocs).
"""

from __future__ import annotations

import time

import pytest

from tests.browser.a11y_helpers import assert_accessible, new_a11y_page
from tests.browser.browser_helpers import (
    frame_metrics,
    iframe_height,
    open_lead_tab,
    poll,
    post_top_level,
    wait_app_frame,
)

LONG = ("Call back about the second warehouse: they need racks for 40 pallets, a quote for "
        "installation on site and a visit from the engineer before the end of the quarter. ")


@pytest.fixture
def a11y_page(browser, watch, app_server):
    """``a11y_page(width)`` → a page whose frames take injected scripts (axe) despite CSP."""
    contexts = []

    def make(width: int = 1280, height: int = 900, locale: str = "en-US"):
        context, page = new_a11y_page(browser, watch, app_server.url, width, height, locale)
        contexts.append(context)
        return page

    yield make
    for c in contexts:
        c.close()


def _open(page, portal, lead_id: int, width: int, user_id: int = 1, lang: str = "en",
          ready: str = ".lc-app"):
    """At phone width open the lead as Bitrix24 does in its side slider (IFRAME=Y)."""
    url = portal.lead_url(lead_id, user_id=user_id, lang=lang, tab="app")
    page.goto(url + ("&IFRAME=Y&IFRAME_TYPE=SIDE_SLIDER" if width < 700 else ""))
    return wait_app_frame(page, ready)


def _post_top_level(page, url: str, form: dict) -> None:
    post_top_level(page, url, form)
    page.wait_for_url(lambda u: u.startswith(url.split("?")[0]))


def _open_problem(page, lead_id: int, user_id: int = 1) -> tuple:
    """Post a lead tab for ``lead_id`` into the open frame (DevPortal.open, as in
    test_access.py) and wait for the error card."""
    page.evaluate("""([lead, user]) => DevPortal.open(document.querySelector('.app-frame-container'),
                       {kind: 'placement', binding: 0, lead: lead, user: user, lang: 'en'})""",
                  [lead_id, user_id])
    return wait_app_frame(page, ready="[data-problem]")


def _placement_status(watch, app_server) -> tuple:
    statuses = {s for s, u in watch.bad_responses if u.startswith(app_server.url + "/placement")}
    return tuple((s, app_server.url + "/placement") for s in statuses)


# --- axe-core: every state ---------------------------------------------------------------

@pytest.mark.parametrize("width", [1280, 360])
def test_rich_lead_with_panels_is_accessible(sim, installed, a11y_page, watch, width):
    page = a11y_page(width)
    locator, frame = _open(page, installed, 101, width)
    assert locator.locator(".lc-ctx--next").count() == 1
    assert_accessible(frame, f"lead 101 at {width}px")
    locator.locator("details.lc-all summary").click()
    poll(frame, "document.querySelector('details.lc-all').open")
    for plan in locator.locator("[data-lc-plan] > summary").all():
        plan.click()   # the to-do form, its labels and fields
    assert_accessible(frame, f"lead 101 with all fields and the to-do form at {width}px")
    watch.assert_clean()


@pytest.mark.parametrize("lead_id", [102, 103, 105, 106])
def test_other_sample_leads_are_accessible(sim, installed, a11y_page, watch, lead_id):
    page = a11y_page()
    _, frame = _open(page, installed, lead_id, 1280, user_id=2 if lead_id == 106 else 1)
    assert_accessible(frame, f"lead {lead_id}")
    watch.assert_clean()


def test_right_to_left_card_is_accessible(sim, installed, a11y_page, watch):
    page = a11y_page(locale="ar")
    _, frame = _open(page, installed, 101, 1280, lang="ar")
    assert_accessible(frame, "lead 101 in Arabic")
    watch.assert_clean()


def _notice(frame) -> str:
    """The card's status line once an action finished (as test_card_actions_browser.py)."""
    return poll(frame, "(() => { const n = document.querySelector('[data-lc-status]');"
                " return n && !n.hidden && !n.classList.contains('lc-notice--busy')"
                " && n.textContent.trim(); })()")


@pytest.fixture
def fresh_sample(sim, installed):
    """Actions write to the simulator: start from the sample leads and leave them so."""
    sim.reset(context=True)
    yield
    sim.reset(context=True)


def _comment_and_refused_stage(page, locator, frame) -> None:
    """A comment written by keyboard (the card updates in place), then a stage move Bitrix24
    refuses (its words shown beside the control)."""
    box = locator.locator("#lc-comment-text")
    box.scroll_into_view_if_needed()
    box.focus()
    page.keyboard.type("Agreed on a pilot with 5 vans. " + LONG)
    page.keyboard.press("Tab")
    page.keyboard.press("Enter")
    assert _notice(frame) == "Comment added."
    locator.locator("#lc-stage-select").select_option("PROCESSED")
    locator.locator("[data-lc-form=stage] button[type=submit]").click()
    locator.locator("#lc-stage-error").wait_for(state="visible")


@pytest.mark.parametrize("width", [1280, 360])
def test_card_after_actions_is_accessible(sim, fresh_sample, a11y_page, watch, width):
    page = a11y_page(width)
    locator, frame = _open(page, sim.portals["a"], 101, width)
    _comment_and_refused_stage(page, locator, frame)
    assert_accessible(frame, f"lead 101 after a comment and a refused stage move at {width}px")
    watch.assert_clean(allow_status=((422, "/actions"),))


def test_no_access_card_is_accessible(sim, installed, app_server, a11y_page, watch):
    page = a11y_page()
    _open(page, installed, 101, 1280, user_id=2)
    locator, frame = _open_problem(page, 104, user_id=2)
    assert locator.locator("[data-problem]").get_attribute("data-problem") == "access_denied"
    assert_accessible(frame, "no access")
    watch.assert_clean(allow_status=_placement_status(watch, app_server))


def test_lead_not_found_card_is_accessible(sim, installed, app_server, a11y_page, watch):
    page = a11y_page()
    _open(page, installed, 101, 1280)
    locator, frame = _open_problem(page, 999)
    assert locator.locator("[data-problem]").get_attribute("data-problem") == "lead_not_found"
    assert_accessible(frame, "lead not found")
    watch.assert_clean(allow_status=_placement_status(watch, app_server))


def test_bitrix24_error_card_is_accessible(sim, installed, app_server, a11y_page, watch):
    page = a11y_page()
    _open(page, installed, 101, 1280)
    sim.inject_error("a", "crm.lead.get", "INTERNAL_SERVER_ERROR", status=500, count=None)
    try:
        locator, frame = _open_problem(page, 102)
    finally:
        sim.clear_faults("a")
    code = locator.locator("[data-problem]").get_attribute("data-problem")
    assert code == "portal_error", code
    assert locator.locator("button[data-lc-action=reload]").count() == 1
    assert_accessible(frame, "Bitrix24 error")
    watch.assert_clean(allow_status=_placement_status(watch, app_server))


def test_not_installed_card_is_accessible(sim, installed, app_server, a11y_page, watch):
    sim.bind_placement("b", handler=app_server.url + "/placement", title="Lead Card")
    page = a11y_page()
    locator, frame = open_lead_tab(page, sim.portals["b"], 201, lang="de", ready="[data-problem]")
    assert locator.locator("[data-problem]").get_attribute("data-problem") == "not_installed"
    assert_accessible(frame, "not installed (German)")
    watch.assert_clean(allow_status=_placement_status(watch, app_server))


def test_install_page_is_accessible(sim, installed, app_server, a11y_page, watch):
    page = a11y_page()
    url, form = sim.install_request("a", user_id=1)
    _post_top_level(page, url, form)
    assert page.locator("[data-lc-install=finish]").count() == 1
    assert_accessible(page.main_frame, "install page")
    watch.assert_clean()


def test_home_pages_are_accessible(sim, installed, app_server, a11y_page, watch):
    page = a11y_page()
    url, form = sim.app_request("a", user_id=1)
    _post_top_level(page, url, form)
    assert page.locator("h1.lc-header__title").count() == 1, "not the connected home page"
    assert_accessible(page.main_frame, "home page (connected)")
    for path in ("/", "/privacy", "/license"):
        page.goto(app_server.url + path)
        assert_accessible(page.main_frame, path)
    page.goto(app_server.url + "/no-such-page")   # the designed 404 card
    assert page.locator("[data-problem]").get_attribute("data-problem") == "not_found"
    assert_accessible(page.main_frame, "page not found")
    watch.assert_clean(allow_status=((404, app_server.url + "/no-such-page"),))


def test_the_check_sees_violations(sim, installed, a11y_page, watch):
    """The helpers can fail: an image without text, grey-on-grey text, a link told by colour only."""
    page = a11y_page()
    _, frame = _open(page, installed, 102, 1280)
    frame.evaluate("""() => { const m = document.querySelector('main');
      m.insertAdjacentHTML('beforeend', '<p style="color:#c9ccd0">faint</p><img src="data:,">'); }""")
    with pytest.raises(AssertionError) as axe_says:
        assert_accessible(frame, "planted")
    assert "image-alt" in str(axe_says.value) and "color-contrast" in str(axe_says.value)
    frame.evaluate("""() => { document.querySelector('main > p:last-of-type').remove();
      document.querySelector('main > img').remove();
      document.querySelector('main').insertAdjacentHTML('beforeend',
        '<p class="lc-act__meta">Due today, ask <a href="#x" class="lc-link-plain">Ben</a></p>'); }""")
    frame.add_style_tag(content=".lc-link-plain { color: var(--ui-color-base-2); text-decoration: none }")
    with pytest.raises(AssertionError) as colour_only:
        assert_accessible(frame, "planted link")
    assert "colour only" in str(colour_only.value)
    watch.assert_clean()


# --- keyboard alone -----------------------------------------------------------------------

# What Tab stops at in the frame, in document order (the browser's own sequential focus
# navigation: no positive tabindex anywhere); the content of a closed <details> is skipped
# (checkVisibility: Chromium keeps its boxes, under content-visibility: hidden).
_TABBABLE = """() => Array.from(document.querySelectorAll(
    'a[href], button:not([disabled]), summary, input:not([disabled]), select, textarea, [tabindex]'))
  .filter(el => el.tabIndex >= 0
                && el.checkVisibility({visibilityProperty: true}))"""

# The focused control, and whether its focus indicator shows: an outline (or a box-shadow
# ring) whose colour stands out 3:1 from the background behind it (WCAG 1.4.11 / 2.4.7).
_FOCUSED = """() => {
  const el = document.activeElement;
  const all = (TABBABLE)();
  const s = getComputedStyle(el);
  const rgb = (c) => (c.match(/[\\d.]+/g) || []).map(Number);
  const lum = (c) => { const m = rgb(c).slice(0, 3).map(v => v / 255)
      .map(v => v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4));
    return 0.2126 * m[0] + 0.7152 * m[1] + 0.0722 * m[2]; };
  let bg = 'rgb(255, 255, 255)';
  for (let p = el.parentElement; p; p = p.parentElement) {
    const c = getComputedStyle(p).backgroundColor, a = rgb(c);
    if (a.length === 3 || (a.length === 4 && a[3] > 0)) { bg = c; break; }
  }
  const outline = s.outlineStyle !== 'none' && parseFloat(s.outlineWidth) > 0;
  const ring = outline ? s.outlineColor : (s.boxShadow !== 'none' ? s.boxShadow : null);
  const x = ring ? lum(ring) : 0, y = lum(bg);
  const contrast = ring ? (Math.max(x, y) + 0.05) / (Math.min(x, y) + 0.05) : 0;
  return {index: all.indexOf(el), tag: el.tagName, text: (el.innerText || '').trim().slice(0, 40),
          visible: !!ring && contrast >= 3, contrast: Math.round(contrast * 100) / 100,
          focusVisible: el.matches(':focus-visible'), outline: s.outlineStyle + ' ' + s.outlineWidth};
}""".replace("TABBABLE", _TABBABLE)


def _tab_through(page, frame, count: int) -> list[dict]:
    """Press Tab until ``count`` controls took focus, one after the other; where a control
    has several stops of its own (a date-and-time field: day, month, year, time), the
    presses that stay inside it count once."""
    stops: list[dict] = []
    presses = 0
    while len(stops) < count:
        page.keyboard.press("Tab")
        presses += 1
        assert presses <= count * 8, f"Tab is stuck: {stops[-3:]}"
        stop = frame.evaluate(_FOCUSED)
        if stops and stop["index"] == stops[-1]["index"] and stop["tag"] == "INPUT":
            continue
        stops.append(stop)
    return stops


def _enter_frame(page, frame) -> None:
    """Put the keyboard's focus just before the card: on the portal's last tab button (the
    frame comes next in the portal page's tab order), nothing inside the frame focused."""
    frame.evaluate("document.activeElement && document.activeElement.blur()")
    page.focus(".tabs button.tab:last-of-type")
    assert page.evaluate("document.activeElement.matches('.tabs button.tab:last-of-type')")


def test_every_control_of_the_card_by_keyboard(sim, installed, a11y_page, watch):
    page = a11y_page()
    locator, frame = _open(page, installed, 101, 1280)
    _enter_frame(page, frame)
    n = frame.evaluate(f"({_TABBABLE})().length")
    assert n > 20, f"only {n} controls on the rich lead?"
    stops = _tab_through(page, frame, n)
    assert [s["index"] for s in stops] == list(range(n)), stops
    hidden = [s for s in stops if not (s["visible"] and s["focusVisible"])]
    assert not hidden, f"focus not visible on: {hidden}"
    kinds = {s["tag"] for s in stops}
    assert {"A", "SUMMARY", "BUTTON"} <= kinds, kinds

    # "Show all fields" by keyboard: Enter opens it, what it reveals follows it in the tab
    # order, Space closes and opens it again
    toggle = frame.evaluate(f"({_TABBABLE})().indexOf(document.querySelector('details.lc-all > summary'))")
    assert toggle >= 0
    _enter_frame(page, frame)
    _tab_through(page, frame, toggle + 1)
    assert frame.evaluate("document.activeElement.matches('details.lc-all > summary')")
    page.keyboard.press("Enter")
    poll(frame, "document.querySelector('details.lc-all').open")
    more = frame.evaluate(f"({_TABBABLE})().length")
    assert more >= n
    if more > n:   # links among the additional fields come right after the toggle
        extra = _tab_through(page, frame, more - n)
        assert [s["index"] for s in extra] == list(range(toggle + 1, toggle + 1 + more - n)), extra
        assert all(s["visible"] and s["focusVisible"] for s in extra), extra
        for _ in range(more - n):
            page.keyboard.press("Shift+Tab")
    assert frame.evaluate("document.activeElement.matches('details.lc-all > summary')")
    page.keyboard.press("Space")
    poll(frame, "!document.querySelector('details.lc-all').open")
    page.keyboard.press("Space")
    poll(frame, "document.querySelector('details.lc-all').open")

    # the other disclosure ("Plan a to-do"): Enter opens it, its fields take focus in order
    plan = frame.evaluate(f"({_TABBABLE})().indexOf(document.querySelector('[data-lc-plan] > summary'))")
    if plan >= 0:
        _enter_frame(page, frame)
        _tab_through(page, frame, plan + 1)
        page.keyboard.press("Enter")
        poll(frame, "document.querySelector('[data-lc-plan]').open")
        inside = frame.evaluate("document.querySelectorAll('[data-lc-plan] input, [data-lc-plan] "
                                "textarea, [data-lc-plan] button').length")
        fields = _tab_through(page, frame, inside)
        assert [s["index"] for s in fields] == list(range(plan + 1, plan + 1 + inside)), fields
        assert all(s["visible"] and s["focusVisible"] for s in fields), fields
    watch.assert_clean()


def test_slider_link_by_keyboard(sim, installed, a11y_page, watch):
    page = a11y_page()
    locator, frame = _open(page, installed, 101, 1280)
    _enter_frame(page, frame)
    n = frame.evaluate(f"({_TABBABLE})().length")
    for _ in range(n):
        page.keyboard.press("Tab")
        if frame.evaluate("document.activeElement.hasAttribute('data-b24-path')"):
            break
    else:
        raise AssertionError("Tab never reached a link that opens the Bitrix24 slider")
    path = frame.evaluate("document.activeElement.getAttribute('data-b24-path')")
    url = frame.url
    page.keyboard.press("Enter")
    page.wait_for_function("DevPortal.paths.length > 0")
    assert page.evaluate("DevPortal.paths")[0].split("?")[0] == path
    page.locator(".slider-overlay").wait_for(state="visible")
    assert frame.url == url, "Enter navigated the frame instead of opening the slider"
    watch.assert_clean()


# --- no scroll bar ------------------------------------------------------------------------

def _wait_body_fitted(page, frame, timeout: float = 10.0) -> None:
    """Until the iframe is as tall as the frame's body (what frame.js measures and sends).

    Not ``wait_fitted``: right after the content shrank, the document's scrollHeight still
    equals the (old, taller) iframe height, which looks fitted before the resize arrived.
    """
    deadline = time.monotonic() + timeout
    while True:
        body = frame.evaluate("Math.ceil(document.body.getBoundingClientRect().height)")
        if abs(iframe_height(page) - body) <= 1:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"the iframe ({iframe_height(page)}px) never followed its content "
                                 f"({body}px); resizes: {page.evaluate('DevPortal.resizes')}")
        time.sleep(0.05)


def _assert_no_scroll(page, frame, what: str) -> dict:
    """Once the frame asked the portal for its height: the frame's document fits its
    viewport on both axes (no scroll bar), and the iframe is as tall as the content."""
    _wait_body_fitted(page, frame)
    m = frame_metrics(frame)
    assert m["scrollWidth"] <= m["clientWidth"], f"{what}: sideways overflow {m}"
    assert m["scrollHeight"] <= m["clientHeight"], f"{what}: vertical overflow {m}"
    assert m["bodyScrollWidth"] <= m["clientWidth"], f"{what}: sideways overflow {m}"
    return m


WIDTHS = [1280, 360]


@pytest.mark.parametrize("width", WIDTHS)
def test_rich_lead_fits_without_scroll_bars(sim, installed, a11y_page, watch, width):
    page = a11y_page(width, 800)
    locator, frame = _open(page, installed, 101, width)
    _assert_no_scroll(page, frame, f"lead 101 at {width}px")
    closed = frame_metrics(frame)["scrollHeight"]
    locator.locator("details.lc-all summary").click()
    poll(frame, "document.querySelector('details.lc-all').open")
    poll(frame, f"document.body.getBoundingClientRect().height > {closed + 20}")
    _assert_no_scroll(page, frame, f"lead 101, all fields, at {width}px")
    watch.assert_clean()


@pytest.mark.parametrize("width", WIDTHS)
def test_right_to_left_card_fits_without_scroll_bars(sim, installed, a11y_page, watch, width):
    page = a11y_page(width, 800, locale="ar")
    locator, frame = _open(page, installed, 101, width, lang="ar")
    _assert_no_scroll(page, frame, f"lead 101 in Arabic at {width}px")
    locator.locator("details.lc-all summary").click()
    poll(frame, "document.querySelector('details.lc-all').open")
    _assert_no_scroll(page, frame, f"lead 101 in Arabic, all fields, at {width}px")
    watch.assert_clean()


@pytest.mark.parametrize("width", WIDTHS)
def test_card_refits_when_its_content_changes(sim, installed, a11y_page, watch, width):
    """An action that updates the card in place (no <details> toggle, no image): the frame
    follows the new height, growing and shrinking back."""
    page = a11y_page(width, 800)
    _, frame = _open(page, installed, 102, width)
    _assert_no_scroll(page, frame, f"lead 102 at {width}px")
    before = frame_metrics(frame)["scrollHeight"]
    frame.evaluate("""(text) => { const p = document.createElement('p');
      p.className = 'lc-panel'; p.id = 'lc-test-grown'; p.textContent = text.repeat(12);
      document.querySelector('main').appendChild(p); }""", LONG)
    poll(frame, f"document.body.getBoundingClientRect().height > {before + 100}")
    _assert_no_scroll(page, frame, f"lead 102 grown at {width}px")
    frame.evaluate("document.getElementById('lc-test-grown').remove()")
    m = _assert_no_scroll(page, frame, f"lead 102 shrunk at {width}px")
    assert abs(m["scrollHeight"] - before) <= 3, "the frame did not shrink back"
    watch.assert_clean()


@pytest.mark.parametrize("width", WIDTHS)
def test_card_fits_after_actions(sim, fresh_sample, a11y_page, watch, width):
    page = a11y_page(width, 800)
    locator, frame = _open(page, sim.portals["a"], 101, width)
    _comment_and_refused_stage(page, locator, frame)
    _assert_no_scroll(page, frame, f"lead 101 after actions at {width}px")
    watch.assert_clean(allow_status=((422, "/actions"),))


@pytest.fixture
def long_panels(sim, installed):
    """Lead 101 with many long activities and comments (back to the samples afterwards)."""
    for i in range(8):
        sim.add_activity("a", 101, f"{i + 1}. " + LONG * 2, deadline_in=3600.0 * (i + 1))
        sim.add_activity("a", 101, f"Done {i + 1}: " + LONG, completed=True,
                         deadline_in=-3600.0 * (i + 1), type_id=2)
        sim.add_comment("a", 101, f"Note {i + 1}\n" + LONG * 3 + "\nhttps://nordwind.example/"
                        + "very-long-path-without-any-break-" * 4)
    yield
    sim.reset_context()


@pytest.mark.parametrize("width", WIDTHS)
def test_long_context_panels_fit_without_scroll_bars(sim, long_panels, a11y_page, watch, width):
    page = a11y_page(width, 800)
    locator, frame = _open(page, sim.portals["a"], 101, width)
    assert "Note " in locator.locator(".lc-ctx--history").inner_text(), "comments not shown"
    _assert_no_scroll(page, frame, f"lead 101, long panels, at {width}px")
    locator.locator("details.lc-all summary").click()
    poll(frame, "document.querySelector('details.lc-all').open")
    page.wait_for_timeout(100)
    _assert_no_scroll(page, frame, f"lead 101, long panels, all fields, at {width}px")
    watch.assert_clean()


@pytest.mark.parametrize("width", WIDTHS)
def test_tallest_error_card_fits_without_scroll_bars(sim, installed, app_server, a11y_page,
                                                     watch, width):
    # "not installed" carries the most text: title, message, the reinstall hint, the code
    sim.bind_placement("b", handler=app_server.url + "/placement", title="Lead Card")
    page = a11y_page(width, 800)
    locator, frame = _open(page, sim.portals["b"], 201, width, lang="de", ready="[data-problem]")
    assert locator.locator(".lc-state__hint").count() == 1
    _assert_no_scroll(page, frame, f"not installed at {width}px")
    watch.assert_clean(allow_status=_placement_status(watch, app_server))
