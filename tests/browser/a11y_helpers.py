"""axe-core in the browser suite: WCAG 2.1 A/AA checks of a page or of our iframe.

The vendored, pinned axe-core (tests/vendor/axe-core/, test-only; THIRD_PARTY_NOTICES.md) is
injected into the frame under test with ``add_script_tag(path=…)``. Our pages' CSP allows only
scripts carrying the page nonce, so an injected tag would be refused: the contexts these tests
open set ``bypass_csp`` (``new_a11y_page``). The checks then judge the page as the user gets it.
"""

from __future__ import annotations

from tests.browser.browser_helpers import REPO, Watch, _attach

AXE = REPO / "tests" / "vendor" / "axe-core" / "axe.min.js"
TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]
BLOCKING = ("serious", "critical")

_RUN = """async (tags) => {
  const r = await axe.run(document, {runOnly: {type: 'tag', values: tags},
                                     resultTypes: ['violations']});
  return r.violations.map(v => ({id: v.id, impact: v.impact, help: v.help,
    nodes: v.nodes.map(n => ({target: n.target.join(' '), summary: n.failureSummary || ''}))}));
}"""


def new_a11y_page(browser, watch: Watch, app_url: str | None, width: int = 1280,
                  height: int = 900, locale: str = "en-US"):
    """A page in a fresh context that lets ``add_script_tag`` inject axe despite our CSP."""
    context = browser.new_context(viewport={"width": width, "height": height}, locale=locale,
                                  timezone_id="UTC", device_scale_factor=1, bypass_csp=True)
    page = context.new_page()
    page.set_default_timeout(20_000)
    _attach(page, watch, app_url)
    return context, page


def axe_violations(frame) -> list[dict]:
    """Every WCAG 2.0/2.1 A and AA violation axe finds in ``frame`` (a Playwright Frame)."""
    if not frame.evaluate("typeof window.axe === 'object'"):
        frame.add_script_tag(path=str(AXE))
    return frame.evaluate(_RUN, TAGS)


def format_violations(violations: list[dict]) -> str:
    """One line per failing node: impact, rule id, target selector, axe's summary."""
    lines = []
    for v in violations:
        lines.append(f"[{v['impact']}] {v['id']}: {v['help']}")
        for node in v["nodes"]:
            summary = " ".join(node["summary"].split())
            lines.append(f"    {node['target']}: {summary[:300]}")
    return "\n".join(lines)


def assert_accessible(frame, what: str) -> list[dict]:
    """Fail with a readable list if axe finds a serious or critical violation in ``frame``;
    return the minor/moderate ones (the caller may report them)."""
    violations = axe_violations(frame)
    blocking = [v for v in violations if v["impact"] in BLOCKING]
    assert not blocking, (f"{what}: {len(blocking)} serious/critical WCAG 2.1 AA violation(s)\n"
                          + format_violations(blocking))
    by_colour = links_told_by_colour_only(frame)
    assert not by_colour, (f"{what}: links in running text told apart by colour only "
                           f"(WCAG 1.4.1, axe link-in-text-block, serious): {by_colour}")
    return violations


# axe's link-in-text-block leaves a link "incomplete" (needs review) when it cannot sample the
# colours (overlapping boxes), which is exactly where our links sit in a line of secondary
# text. WCAG 1.4.1 (use of colour): a link in running text is told apart by more than its
# colour — an underline — or its colour differs from the text around it by at least 3:1.
_LINKS_BY_COLOUR = """() => {
  const lum = (c) => {
    const m = c.match(/\\d+(\\.\\d+)?/g).slice(0, 3).map(Number).map(v => v / 255)
      .map(v => v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4));
    return 0.2126 * m[0] + 0.7152 * m[1] + 0.0722 * m[2];
  };
  const ratio = (a, b) => { const x = lum(a), y = lum(b);
    return (Math.max(x, y) + 0.05) / (Math.min(x, y) + 0.05); };
  const blockOf = (el) => { let p = el.parentElement;
    while (p && getComputedStyle(p).display.startsWith('inline')) p = p.parentElement;
    return p; };
  const LABELS = '.lc-value__note, [class*="__type"], [class*="__label"], [class*="__kind"], '
    + '.lc-visually-hidden, .lc-avatar, .lc-badge, [aria-hidden="true"], a';  // links: a nav, not prose
  const out = [];
  for (const a of document.querySelectorAll('a[href]')) {
    const box = a.getBoundingClientRect();
    if (!box.width || !box.height) continue;
    const block = blockOf(a);
    if (!block) continue;
    // the text around the link, without the value's own labels (type, note, label chips:
    // styled apart, not prose) and what only screen readers get
    a.setAttribute('data-lc-under-test', '');
    const clone = block.cloneNode(true);
    a.removeAttribute('data-lc-under-test');
    clone.querySelector('[data-lc-under-test]').remove();
    for (const el of clone.querySelectorAll(LABELS)) el.remove();
    const rest = clone.textContent.replace(/\\s+/g, ' ').trim();
    if (!rest) continue;                       // the link is the whole line: not in running text
    const ls = getComputedStyle(a), bs = getComputedStyle(a.parentElement);
    if (ls.textDecorationLine.includes('underline')) continue;
    if (parseInt(ls.borderBottomWidth) > 0 && ls.borderBottomStyle !== 'none') continue;
    const r = ratio(ls.color, bs.color);
    if (r >= 3) continue;
    out.push({link: a.innerText.trim().slice(0, 40), around: rest.slice(0, 60),
              cls: a.className, ratio: Math.round(r * 100) / 100});
  }
  return out;
}"""


def links_told_by_colour_only(frame) -> list[dict]:
    """Visible links in a line of other text with neither an underline nor 3:1 against it."""
    return frame.evaluate(_LINKS_BY_COLOUR)
