"""Templates rendered in a minimal Flask app with frontend.init_app and a stub csp_nonce."""

from __future__ import annotations

import dataclasses
import re
from datetime import UTC, datetime
from html.parser import HTMLParser
from pathlib import Path
from types import SimpleNamespace

import pytest
from flask import Flask, g, render_template

from leadcard.card import i18n
from leadcard.card import model as cards
from leadcard.card.build import build_card
from leadcard.card.model import ReferenceData
from leadcard.web import assets, frontend

ROOT = Path(__file__).resolve().parents[2]
NONCE = "TESTNONCE123"
XSS = "<script>alert(1)</script><img src=x onerror=alert(2)>"
B24_PATH = re.compile(
    r"^/(?:crm/(?:lead|deal|contact|company)/details/\d+/|crm/type/\d+/details/\d+/|company/personal/user/\d+/)$"
)


@pytest.fixture
def app():
    app = Flask("leadcard_templates_test", root_path=str(ROOT))
    app.config["TESTING"] = True
    frontend.init_app(app)
    app.jinja_env.globals["csp_nonce"] = lambda: NONCE
    return app


class Page(HTMLParser):
    """Every start tag with its attributes, and the text."""

    def __init__(self, html: str) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []
        self.feed(html)

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))

    def handle_startendtag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data):
        self.text.append(data)

    def all(self, tag: str) -> list[dict[str, str | None]]:
        return [attrs for name, attrs in self.tags if name == tag]

    @property
    def plain(self) -> str:
        return " ".join("".join(self.text).split())


def render(app, template: str, lang: str | None = "en", use_g: bool = True, **context) -> str:
    path = f"/?LANG={lang}" if lang is not None else "/"
    with app.test_request_context(path, method="POST"):
        if use_g and lang is not None:
            g.lang = lang
        return render_template(template, **context)


def assert_csp_safe(html: str) -> Page:
    """No inline handlers or style attributes; scripts/styles external or nonce'd; safe hrefs."""
    page = Page(html)
    for tag, attrs in page.tags:
        for name in attrs:
            assert not name.lower().startswith("on"), f"inline handler {name} on <{tag}>"
            assert name.lower() != "style", f"style attribute on <{tag}>"
        if tag == "script":
            src = attrs.get("src") or ""
            assert src.startswith("/static/") or attrs.get("nonce") == NONCE, attrs
            assert attrs.get("nonce") == NONCE
        if tag == "style":
            assert attrs.get("nonce") == NONCE
        if tag == "link" and attrs.get("rel") == "stylesheet":
            assert (attrs.get("href") or "").startswith("/static/")
        if tag == "img":
            assert (attrs.get("src") or "").startswith(("https://", "http://", "/static/", "data:"))
        if "href" in attrs and tag == "a":
            href = attrs["href"] or ""
            own_page = attrs.get("data-lc-legal") and href.startswith(("/privacy?", "/license?"))
            assert own_page or href == "#" or href.startswith(
                ("http://", "https://", "tel:", "mailto:")), href
            if href == "#":
                assert B24_PATH.match(attrs.get("data-b24-path") or ""), attrs
            if href.startswith("http"):
                assert attrs.get("target") == "_blank" and "noopener" in (attrs.get("rel") or "")
        if "data-b24-path" in attrs:
            assert B24_PATH.match(attrs["data-b24-path"] or "")
    assert "javascript:" not in " ".join(str(a.get("href")) for a in page.all("a"))
    return page


def assert_frame_library(page: Page) -> None:
    # frame.js loads the vendored library after the card's first paint (its loadLibrary),
    # from the URL and with the SRI hash its own tag carries; no other tag loads it.
    scripts = page.all("script")
    frame_js = [s for s in scripts if (s.get("src") or "").startswith("/static/js/frame.js")]
    assert len(frame_js) == 1
    vendored = frame_js[0].get("data-lc-sdk-src") or ""
    assert vendored.startswith("/static/") and vendored.split("?")[0].endswith(assets.B24JSSDK_FILE)
    assert frame_js[0].get("data-lc-sdk-integrity") == assets.B24JSSDK_INTEGRITY
    assert not [s for s in scripts if assets.B24JSSDK_FILE in (s.get("src") or "")]
    js = (ROOT / "static/js/frame.js").read_text()
    assert 'script.crossOrigin = "anonymous"' in js and "script.integrity" in js


# --- card.html ---


