"""Test 7: the card follows the viewer's Bitrix24 LANG.

Lead 101 is opened with LANG en, ru, de, es, ``la`` (Bitrix24's id for Spanish), ``ua``
(Ukrainian), ``br`` (Brazilian Portuguese), ``tc`` (traditional Chinese), ``in`` (Hindi)
and ``ar`` (Arabic, right to left).  Section labels must be the msgstr of our own
catalogs (read from translations/<catalog>/LC_MESSAGES/messages.po here, not from the
app), ``<html lang>`` is the language's BCP 47 tag and ``dir`` its direction, and money
and dates use the language's conventions.  Expected formats are written out below, not
computed with the app's code.
"""

from __future__ import annotations

import pytest

from tests.browser.browser_helpers import expected, open_lead_tab

# LANG → (catalog, <html lang>, amount of lead 101 = 48 500.00 EUR, its BIRTHDATE 1986-03-14)
CASES = {
    "en": ("en", "en", "€48,500.00", "Mar 14, 1986"),
    "ru": ("ru", "ru", "48 500,00 €", "14 мар. 1986 г."),
    "de": ("de", "de", "48.500,00 €", "14.03.1986"),
    "es": ("es", "es", "48.500,00 €", "14 mar 1986"),
    "la": ("es", "es", "48.500,00 €", "14 mar 1986"),
    "ua": ("uk", "uk", "48 500,00 EUR", "14 бер. 1986 р."),
    "br": ("pt_BR", "pt-BR", "€ 48.500,00", "14 de mar. de 1986"),
    "tc": ("zh_Hant", "zh-Hant", "€48,500.00", "1986年3月14日"),
    "in": ("hi", "hi", "€48,500.00", "14 मार्च 1986"),
    "ar": ("ar", "ar", "\u200f48,500.00 €", "14\u200f/03\u200f/1986"),
}


def _norm(text: str) -> str:
    # NBSP / narrow NBSP in formatted numbers and dates are spaces to a reader
    return " ".join(text.replace("\u00a0", " ").replace("\u202f", " ").split())


@pytest.mark.parametrize("lang", list(CASES))
def test_card_in_viewer_language(sim, installed, page, watch, lang):
    ui, tag, amount, birthdate = CASES[lang]
    locator, frame = open_lead_tab(page, installed, 101, lang=lang)

    assert frame.evaluate("document.documentElement.lang") == tag
    assert frame.evaluate("document.documentElement.dir") == ("rtl" if lang == "ar" else "ltr")
    titles = [_norm(t) for t in locator.locator(".lc-section__title").all_inner_texts()]
    assert expected(ui, "Contact person") in titles
    assert expected(ui, "Deal value") in titles
    assert expected(ui, "Responsible and history") in titles
    summary = _norm(locator.locator("details.lc-all summary").inner_text())
    assert expected(ui, "Show all fields") in summary
    labels = [_norm(t) for t in locator.locator(".lc-field__label").all_inner_texts()]
    assert expected(ui, "Date of birth") in labels
    if ui != "en":   # no English section title left over
        assert "Contact person" not in titles and "Deal value" not in titles

    assert _norm(locator.locator(".lc-header .lc-amount").inner_text()).endswith(amount)
    birth = locator.locator("[data-field=BIRTHDATE] .lc-field__value")
    assert _norm(birth.inner_text()) == birthdate
    watch.assert_clean()
