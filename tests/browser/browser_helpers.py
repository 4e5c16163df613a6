"""Helpers of the browser suite (imported by conftest.py and the test modules).

Kept out of conftest.py so test modules never ``import conftest`` (the repo has several).
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from urllib.parse import urljoin, urlsplit

import requests

from devtools.harness import AppProcess

REPO = Path(__file__).resolve().parents[2]
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run",
    # nothing leaves 127.0.0.1: every other host name fails to resolve.  (Not Playwright
    # routing: with a route installed Chromium stops fetching /favicon.ico, and a missing
    # favicon is one of the console errors this suite must see.)
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
]
SCREENSHOTS = REPO / "test-output" / "screenshots"

# Sample leads on portal "a" (devtools/devportal/data.py) the card must render.
SAMPLE_LEADS = {101: "rich", 102: "minimal", 103: "hostile", 105: "failed", 106: "converted",
                107: "unknown_user"}

# Every page script here is ours; this runs first in every frame (parent, app iframe,
# slider) and records what the page itself cannot report to Playwright.
INIT_SCRIPT = r"""
(() => {
  const w = window;
  w.__lcCsp = [];
  // canaries: every sample payload (devtools/devportal/data.py) calls alert() or moves
  // document.location; the originals still run so Playwright also sees the dialog
  w.__lcCalls = [];
  for (const name of ["alert", "confirm", "prompt", "print"]) {
    const orig = w[name];
    w[name] = function (...args) { w.__lcCalls.push([name, String(args[0])]); return orig.apply(this, args); };
  }
  document.addEventListener("securitypolicyviolation", (e) => {
    w.__lcCsp.push({directive: e.violatedDirective, blocked: e.blockedURI, sample: e.sample,
                    source: e.sourceFile, line: e.lineNumber});
  }, true);
})();
"""


def _loopback(url: str) -> bool:
    parts = urlsplit(url)
    if parts.scheme in ("data", "about", "blob", "chrome-error"):
        return True
    return parts.hostname == "127.0.0.1"


# The `app_server` fixture: Lead Card under gunicorn (url, log(), log_size(), log_since()).
AppServer = AppProcess


# --- page + watcher -------------------------------------------------------------

@dataclass
class Watch:
    console: list = field(default_factory=list)   # (type, text, url)
    page_errors: list = field(default_factory=list)
    dialogs: list = field(default_factory=list)   # (type, message, frame url)
    bad_responses: list = field(default_factory=list)  # (status, url)
    failed_requests: list = field(default_factory=list)  # (url, failure)
    offsite: list = field(default_factory=list)   # requests for anything but 127.0.0.1
    app_requests: list = field(default_factory=list)  # (method, url) to the app

    def errors(self) -> list:
        return [c for c in self.console if c[0] in ("error", "assert")]

    def assert_clean(self, allow_status: tuple = ()) -> None:
        """No console error, page error, dialog, 4xx/5xx, failed or off-site request.

        ``allow_status``: (status, url-substring) pairs a test expects, e.g. a designed
        error page answered with 403 (Chromium logs those as console errors too).
        """
        def allowed_resp(status, url):
            return any(status == s and sub in url for s, sub in allow_status)

        console = [c for c in self.errors()
                   if not (c[1].startswith("Failed to load resource")
                           and any(allowed_resp(s, c[2]) for s, _ in allow_status))]
        problems = {
            "console errors": console,
            "page errors": self.page_errors,
            "dialogs": self.dialogs,
            "HTTP errors": [r for r in self.bad_responses if not allowed_resp(*r)],
            "failed requests": self.failed_requests,
            "off-site requests": self.offsite,
        }
        problems = {k: v for k, v in problems.items() if v}
        assert not problems, f"browser reported problems: {problems}"


def _attach(page, watch: Watch, app_url: str | None) -> None:
    page.on("console", lambda m: watch.console.append((m.type, m.text, (m.location or {}).get("url", ""))))
    page.on("pageerror", lambda e: watch.page_errors.append(str(e)))

    def on_dialog(dialog):
        watch.dialogs.append((dialog.type, dialog.message, dialog.page.url if dialog.page else ""))
        dialog.dismiss()

    page.on("dialog", on_dialog)
    page.on("response", lambda r: watch.bad_responses.append((r.status, r.url)) if r.status >= 400 else None)

    def on_failed(req):
        # net::ERR_ABORTED is the browser cancelling a request because the page or frame
        # navigated on (a test opening the next lead while a lazy avatar still loads);
        # every other failure counts.
        if _loopback(req.url) and req.failure != "net::ERR_ABORTED":
            watch.failed_requests.append((req.url, req.failure))

    page.on("requestfailed", on_failed)

    def on_request(req):
        if not _loopback(req.url):
            watch.offsite.append(req.url)   # it fails to resolve (CHROMIUM_ARGS)
        if app_url and req.url.startswith(app_url):
            watch.app_requests.append((req.method, req.url))

    page.on("request", on_request)


def new_page(browser, watch: Watch, app_url: str | None, width: int = 1200, height: int = 900,
             locale: str = "en-US"):
    context = browser.new_context(viewport={"width": width, "height": height}, locale=locale,
                                  timezone_id="UTC", device_scale_factor=1)
    context.add_init_script(INIT_SCRIPT)
    page = context.new_page()
    page.set_default_timeout(20_000)   # generous: CI boxes with 2 CPUs under load
    _attach(page, watch, app_url)
    return context, page


# --- helpers shared by the test modules ----------------------------------------------------

APP_FRAME = "iframe.app-frame"


def open_lead_tab(page, portal, lead_id: int, user_id: int = 1, lang: str = "en",
                  ready: str = ".lc-app"):
    """Open the lead page with our tab active; wait until the frame rendered and was fitted.

    Returns (frame_locator, frame) — the Playwright Frame of our iframe.
    """
    page.goto(portal.lead_url(lead_id, user_id=user_id, lang=lang, tab="app"))
    return wait_app_frame(page, ready)


def wait_app_frame(page, ready: str = ".lc-app", resized: bool = True):
    page.wait_for_selector(APP_FRAME, state="attached")
    locator = page.frame_locator(APP_FRAME)
    locator.locator(ready).first.wait_for(state="visible")
    frame = page.locator(APP_FRAME).element_handle().content_frame()
    frame.wait_for_load_state("load")
    if resized:
        # frame.js fits the iframe once the JS library finished the handshake
        page.wait_for_function(
            "() => { const f = document.querySelector('iframe.app-frame');"
            " return !!f && DevPortal.resizes.some(r => r.appSid === f.dataset.appSid); }")
        poll(frame, "document.documentElement.classList.contains('lc-in-frame')")
    return locator, frame


def poll(frame, expression: str, timeout: float = 20.0, interval: float = 0.05):
    """Wait until ``expression`` is truthy in ``frame``.

    Not ``frame.wait_for_function``: its polling evaluates the predicate with eval(), which
    our CSP (no 'unsafe-eval') rightly refuses; a plain evaluate is not subject to it.
    """
    deadline = time.monotonic() + timeout
    while True:
        value = frame.evaluate(expression)
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for: {expression}")
        time.sleep(interval)


def frame_metrics(frame) -> dict:
    return frame.evaluate("""() => {
      const d = document.documentElement;
      return {scrollWidth: d.scrollWidth, clientWidth: d.clientWidth,
              scrollHeight: d.scrollHeight, clientHeight: d.clientHeight,
              bodyScrollWidth: document.body.scrollWidth, innerWidth: window.innerWidth,
              bodyHeight: document.body.getBoundingClientRect().height};
    }""")


def iframe_height(page) -> float:
    return page.evaluate("document.querySelector('iframe.app-frame').getBoundingClientRect().height")


def csp_violations(frame) -> list:
    return frame.evaluate("window.__lcCsp || []")


_SOURCE_MAP = re.compile(r"[#@] ?sourceMappingURL=(\S+)")


def assert_page_assets(page) -> None:
    """Every script/stylesheet any frame of ``page`` loaded: a source map it names exists;
    the top-level document: its favicon (``link rel=icon`` or ``/favicon.ico``) exists."""
    problems, seen = [], set()
    for frame in page.frames:
        if frame.is_detached() or not frame.url.startswith("http://127.0.0.1"):
            continue
        urls = frame.evaluate("performance.getEntriesByType('resource')"
                              ".filter(e => ['script', 'link', 'css'].includes(e.initiatorType))"
                              ".map(e => e.name)")
        for url in urls:
            if url in seen or not _loopback(url):
                continue
            seen.add(url)
            response = requests.get(url, timeout=10)
            refs = _SOURCE_MAP.findall(response.text[-4096:])
            refs += [v for k, v in response.headers.items() if k.lower() in ("sourcemap", "x-sourcemap")]
            for ref in refs:
                if ref.startswith("data:"):
                    continue
                target = urljoin(url, ref)
                status = requests.get(target, timeout=10).status_code
                if status != 200:
                    problems.append(f"{url} names source map {target}: HTTP {status}")
        if frame is page.main_frame:
            icon = frame.evaluate("(document.querySelector('link[rel~=icon]') || {}).href || null")
            target = icon or urljoin(frame.url, "/favicon.ico")
            if not target.startswith("data:"):
                status = requests.get(target, timeout=10).status_code
                if status != 200:
                    problems.append(f"{frame.url}: favicon {target}: HTTP {status}")
    assert not problems, problems


# --- our message catalogs ------------------------------------------------------------------

@cache
def catalog(lang: str) -> dict:
    """msgid → msgstr of translations/<lang>/LC_MESSAGES/messages.po ({} for English)."""
    from babel.messages.pofile import read_po

    if lang == "en":
        return {}
    with open(REPO / "translations" / lang / "LC_MESSAGES" / "messages.po", "rb") as fh:
        cat = read_po(fh)
    return {m.id: m.string for m in cat if m.id and m.string and not m.fuzzy}


def expected(lang: str, msgid: str) -> str:
    """What the card must show for ``msgid`` in catalog ``lang``."""
    text = catalog(lang).get(msgid, msgid)
    if lang != "en":
        assert text != msgid, f"{lang} catalog has no translation of {msgid!r}"
    return text


def wait_fitted(page, frame, timeout: float = 5.0) -> dict:
    """Wait until the iframe's height matches its document (a resize may still be in
    flight: ResizeObserver → requestAnimationFrame → postMessage → parent); return the
    frame's metrics."""
    deadline = time.monotonic() + timeout
    while True:
        m = frame_metrics(frame)
        if abs(iframe_height(page) - m["scrollHeight"]) <= 3 or time.monotonic() > deadline:
            return m
        time.sleep(0.05)


def post_top_level(page, url: str, form: dict) -> None:
    """POST ``form`` to ``url`` as the page's own navigation (an app page opened outside the
    portal frame: the install page, the home page, a placement opened top-level)."""
    page.set_content("<!doctype html><title>post</title><form method=post></form>")
    page.evaluate(
        """([url, form]) => { const f = document.forms[0]; f.action = url;
             for (const [k, v] of Object.entries(form)) {
               const i = document.createElement('input'); i.type = 'hidden'; i.name = k; i.value = v;
               f.appendChild(i); }
             f.submit(); }""", [url, form])


MAX_DOCS_SHOT_BYTES = 400 * 1024


def keep_docs_shot(crop, docs_shot) -> None:
    """The README's screenshot: written when missing or with LEADCARD_UPDATE_SCREENSHOTS=1;
    either way small enough for the repository."""
    import os
    import shutil

    assert crop.stat().st_size < MAX_DOCS_SHOT_BYTES, f"{crop.stat().st_size} bytes"
    if not docs_shot.exists() or os.environ.get("LEADCARD_UPDATE_SCREENSHOTS") == "1":
        docs_shot.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(crop, docs_shot)
    assert docs_shot.stat().st_size < MAX_DOCS_SHOT_BYTES