def hostile_lead() -> dict:
    return {
        "ID": "7",
        "TITLE": XSS,
        "NAME": '"><svg onload=alert(3)>',
        "LAST_NAME": "O'Brien & Co",
        "STATUS_ID": "EVIL",
        "OPPORTUNITY": "1000",
        "CURRENCY_ID": "EUR",
        "COMMENTS": "<p>Hi</p><script>alert(4)</script>[URL=javascript:alert(5)]click[/URL]",
        "COMPANY_TITLE": "</dd></dl><script>alert(6)</script>",
        "COMPANY_ID": "5",
        "CONTACT_ID": "9",
        "POST": "{{ 7*7 }}",
        "SOURCE_DESCRIPTION": "{% raw %}x",
        "PHONE": [
            {"VALUE_TYPE": "WORK", "VALUE": "javascript:alert(7)"},
            {"VALUE_TYPE": "MOBILE", "VALUE": "+1 555 010 9999"},
        ],
        "EMAIL": [
            {"VALUE_TYPE": "WORK", "VALUE": "x@y.example?bcc=z@evil.example"},
            {"VALUE_TYPE": "HOME", "VALUE": "ann@example.com"},
        ],
        "WEB": [
            {"VALUE_TYPE": "WORK", "VALUE": "javascript:alert(8)"},
            {"VALUE_TYPE": "OTHER", "VALUE": "data:text/html,<script>alert(9)</script>"},
            {"VALUE_TYPE": "HOME", "VALUE": 'https://example.com/"onmouseover=alert(10)'},
        ],
        "IM": [{"VALUE_TYPE": "OPENLINE", "VALUE": "imol|livechat|1|67|21"}],
        "ASSIGNED_BY_ID": "1",
        "CREATED_BY_ID": "7",
        "DATE_CREATE": "2024-05-23T18:18:25+02:00",
        "UF_CRM_X": XSS,
        "UF_CRM_URL": "javascript:alert(11)",
    }


def hostile_ref() -> ReferenceData:
    return ReferenceData(
        fields={
            "UF_CRM_X": {"type": "string", "formLabel": "<b>label</b>"},
            "UF_CRM_URL": {"type": "url", "formLabel": "Link"},
        },
        statuses={
            "STATUS": [
                {
                    "STATUS_ID": "EVIL",
                    "NAME": "<i>stage</i>",
                    "COLOR": "#ff0000;}</style><script>alert(12)</script>",
                }
            ]
        },
        users={
            "1": {
                "ID": "1",
                "NAME": "<u>Ann</u>",
                "LAST_NAME": "Lee",
                "PERSONAL_PHOTO": "javascript:alert(13)",
            }
        },
        companies={"5": {"TITLE": "<b>Evil Corp</b>"}},
        contacts={"9": {"NAME": "<svg/onload=alert(14)>"}},
    )


def test_card_escapes_hostile_crm_data(app):
    card = build_card(hostile_lead(), hostile_ref(), "en")
    html = render(app, "card.html", card=card)
    page = assert_csp_safe(html)
    assert_frame_library(page)
    assert "<script>alert" not in html
    assert (
        "<svg" not in html and "<img src=x" not in html and "<b>" not in html and "<i>" not in html
    )
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "javascript:alert" not in " ".join(a.get("href") or "" for a in page.all("a"))
    # Text survives as text (escaped, then decoded by the parser).
    assert XSS in page.plain.replace("  ", " ")
    assert "{{ 7*7 }}" in page.plain and "49" not in page.plain
    assert "O'Brien & Co" in page.plain
    # The bad stage colour produced no <style> block at all.
    assert page.all("style") == []
    assert "alert(12)" not in html
    # Comments: HTML/BB-code reduced to text, the script dropped.
    assert "Hi" in page.plain and "click" in page.plain and "alert(4)" not in html
    # The only real links: a phone, an e-mail; portal links carry data-b24-path.
    hrefs = sorted(a["href"] for a in page.all("a"))
    assert "tel:+15550109999" in hrefs and "mailto:ann@example.com" in hrefs
    # A quote inside an otherwise valid URL stays inside the attribute (no onmouseover attribute).
    assert [h for h in hrefs if h.startswith("http")] == [
        'https://example.com/"onmouseover=alert(10)'
    ]
    assert 'href="https://example.com/&#34;onmouseover=alert(10)"' in html
    paths = sorted(a["data-b24-path"] for a in page.all("a") if a.get("data-b24-path"))
    assert paths == [
        "/company/personal/user/1/",
        "/crm/company/details/5/",
        "/crm/contact/details/9/",
    ]
    # A hostile avatar URL is never emitted.
    assert page.all("img") == []


