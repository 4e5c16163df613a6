"""Issue 15: every page the app serves, in every language a Bitrix24 portal sends.

For each ``LANG`` id (api-reference/crm/data-types.md; b24jssdk
``packages/jssdk/src/core/language/list.ts``) one test opens, over real HTTP against the
simulator: the card of the rich demo lead with its panels, the error pages (lead not
found, no access, Bitrix24 failing, an unknown address), the install page, the home page,
the privacy policy and the licence. Each page must say ``<html lang>`` = the language's
BCP 47 tag, ``dir="rtl"`` only for Arabic, and leave no English UI text: every msgid of
the language's catalog (longer than 3 characters, with a letter, and translated to
something else in that catalog) must be absent from the page's visible text.

The expected tags are written out here, not read from leadcard/card/i18n.py. A language
whose catalog is not in translations/ yet fails — on purpose: its readers get English.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import requests
from babel.messages.pofile import read_po
from bs4 import BeautifulSoup

ROOT = Path(__file__).resolve().parents[2]
TRANSLATIONS = ROOT / "translations"
RICH, PRIVATE, MISSING = 101, 104, 987654

# LANG → (catalog directory, BCP 47 tag)
LANGS = {
    "en": ("en", "en"), "ru": ("ru", "ru"), "de": ("de", "de"), "la": ("es", "es"),
    "br": ("pt_BR", "pt-BR"), "fr": ("fr", "fr"), "it": ("it", "it"), "pl": ("pl", "pl"),
    "tr": ("tr", "tr"), "ua": ("uk", "uk"), "kz": ("kk", "kk"), "sc": ("zh_Hans", "zh-Hans"),
    "tc": ("zh_Hant", "zh-Hant"), "ja": ("ja", "ja"), "vn": ("vi", "vi"), "id": ("id", "id"),
    "ms": ("ms", "ms"), "th": ("th", "th"), "in": ("hi", "hi"), "hi": ("hi", "hi"),
    "ar": ("ar", "ar"),
}
RTL = {"ar"}
PLACEHOLDER = re.compile(r"%\(\w+\)[sd]")


def _pattern(msgid: str) -> re.Pattern[str] | None:
    """A msgid as a pattern on visible text: placeholders match anything, words whole."""
    parts = [p.strip() for p in PLACEHOLDER.split(msgid)]
    if not any(len(p) > 3 and re.search(r"[^\W\d_]", p) for p in parts):
        return None
    body = r"\s*.+?\s*".join(r"\s+".join(map(re.escape, p.split())) for p in parts)
    # whole words: "Source" is not left over in the German "Open-Source-Komponenten"
    return re.compile(r"(?<![\w-])" + body + r"(?![\w-])")


def english_strings(catalog_dir: str) -> tuple[list[tuple[str, re.Pattern[str]]], list[str]]:
    """(msgid patterns that must not show, texts the catalog keeps as they are).

    Every msgid of the .pot counts, unless the language's catalog translates it to itself
    (a brand or code the language keeps, "Bitrix24"); one the catalog lacks is English."""
    with (TRANSLATIONS / "messages.pot").open("rb") as f:
        pot = read_po(f)
    po_file = TRANSLATIONS / catalog_dir / "LC_MESSAGES" / "messages.po"
    catalog = None
    if po_file.is_file():
        with po_file.open("rb") as f:
            catalog = read_po(f)
    patterns, kept = [], []
    for message in pot:
        if not message.id:
            continue
        found = catalog.get(message.id, message.context) if catalog is not None else None
        strings = () if found is None or found.fuzzy else (
            found.string if isinstance(found.string, tuple) else (found.string,))
        for msgid in message.id if isinstance(message.id, tuple) else (message.id,):
            if msgid in strings:
                kept.append(msgid)
                continue
            pattern = _pattern(msgid)
            if pattern is not None:
                patterns.append((msgid, pattern))
    return patterns, sorted(kept, key=len, reverse=True)


# Where a page shows what the portal holds, not our texts: the lead's title and values, its
# stage and the stages to move it to, activity subjects, comments, user and CRM names,
# product names, the portal's own (UF_) field labels. The demo lead is in English, so its words are taken out of these
# places before looking for English: "In progress" there is the portal's stage name.
DATA = ("title", ".lc-header__title", ".lc-header__sub", ".lc-stage", ".lc-field__value",
        ".lc-field__hint", ".lc-act__subject", ".lc-comment__text", ".lc-user__name",
        ".lc-linked", ".lc-products tbody th", ".lc-field[data-field^=UF_] .lc-field__label",
        ".lc-stage-form option")
# ...except our own words inside them ("Mobile" after a phone number, "Stage:" for readers)
OURS_INSIDE = (".lc-value__note", ".lc-visually-hidden", ".lc-linked__type")


def portal_strings(sim) -> list[str]:
    """Every text the simulator's portal "a" holds (its leads, lists, users, activities…),
    longest first."""
    found: set[str] = set()

    def walk(value: object) -> None:
        if isinstance(value, str):
            if len(value.strip()) > 3:
                found.add(value.strip())
        elif isinstance(value, dict):
            for item in value.values():
                walk(item)
        elif isinstance(value, (list, tuple)):
            for item in value:
                walk(item)

    with sim.world.lock:
        portal = sim.world.portal("a")
        for name in ("title", "users", "leads", "companies", "contacts", "deals", "activities",
                     "comments", "product_rows", "statuses", "currencies", "lead_fields"):
            walk(getattr(portal, name))
    return sorted(found, key=len, reverse=True)


def visible_text(html: str, data: list[str] = ()) -> str:
    """The page's visible text without scripts, licence texts (<pre>, English by law) or
    the portal's own strings where the page shows portal data."""
    soup = BeautifulSoup(html, "html.parser")
    for hidden in soup(["script", "style", "template", "pre"]):
        hidden.decompose()
    for container in soup.select(", ".join(DATA)):
        for node in container.find_all(string=True):
            if node.find_parent(class_=[c.lstrip(".") for c in OURS_INSIDE]):
                continue
            text = str(node)
            for value in data:
                if value in text:
                    text = text.replace(value, " ")
            node.replace_with(text)
    return re.sub(r"\s+", " ", soup.get_text(" "))


