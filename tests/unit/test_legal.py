"""GET /privacy and /license (web/views/legal.py): language, the configured figures, headers,
framing, and the constants the policy names kept in step with the code."""

from __future__ import annotations

import re
from html import escape as html_escape
from pathlib import Path

import pytest

from app import create_app
from leadcard.storage import event_log, oauth_states, viewer_renewals
from leadcard.web.views import legal
from tests.unit.fakes import FakeBitrix24
from tests.unit.test_templates import Page

ROOT = Path(__file__).resolve().parents[2]


def assert_csp_safe(response) -> Page:
    """No inline handlers or style attributes; every script and style carries the nonce the
    response's CSP names; links only to our own pages or http(s)."""
    nonce = re.search(r"'nonce-([^']+)'", response.headers["Content-Security-Policy"]).group(1)
    page = Page(response.get_data(as_text=True))
    for tag, attrs in page.tags:
        for name in attrs:
            assert not name.lower().startswith("on") and name.lower() != "style", (tag, name)
        if tag in ("script", "style"):
            assert attrs.get("nonce") == nonce
        if tag == "a":
            assert (attrs.get("href") or "").startswith(("/privacy?", "/license?", "https://"))
    return page


def make_app(tmp_path, **env):
    settings = {
        "B24_CLIENT_ID": "local.legal", "B24_CLIENT_SECRET": "s" * 32,
        "APP_URL": "https://leadcard.example.test", "SECRET_KEY": "k" * 48,
        "DATABASE_URL": f"sqlite:///{tmp_path}/legal.sqlite3",
        "INSTANCE_PATH": str(tmp_path / "instance"), "DB_AUTO_MIGRATE": "1",
        **env,
    }
    return create_app(settings)


@pytest.fixture
def client(tmp_path):
    return make_app(tmp_path, REST_LOG_DAYS="9", VENDOR_NAME="Example Software Ltd",
                    VENDOR_CONTACT="privacy@example.test").test_client()


@pytest.mark.parametrize("path", ["/privacy", "/license"])
@pytest.mark.parametrize(("query", "header", "html_lang"), [
    ("", None, "en"),
    ("?lang=ru", None, "ru"),
    ("?lang=de", None, "de"),
    ("?lang=la", None, "es"),           # a Bitrix24 LANG id
    ("?lang=es", None, "es"),
    ("", "de-DE,de;q=0.9,en;q=0.5", "de"),
    ("", "nl-NL,ru;q=0.8", "ru"),       # the first language we have texts for
    ("", "nl-NL", "en"),
    ("", "zh-TW,en;q=0.5", "zh-Hant"),  # the script tells the two Chinese apart
    ("?lang=zh-Hans", None, "zh-Hans"),  # what the app's own links pass (views/legal.py)
    ("?lang=sc", None, "zh-Hans"),
    ("?lang=br", None, "pt-BR"),
    ("?lang=ar", None, "ar"),
    ("?lang=ru", "de", "ru"),           # ?lang= wins
    ("?lang=<script>", None, "en"),
])
def test_pages_render_in_the_viewers_language(client, path, query, header, html_lang):
    headers = {"Accept-Language": header} if header else {}
    response = client.get(path + query, headers=headers)
    assert response.status_code == 200
    assert response.mimetype == "text/html"
    page = assert_csp_safe(response)
    assert page.all("html")[0]["lang"] == html_lang
    assert "Example Software Ltd" in page.plain
    assert "privacy@example.test" in page.plain


def test_privacy_names_the_configured_figures(client):
    text = Page(client.get("/privacy").get_data(as_text=True)).plain
    assert "after 9 days" in text and "9 days are over" in text  # REST_LOG_DAYS=9
    assert "7 days" not in text
    assert f"for {legal.ACTION_KEY_HOURS} hours" in text
    assert "at most 10 minutes" in text  # REFERENCE_TTL_SECONDS default 600
    assert f"for {legal.EVENT_RECORD_DAYS} days" in text
    for store in ("portal", "rest-log", "action-keys", "caches", "sign-in", "events", "server-logs"):
        assert f'data-lc-store="{store}"' in client.get("/privacy").get_data(as_text=True)


def test_privacy_follows_rest_log_days_and_cache_ttl(tmp_path):
    client = make_app(tmp_path, REST_LOG_DAYS="3", REFERENCE_TTL_SECONDS="1800").test_client()
    text = Page(client.get("/privacy").get_data(as_text=True)).plain
    assert "after 3 days" in text and "at most 30 minutes" in text
    assert "the operator of this Lead Card service" in text  # no VENDOR_NAME


def test_policy_constants_match_the_code():
    assert legal.EVENT_RECORD_DAYS == event_log.RETENTION.days
    assert legal.SIGN_IN_RECORD_MINUTES * 60 >= viewer_renewals.VIEWER_RENEWAL_TTL
    assert legal.SIGN_IN_RECORD_MINUTES * 60 >= oauth_states.OAUTH_STATE_TTL


def test_license_lists_every_vendored_licence_with_its_text(client):
    notices = (ROOT / "THIRD_PARTY_NOTICES.md").read_text()
    listed = set(re.findall(r"static/vendor/licenses/([\w.-]+\.LICENSE)", notices))
    assert listed == {n.text_file for n in legal.NOTICES}
    html = client.get("/license").get_data(as_text=True)
    for notice in legal.NOTICES:
        assert f'data-lc-notice="{notice.text_file}"' in html
        first_line = (ROOT / "static/vendor/licenses" / notice.text_file).read_text().split("\n")[0]
        assert html_escape(first_line.strip(), quote=False) in html
    text = Page(html).plain
    assert "Licensor: Example Software Ltd" in text and "Lead Card" in text


@pytest.mark.parametrize("path", ["/privacy", "/license"])
def test_headers_cacheable_briefly_and_csp_as_every_page(client, path):
    response = client.get(path)
    assert response.headers["Cache-Control"] == legal.CACHE_CONTROL == "public, max-age=300"
    assert "Accept-Language" in response.headers["Vary"]
    csp = response.headers["Content-Security-Policy"]
    assert "default-src 'none'" in csp and "frame-ancestors 'none'" in csp  # no portal named
    assert "X-Frame-Options" not in response.headers and "Set-Cookie" not in response.headers
    assert client.head(path).status_code == 200


def test_a_stored_portal_may_frame_the_pages(tmp_path):
    app = make_app(tmp_path)
    fake = FakeBitrix24()
    portal = fake.add_portal("a")
    app.extensions["leadcard"].store.save_grant(fake.grant(portal))
    client = app.test_client()
    csp = client.get(f"/privacy?member_id={portal.member_id}").headers["Content-Security-Policy"]
    assert "frame-ancestors https://a.bitrix24.fake.test" in csp
    csp = client.get("/license?member_id=" + "0" * 32).headers["Content-Security-Policy"]
    assert "frame-ancestors 'none'" in csp  # unknown portal: framed by nobody
    assert client.get("/privacy?member_id=" + "x" * 500).status_code == 200


def test_other_pages_stay_no_store(client):
    assert client.get("/").headers["Cache-Control"] == "no-store"
    assert client.get("/nowhere").headers["Cache-Control"] == "no-store"


def test_vendor_settings_are_escaped(tmp_path):
    client = make_app(tmp_path, VENDOR_NAME="<b>Evil</b>",
                      VENDOR_CONTACT="<script>x</script>").test_client()
    for path in ("/privacy", "/license"):
        html = client.get(path).get_data(as_text=True)
        assert "<b>Evil" not in html and "<script>x" not in html
        assert "&lt;b&gt;Evil&lt;/b&gt;" in html