def test_card_stage_colour_goes_into_a_nonced_style_block(app):
    ref = ReferenceData(
        statuses={"STATUS": [{"STATUS_ID": "NEW", "NAME": "New", "COLOR": "#39A8EF"}]}
    )
    html = render(app, "card.html", card=build_card({"STATUS_ID": "NEW", "TITLE": "T"}, ref, "en"))
    page = assert_csp_safe(html)
    styles = re.findall(r"<style nonce=\"TESTNONCE123\">(.*?)</style>", html, re.S)
    assert styles == [".lc-stage--custom{--lc-stage-bg:#39a8ef;--lc-stage-fg:#000000}"]
    pill = [a for t, a in page.tags if "lc-stage" in (a.get("class") or "").split()]
    assert pill and "lc-stage--custom" in pill[0]["class"]


def filled_lead() -> dict:
    return {
        "ID": "22",
        "TITLE": "Klaus Weber",
        "NAME": "Klaus",
        "LAST_NAME": "Weber",
        "POST": "Buyer",
        "STATUS_ID": "NEW",
        "OPPORTUNITY": "48250",
        "CURRENCY_ID": "EUR",
        "IS_MANUAL_OPPORTUNITY": "N",
        "COMMENTS": "Call me",
        "OPENED": "Y",
        "ASSIGNED_BY_ID": "1",
        "PHONE": [{"VALUE_TYPE": "MOBILE", "VALUE": "+49 170 1234567"}],
        "WEB": [{"VALUE_TYPE": "WORK", "VALUE": "https://example.de"}],
        "UTM_SOURCE": "google",
        "DATE_CREATE": "2024-05-23T18:18:25+02:00",
    }


@pytest.mark.parametrize(
    "lang, html_lang, expected",
    [
        (
            "en",
            "en",
            [
                "Contact person",
                "Deal value",
                "Show all fields",
                "Mobile",
                "Responsible",
                "€48,250.00",
            ],
        ),
        (
            "ru",
            "ru",
            [
                "Контактное лицо",
                "Сумма сделки",
                "Показать все поля",
                "Мобильный",
                "Ответственный",
                "48 250,00 €",
            ],
        ),
        (
            "de",
            "de",
            [
                "Ansprechpartner",
                "Auftragswert",
                "Alle Felder anzeigen",
                "Mobil",
                "Verantwortlich",
                "48.250,00 €",
            ],
        ),
        (
            "la",
            "es",
            [
                "Persona de contacto",
                "Valor del negocio",
                "Mostrar todos los campos",
                "Móvil",
                "Responsable",
                "48.250,00 €",
            ],
        ),
        ("br", "pt-BR", ["€ 48.250,00"]),  # texts: tests/integration/test_every_language.py
    ],
)
def test_card_in_each_language(app, lang, html_lang, expected):
    card = build_card(filled_lead(), ReferenceData(), i18n.format_locale_for_lang(lang))
    html = render(app, "card.html", lang=lang, card=card)
    page = assert_csp_safe(html)
    assert page.all("html")[0]["lang"] == html_lang
    text = page.plain.replace("\u00a0", " ").replace("\u202f", " ")
    for phrase in expected:
        assert phrase in text, phrase
    assert page.all("a")[0]["href"] in ("tel:+491701234567", "#", "https://example.de")
    assert any(a.get("href") == "https://example.de" for a in page.all("a"))


def test_card_show_all_fields_uses_details(app):
    html = render(app, "card.html", card=build_card(filled_lead(), ReferenceData(), "en"))
    page = Page(html)
    assert len(page.all("details")) == 1 and len(page.all("summary")) == 1
    assert "Available to everyone" in page.plain