def check_page(name: str, response: requests.Response, lang: str, status: int,
               data: list[str]) -> list[str]:
    """What is wrong with one page in ``lang`` (empty when nothing is)."""
    catalog_dir, tag = LANGS[lang]
    problems = []
    if response.status_code != status:
        problems.append(f"{name}: status {response.status_code}, want {status}")
    root = BeautifulSoup(response.text, "html.parser").find("html")
    if root is None:
        return [*problems, f"{name}: no <html>"]
    if root.get("lang") != tag:
        problems.append(f"{name}: lang={root.get('lang')!r}, want {tag!r}")
    want_dir = "rtl" if lang in RTL else "ltr"
    if root.get("dir") != want_dir:
        problems.append(f"{name}: dir={root.get('dir')!r}, want {want_dir!r}")
    if lang == "en":
        return problems
    patterns, kept = english_strings(catalog_dir)
    text = visible_text(response.text, data)
    for same in kept:  # "Lead Card" kept as a name must not count as the msgid "Lead"
        text = text.replace(same, " ")
    left = sorted({msgid for msgid, pattern in patterns if pattern.search(text)})
    if left:
        problems.append(f"{name}: English left: {left[:8]}{' …' if len(left) > 8 else ''}")
    return problems


def post(live, request: tuple[str, dict]) -> requests.Response:
    url, form = request
    return live.post(url, form)


@pytest.mark.parametrize("lang", list(LANGS))
def test_every_page_in_the_viewers_language(sim, live_app, lang):
    problems: list[str] = []
    data = portal_strings(sim)
    # install (the app's first page for an administrator), then the portal is ready
    install = post(live_app, sim.install_request("a", user_id=1, lang=lang))
    problems += check_page("install", install, lang, 200, data)
    assert sim.finish_install("a") in (200, 201)

    problems += check_page("home", post(live_app, sim.app_request("a", user_id=1, lang=lang)),
                           lang, 200, data)
    card = post(live_app, sim.placement_request("a", user_id=1, lead_id=RICH, lang=lang))
    problems += check_page("card", card, lang, 200, data)
    assert 'class="lc-context"' in card.text and "lc-all" in card.text  # panels, all fields
    problems += check_page("lead not found", post(live_app, sim.placement_request(
        "a", user_id=1, lead_id=MISSING, lang=lang)), lang, 404, data)
    problems += check_page("no access", post(live_app, sim.placement_request(
        "a", user_id=2, lead_id=PRIVATE, lang=lang)), lang, 403, data)
    problems += check_page("unknown address", requests.get(
        f"{live_app.url}/no-such-page?LANG={lang}", timeout=10), lang, 404, data)
    for path in ("privacy", "license"):
        problems += check_page(path, requests.get(f"{live_app.url}/{path}?lang={lang}",
                                                  timeout=10), lang, 200, data)

    sim.inject_error("a", "batch", "INTERNAL_SERVER_ERROR", status=500, count=None)
    failed = post(live_app, sim.placement_request("a", user_id=1, lead_id=RICH + 1, lang=lang))
    problems += check_page("Bitrix24 error", failed, lang, failed.status_code, data)
    assert failed.status_code >= 500 and "data-problem" in failed.text

    assert problems == [], f"{lang}: " + "; ".join(problems)
