"""Test 5: the hostile sample lead 103 executes nothing.

Lead 103 (devtools/devportal/data.py) carries ``<script>alert(..)</script>``,
``<img onerror=alert(..)>``, ``<svg onload=..>``, ``<b onmouseover=..>``,
``<iframe src=javascript:..>``, ``javascript:`` / ``data:`` URLs in multifields and UF
values, a BB-code ``[URL=javascript:..]``, a ``document.location=evil.example`` script in
COMMENTS and a markup source caption.  None of it sets a global: every payload calls
``alert`` (or navigates), so the checks are: no dialog (Playwright), no call of the
wrapped alert/confirm/prompt (init script canary), no navigation and no request off
127.0.0.1, no element with an ``on*`` attribute, no script/iframe/svg/object element the
app did not write, no ``javascript:``/``data:`` URL in any attribute, every link
http/https/mailto/tel or an in-portal slider link — and, because escaping means no
payload ever becomes markup, not a single CSP violation (the CSP would only be the
second line of defence).  Hover and click everything once for the on* payloads.
"""

from __future__ import annotations

import re

from tests.browser.browser_helpers import csp_violations, open_lead_tab

PORTAL_PATH = re.compile(r"^/(?:crm/(?:lead|deal|contact|company)/details/\d+/|"
                         r"crm/type/\d+/details/\d+/|company/personal/user/\d+/)$")

DOM_REPORT = r"""() => {
  const attrs = [], handlers = [], links = [], foreign = [];
  for (const el of document.querySelectorAll('*')) {
    for (const a of el.attributes) {
      const v = a.value.replace(/[\s\u0000-\u001f]+/g, '').toLowerCase();
      if (a.name.startsWith('on')) handlers.push(el.tagName + ' ' + a.name);
      if (v.startsWith('javascript:') || v.startsWith('vbscript:') ||
          (v.startsWith('data:') && !(el.tagName === 'LINK' && a.name === 'href' && v === 'data:,'))) {
        attrs.push(el.tagName + ' ' + a.name + '=' + a.value);
      }
    }
  }
  for (const a of document.querySelectorAll('a, area')) {
    links.push({href: a.getAttribute('href'), protocol: a.href ? new URL(a.href, location.href).protocol : null,
                path: a.getAttribute('data-b24-path'), text: a.textContent.trim().slice(0, 60)});
  }
  for (const el of document.querySelectorAll('script, iframe, frame, object, embed, svg:not(.lc-icon), form:not([data-lc-form]), base, meta[http-equiv]')) {
    if (el.tagName === 'SCRIPT' && el.src && new URL(el.src).origin === location.origin) continue;
    foreign.push(el.outerHTML.slice(0, 120));
  }
  const imgs = [...document.images].map(i => i.getAttribute('src'));
  return {attrs, handlers, links, foreign, imgs};
}"""


def test_hostile_lead_executes_nothing(sim, installed, page, watch):
    lead = sim.sample_lead("a", "hostile")
    navigations = []
    page.on("framenavigated", lambda f: navigations.append(f.url))

    locator, frame = open_lead_tab(page, installed, 103)
    app_origin = frame.evaluate("location.origin")
    frame_url = frame.url
    navigations.clear()

    # the title is shown as text, markup and all
    assert " ".join(locator.locator("h1").inner_text().split()) == " ".join(lead["TITLE"].split())

    # hover and click every element once (on* payloads), open "Show all fields"
    details = locator.locator("details.lc-all summary")
    if details.count():
        details.click()
    frame.evaluate("""() => {
      for (const el of document.querySelectorAll('body *')) {
        for (const type of ['mouseover', 'mouseenter', 'focus']) {
          el.dispatchEvent(new Event(type, {bubbles: true}));
        }
        if (!el.closest('a, summary, button')) el.click();
      }
    }""")
    page.wait_for_timeout(300)

    report = frame.evaluate(DOM_REPORT)
    assert report["handlers"] == []
    assert report["attrs"] == []
    assert report["foreign"] == []
    portal_origin = installed.base_url
    for src in report["imgs"]:
        assert src.startswith(portal_origin + "/upload/avatar/"), src
    assert report["links"], "no links at all on the hostile card?"
    for link in report["links"]:
        if link["href"] == "#":
            assert link["path"] and PORTAL_PATH.match(link["path"]), link
        else:
            assert link["protocol"] in ("http:", "https:", "mailto:", "tel:"), link
            assert not link["path"], link

    # the same checks for the whole document, not only what the frame holds
    scripts = frame.evaluate("[...document.scripts].map(s => [s.src, !!s.nonce || s.hasAttribute('nonce')])")
    assert all(src.startswith(app_origin + "/static/") for src, _ in scripts), scripts

    assert frame.evaluate("window.__lcCalls") == []
    assert page.evaluate("window.__lcCalls") == []
    assert watch.dialogs == []
    assert frame.url == frame_url
    assert navigations == []
    assert csp_violations(frame) == []
    assert page.evaluate("window.__lcCsp") == []
    watch.assert_clean()