def test_card_rows_follow_the_model(app):
    # _macros.html reads rows and values by attribute name, never by position.
    assert [f.name for f in dataclasses.fields(cards.Field)] == ["code", "label", "values", "inline", "hint"]
    assert [f.name for f in dataclasses.fields(cards.Value)] == [
        "text", "kind", "href", "b24_path", "note", "photo", "initials"
    ]
    with pytest.raises(TypeError):
        iter(cards.Value("x"))  # type: ignore[call-overload]
    lead = dict(
        filled_lead(),
        CREATED_BY_ID="1",
        EMAIL=[{"VALUE_TYPE": "WORK", "VALUE": "k@example.de"}],
        COMPANY_ID="5",
    )
    users = {"1": {"NAME": "Ann", "LAST_NAME": "Lee", "WORK_POSITION": "Sales"}}
    card = build_card(lead, ReferenceData(users=users), "en")
    page = assert_csp_safe(render(app, "card.html", card=card))
    value_class: dict[str, str] = {}
    code = None
    for tag, attrs in page.tags:
        if tag == "div" and "data-field" in attrs:
            code = attrs["data-field"]
        elif tag == "dd" and code:
            value_class[code] = attrs["class"] or ""
    rows = [f for s in card.sections for f in s.fields] + list(card.extra)
    assert set(value_class) == {f.code for f in rows}
    for f in rows:
        assert ("lc-field__value--inline" in value_class[f.code]) == f.inline, f.code
    assert {f.code for f in rows if f.inline} == {"CREATED_BY_ID"}  # a date and a user
    links = {a["href"]: a for a in page.all("a") if "lc-link" in (a.get("class") or "")}
    assert links["https://example.de"]["target"] == "_blank"
    assert "target" not in links["tel:+491701234567"]
    assert "target" not in links["mailto:k@example.de"]
    assert links["#"]["data-b24-path"] == "/crm/company/details/5/"
    users_html = [a for a in page.all("a") if a.get("class") == "lc-user"]
    assert {a["data-b24-path"] for a in users_html} == {"/company/personal/user/1/"}
    assert {"AL", "Ann Lee", "Sales"} <= set(page.text)  # initials, name, position note
    assert "+49 170 1234567 Mobile" in page.plain
    assert page.all("span").count({"class": "lc-text lc-text--multiline"}) == 1  # the comment


def test_card_empty_state(app):
    card = build_card({"ID": "5", "STATUS_ID": "NEW"}, ReferenceData(), "de")
    page = assert_csp_safe(render(app, "card.html", lang="de", card=card))
    assert "Noch ist nichts weiter ausgefüllt" in page.plain
    assert "Lead Nr. 5" in page.plain


def test_locale_selector_prefers_g_lang_over_request_lang(app):
    with app.test_request_context("/?LANG=de", method="POST"):
        g.lang = "ru"
        html = render_template("card.html", card=build_card(filled_lead(), ReferenceData(), "ru"))
    assert "Показать все поля" in html
    card = build_card(filled_lead(), ReferenceData(), "es")
    html = render(app, "card.html", lang="la", use_g=False, card=card)
    assert "Mostrar todos los campos" in html


def test_user_avatar_only_when_the_csp_allows_it(app):
    ref = ReferenceData(
        users={
            "1": {
                "NAME": "Ann",
                "LAST_NAME": "Lee",
                "PERSONAL_PHOTO": "https://cdn.example/ann.png",
            }
        }
    )
    card = build_card({"ASSIGNED_BY_ID": "1"}, ref, "en")
    assert Page(render(app, "card.html", card=card)).all("img") == []
    with app.test_request_context("/", method="POST"):
        g.frame_origin = "https://cdn.example"
        html = render_template("card.html", card=card)
    assert [i["src"] for i in Page(html).all("img")] == ["https://cdn.example/ann.png"]
    with app.test_request_context("/", method="POST"):
        g.frame_origin = "https://cdn.example.evil"  # prefix trickery
        html = render_template("card.html", card=card)
    assert Page(html).all("img") == []
    app.config["AVATAR_ANY_HTTPS"] = True
    assert len(Page(render(app, "card.html", card=card)).all("img")) == 1


# --- error.html ---


def problem(**overrides) -> SimpleNamespace:
    base = dict(
        code="portal_timeout",
        status=504,
        title="Bitrix24 didn't answer in time",
        message="Try again in a moment.",
        action="reload",
        action_url=None,
        request_id="a1b2c3d4e5f6",
    )
    base.update(overrides)
    return SimpleNamespace(**base)


def test_error_reload(app):
    page = assert_csp_safe(render(app, "error.html", lang="ru", problem=problem()))
    assert_frame_library(page)
    buttons = page.all("button")
    assert buttons == [
        {"type": "button", "class": "lc-btn lc-btn--primary", "data-lc-action": "reload"}
    ]
    assert "Повторить" in page.plain
    assert "Код для поддержки: a1b2c3d4e5f6" in page.plain
    assert page.all("svg")  # the icon


