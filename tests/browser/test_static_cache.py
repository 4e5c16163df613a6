"""The card's static files in a real browser: compressed on the first open, cached after.

A viewer opens lead tabs all day; each card page links the same five versioned files
(two stylesheets, the vendored frame library, frame.js, actions.js), served with a one-year immutable
``Cache-Control`` and gzip/brotli (leadcard/web/static_files.py). So:

* the first open transfers a fraction of the ~480 KB those files weigh, and the vendored
  SDK's Subresource Integrity still holds (it is computed over the decoded bytes);
* a second open in the same browser context — another tab, as Bitrix24 opens them —
  takes every static file from the browser's cache: gunicorn's access log shows no
  request for any of them and Resource Timing reports no bytes transferred.
"""

from __future__ import annotations

import re
from pathlib import Path

from tests.browser.browser_helpers import open_lead_tab

STATIC_ENTRIES = """() => performance.getEntriesByType('resource')
  .filter(e => new URL(e.name).pathname.startsWith('/static/'))
  .map(e => ({url: e.name, transfer: e.transferSize, encoded: e.encodedBodySize,
              decoded: e.decodedBodySize}))"""
PAGE_FILES = {"b24-tokens.css", "card.css", "b24jssdk-2.2.0.min.js", "frame.js", "actions.js"}
STATIC = Path(__file__).resolve().parents[2] / "static"
# Bytes of those four files on disk (the decoded size the browser must report for each).
UNCOMPRESSED = sum(p.stat().st_size for p in STATIC.rglob("*") if p.name in PAGE_FILES)


def _static_requests(log: str) -> list[str]:
    return re.findall(r'"GET (/static/[^ ?"]+)', log)


def _names(entries: list[dict]) -> set[str]:
    return {e["url"].split("?")[0].rsplit("/", 1)[-1] for e in entries}


def test_second_open_takes_every_static_file_from_the_browser_cache(
        installed, app_server, page, watch):
    responses = []
    page.on("response", lambda r: responses.append(r) if "/static/" in r.url else None)
    start = app_server.log_size()
    _, frame = open_lead_tab(page, installed, 101)
    first = frame.evaluate(STATIC_ENTRIES)
    assert _names(first) == PAGE_FILES, first
    # Every file came over the network, compressed, and decoded to its full size.
    assert all(e["transfer"] > 0 for e in first), first
    assert all(e["encoded"] < e["decoded"] for e in first), first
    assert sum(e["decoded"] for e in first) == UNCOMPRESSED
    transferred = sum(e["transfer"] for e in first)
    print(f"first open: static files transferred {transferred} bytes "
          f"(decoded {sum(e['decoded'] for e in first)})")
    assert transferred < 160_000, first          # far below 463 KB (measured: ~118 KB)
    sdk = next(r for r in responses if "b24jssdk" in r.url)
    assert sdk.header_value("content-encoding") in ("br", "gzip")
    assert "immutable" in (sdk.header_value("cache-control") or "")
    # The integrity-checked library ran: the frame handshake (open_lead_tab) needs it.
    assert frame.evaluate("typeof B24Js") == "object"
    assert frame.evaluate(
        "document.querySelector('script[integrity]').src").split("?")[0].endswith(
        "b24jssdk-2.2.0.min.js")
    served = _static_requests(app_server.log_since(start))
    assert {p.rsplit("/", 1)[-1] for p in served} == PAGE_FILES, served

    # Another tab of the same browser opens the card again.
    middle = app_server.log_size()
    second_tab = page.context.new_page()
    second_tab.set_default_timeout(20_000)
    second_tab.on("pageerror", lambda e: watch.page_errors.append(str(e)))
    _, frame2 = open_lead_tab(second_tab, installed, 101)
    again = frame2.evaluate(STATIC_ENTRIES)
    assert _names(again) == PAGE_FILES, again
    assert [e for e in again if e["transfer"] != 0] == [], again
    assert frame2.evaluate("typeof B24Js") == "object"
    log = app_server.log_since(middle)
    assert '"POST /placement' in log   # the card page itself is no-store: fetched again
    assert _static_requests(log) == [], _static_requests(log)
    watch.assert_clean()
