"""Static files over real HTTP: versioned URLs cached for a year, gzip/brotli, 304s.

The app serves its own static files (no CDN; the nginx front passes them through), so
what a browser caches and how many bytes it receives is decided here
(leadcard/web/static_files.py).
"""

from __future__ import annotations

import gzip
import re
from pathlib import Path

import brotli
import pytest
import requests

ROOT = Path(__file__).resolve().parents[2]
IMMUTABLE = "public, max-age=31536000, immutable"
# The four files every card page loads.
PAGE_FILES = ("css/b24-tokens.css", "css/card.css", "vendor/b24jssdk-2.2.0.min.js", "js/frame.js")


def get(live_app, path: str, encoding: str | None = "identity", **headers) -> requests.Response:
    """GET without decoding: ``.wire`` is what went over the wire. ``encoding=None``: no
    ``Accept-Encoding`` header at all (requests would otherwise send its own)."""
    headers["Accept-Encoding"] = encoding  # None removes the header
    response = requests.get(live_app.url + path, headers=headers, timeout=30, stream=True)
    response.wire = response.raw.read(decode_content=False)  # type: ignore[attr-defined]
    return response


@pytest.fixture
def page_urls(live_app) -> dict[str, str]:
    """file under static/ → the URL the home page links it by."""
    page = requests.get(live_app.url + "/", timeout=30)
    assert page.status_code == 200
    urls = re.findall(r'(?:src|href)="(/static/[^"]+)"', page.text)
    found = {re.sub(r"^/static/|\?.*$", "", url): url.replace("&amp;", "&") for url in urls}
    assert set(found) == set(PAGE_FILES), found
    return found


def test_every_page_file_is_versioned_and_cached_for_a_year(live_app, page_urls):
    for name, url in page_urls.items():
        assert re.fullmatch(rf"/static/{re.escape(name)}\?v=[0-9a-f]{{12}}", url), url
        response = get(live_app, url)
        assert response.status_code == 200, url
        assert response.headers["Cache-Control"] == IMMUTABLE, url
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        assert "frame-ancestors 'none'" in response.headers["Content-Security-Policy"]
        assert "Set-Cookie" not in response.headers
        assert response.headers["ETag"].startswith('"')


@pytest.mark.parametrize("accept, encoding", [
    ("br", "br"), ("gzip", "gzip"), ("gzip, deflate, br", "br"), ("identity", None), (None, None),
])
def test_each_encoding_decodes_to_the_file_itself(live_app, page_urls, accept, encoding):
    decode = {"br": brotli.decompress, "gzip": gzip.decompress, None: lambda b: b}[encoding]
    total = 0
    for name, url in page_urls.items():
        response = get(live_app, url, accept)
        source = (ROOT / "static" / name).read_bytes()
        assert response.status_code == 200
        assert response.headers.get("Content-Encoding") == encoding, (name, response.headers)
        assert response.headers["Vary"] == "Accept-Encoding"
        assert int(response.headers["Content-Length"]) == len(response.wire)
        assert decode(response.wire) == source, name
        assert response.headers["Content-Type"].endswith("; charset=utf-8")
        total += len(response.wire)
    raw = sum((ROOT / "static" / name).stat().st_size for name in PAGE_FILES)
    if encoding:
        assert total < raw * 0.3, (total, raw)   # 463 KB → ~115 KB (br) / ~134 KB (gzip)
    else:
        assert total == raw


def test_conditional_requests_answer_304(live_app, page_urls):
    url = page_urls["css/card.css"]
    first = get(live_app, url, "br")
    etag, modified = first.headers["ETag"], first.headers["Last-Modified"]
    again = get(live_app, url, "br", **{"If-None-Match": etag})
    assert again.status_code == 304 and again.wire == b""
    assert again.headers["Cache-Control"] == IMMUTABLE and again.headers["ETag"] == etag
    since = get(live_app, url, "br", **{"If-Modified-Since": modified})
    assert since.status_code == 304
    other = get(live_app, url, "br", **{"If-None-Match": '"another-version"'})
    assert other.status_code == 200 and brotli.decompress(other.wire) == (
        ROOT / "static/css/card.css").read_bytes()


def test_the_etag_is_the_content_hash_so_every_host_agrees(live_app, page_urls):
    import hashlib

    source = (ROOT / "static/vendor/b24jssdk-2.2.0.min.js").read_bytes()
    response = get(live_app, page_urls["vendor/b24jssdk-2.2.0.min.js"])
    assert response.headers["ETag"] == f'"{hashlib.sha256(source).hexdigest()[:32]}"'


@pytest.mark.parametrize("query", ["", "?v=000000000000", "?v=", "?x=1", "?v={v}&v=000000000000"])
def test_an_unversioned_or_stale_url_is_revalidated_not_kept(live_app, page_urls, query):
    """A deploy changes a file's bytes and its version together: a URL naming another
    version (an old page, or a host not yet deployed) must never be kept for a year."""
    url = page_urls["js/frame.js"]
    version = url.split("?v=")[1]
    response = get(live_app, "/static/js/frame.js" + query.format(v=version))
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "no-cache"
    assert "immutable" not in response.headers["Cache-Control"]
    assert response.wire == (ROOT / "static/js/frame.js").read_bytes()
    revalidated = get(live_app, "/static/js/frame.js" + query.format(v=version),
                      **{"If-None-Match": response.headers["ETag"]})
    assert revalidated.status_code == 304
    assert revalidated.headers["Cache-Control"] == "no-cache"


def test_pages_and_missing_files_stay_no_store(live_app):
    home = requests.get(live_app.url + "/", timeout=30)
    assert home.headers["Cache-Control"] == "no-store"
    missing = get(live_app, "/static/css/missing.css?v=000000000000")
    assert missing.status_code == 404
    assert missing.headers["Cache-Control"] == "no-store"
    assert "frame-ancestors" in missing.headers["Content-Security-Policy"]
    post = requests.post(live_app.url + "/static/css/card.css", timeout=30)
    assert post.status_code == 405 and post.headers["Cache-Control"] == "no-store"
    assert "Set-Cookie" not in post.headers


def test_no_compressed_copy_is_served_as_a_file_of_its_own(live_app, page_urls):
    for suffix in (".br", ".gz"):
        response = get(live_app, "/static/css/card.css" + suffix)
        assert response.status_code == 404, suffix


def test_the_vendored_licence_texts_are_served_as_text(live_app):
    """THIRD_PARTY_NOTICES.md says the licence texts are served with the static files."""
    licences = sorted((ROOT / "static/vendor/licenses").iterdir())
    assert licences
    for path in licences:
        response = get(live_app, f"/static/vendor/licenses/{path.name}", None)
        assert response.status_code == 200, path.name
        assert response.headers["Content-Type"] == "text/plain; charset=utf-8"
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        assert response.wire == path.read_bytes()   # ~1 KB: sent as it is