def test_error_reconnect_link_only_for_http_urls(app):
    ok = assert_csp_safe(
        render(
            app,
            "error.html",
            problem=problem(
                action="reconnect",
                action_url="https://acme.bitrix24.com/oauth/authorize/?client_id=x",
            ),
        )
    )
    assert [a["href"] for a in ok.all("a")] == [
        "https://acme.bitrix24.com/oauth/authorize/?client_id=x"
    ]
    assert "Reconnect" in ok.plain
    bad = assert_csp_safe(
        render(
            app, "error.html", problem=problem(action="reconnect", action_url="javascript:alert(1)")
        )
    )
    assert bad.all("a") == []
    none = assert_csp_safe(
        render(app, "error.html", problem=problem(action="reconnect", action_url=None))
    )
    assert none.all("a") == []


def test_error_reinstall_and_no_action(app):
    page = assert_csp_safe(
        render(app, "error.html", lang="de", problem=problem(action="reinstall"))
    )
    assert page.all("button") == [] and "Anwendungen" in page.plain
    page = assert_csp_safe(render(app, "error.html", problem=problem(action=None)))
    assert page.all("button") == [] and page.all("a") == []


def test_error_escapes_everything(app):
    html = render(
        app, "error.html", problem=problem(title=XSS, message=XSS, request_id=XSS, code=XSS)
    )
    assert_csp_safe(html)
    assert "<script>alert" not in html and "<img src=x" not in html


def test_error_messages_from_problems_are_translated(app):
    problems = pytest.importorskip("leadcard.web.problems")
    with app.test_request_context("/?LANG=de", method="POST"):
        g.lang = "de"
        p = problems.problem_for(None, code="portal_timeout", request_id="rid1")
        html = render_template("error.html", problem=p)
    assert "Bitrix24 hat nicht rechtzeitig geantwortet" in html


# --- install.html ---


def install(**overrides) -> SimpleNamespace:
    base = dict(ok=True, portal_domain="acme.bitrix24.com", placement_bound=True, event_bound=True)
    base.update(overrides)
    return SimpleNamespace(**base)


def test_install_ok_finishes_through_the_frame_library(app):
    page = assert_csp_safe(render(app, "install.html", lang="es", install=install()))
    assert_frame_library(page)
    assert page.all("body")[0]["data-lc-install"] == "finish"
    assert "Lead Card está instalada" in page.plain
    assert "Abra cualquier prospecto y busque la pestaña Lead Card." in page.plain
    assert "acme.bitrix24.com" in page.plain


def test_install_partial_and_failed(app):
    partial = assert_csp_safe(render(app, "install.html", install=install(event_bound=False)))
    assert "Uninstall notifications are not connected yet" in partial.plain
    failed = assert_csp_safe(render(app, "install.html", lang="ru", install=install(ok=False)))
    assert "data-lc-install" not in failed.all("body")[0]
    assert "Установка не завершилась" in failed.plain
    html = render(app, "install.html", install=install(portal_domain=XSS))
    assert "<script>alert" not in html


# --- home.html ---


def portal(**overrides) -> SimpleNamespace:
    base = dict(
        domain="acme.bitrix24.com",
        status="active",
        installed_at=datetime(2024, 5, 1, 9, 30),
        updated_at=datetime(2024, 6, 2, 10, 0, tzinfo=UTC),
        token_expires_at=None,
        placement_bound=True,
        scope="crm,user_brief,placement",
    )
    base.update(overrides)
    return SimpleNamespace(**base)


def test_home_not_installed(app):
    page = assert_csp_safe(render(app, "home.html", lang="de", portal=None))
    assert_frame_library(page)
    assert "Lead Card ist nicht mit diesem Bitrix24 verbunden" in page.plain


def test_home_connected(app):
    page = assert_csp_safe(render(app, "home.html", portal=portal()))
    text = page.plain.replace("\u202f", " ")
    assert "Connected" in text and "acme.bitrix24.com" in text
    assert "May 1, 2024, 9:30 AM UTC" in text
    assert "CRM" in text and "Leads" in text and "Lead Card tab" in text
    assert "crm,user_brief,placement" in text
    assert "Access token valid until" not in text  # None is hidden


def test_home_reauth_and_unknown_status(app):
    page = assert_csp_safe(
        render(
            app,
            "home.html",
            lang="ru",
            portal=portal(status="reauth_required", placement_bound=False),
        )
    )
    assert "Нужно переподключение" in page.plain and "Не добавлена" in page.plain
    html = render(app, "home.html", portal=portal(status=XSS, domain=XSS, scope=XSS))
    assert_csp_safe(html)
    assert "<script>alert" not in html


def test_home_reconnected_notice(app):
    page = Page(render(app, "home.html", portal=portal(), reconnected=True))
    assert "Lead Card is reconnected to your Bitrix24." in page.plain


# --- static files ---


def test_static_urls_carry_a_content_hash(app):
    with app.test_request_context("/"):
        url = frontend.static_url("css/card.css")
    assert re.fullmatch(r"/static/css/card\.css\?v=[0-9a-f]{12}", url)


def test_css_tokens_and_layout_rules():
    tokens = (ROOT / "static/css/b24-tokens.css").read_text()
    for name in (
        "--ui-font-family-system",
        "--ui-color-base-1",
        "--ui-color-accent-main-link",
        "--ui-border-radius-lg",
        "--ui-space-inset-md",
        "--ui-color-bg-content-primary",
    ):
        assert re.search(rf"{name}\s*:", tokens), name
    css = (ROOT / "static/css/card.css").read_text()
    assert "overflow-wrap: anywhere" in css
    assert ":focus-visible" in css
    for text in (tokens, css):
        assert "url(" not in text and "@import" not in text  # nothing fetched from elsewhere


def test_frame_script_uses_the_library_and_no_eval():
    js = (ROOT / "static/js/frame.js").read_text()
    for needle in (
        "initializeB24Frame",
        "openPath",
        "getUrl",
        "installFinish",
        "isInstallMode",
        "ResizeObserver",
        "data-b24-path",
    ):
        assert needle in js, needle
    for forbidden in (
        "eval(",
        "new Function",
        "innerHTML",
        "document.write",
        "http://",
        "https://",
    ):
        assert forbidden not in js, forbidden


def test_templates_load_nothing_from_other_hosts():
    for path in (ROOT / "templates").glob("*.html"):
        text = path.read_text()
        assert not re.search(r"(src|href)=\"(https?:)?//", text), path.name
        assert "style=" not in text and not re.search(r"\son[a-z]+=", text), path.name
        assert not re.search(r"\|\s*safe\b", text) and "autoescape false" not in text, path.name


# --- legal links and the simple-CRM note (issue 14) ---


def legal_hrefs(page: Page) -> dict[str, str]:
    return {a["data-lc-legal"]: a["href"] for a in page.all("a") if a.get("data-lc-legal")}


@pytest.mark.parametrize("lang", ["en", "ru", "de", "la"])
def test_home_and_install_link_the_privacy_policy_and_licence(app, lang):
    html_lang = i18n.html_lang(i18n.format_locale_for_lang(lang))
    home = assert_csp_safe(render(app, "home.html", lang=lang,
                                  portal=portal(member_id="m" * 32)))
    assert legal_hrefs(home) == {"privacy": f"/privacy?lang={html_lang}&member_id={'m' * 32}",
                                 "license": f"/license?lang={html_lang}&member_id={'m' * 32}"}
    bare = assert_csp_safe(render(app, "home.html", lang=lang, portal=None))
    assert legal_hrefs(bare) == {"privacy": f"/privacy?lang={html_lang}",
                                 "license": f"/license?lang={html_lang}"}
    for ok in (True, False):
        page = assert_csp_safe(render(app, "install.html", lang=lang, install=install(ok=ok),
                                      member_id="m" * 32))
        assert set(legal_hrefs(page)) == {"privacy", "license"}
    for attrs in home.all("a"):
        if attrs.get("data-lc-legal"):
            assert attrs["target"] == "_blank" and "noopener" in (attrs["rel"] or "")


def test_home_says_when_the_portal_has_no_leads(app):
    note = 'data-lc-note="simple-crm"'
    assert note not in render(app, "home.html", portal=portal())
    assert note not in render(app, "home.html", portal=portal(), simple_crm=False)
    page = Page(render(app, "home.html", portal=portal(), simple_crm=True))
    assert "simple CRM mode, which has no leads" in page.plain
    assert "Lead Card tab is shown only on lead pages" in page.plain
    assert note not in render(app, "home.html", portal=None, simple_crm=True)
