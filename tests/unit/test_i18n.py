"""LANG mapping, formatting and the message catalogs."""

from __future__ import annotations

import io
import re
from pathlib import Path

import pytest
from babel import Locale
from babel.messages.extract import extract_from_dir
from babel.messages.frontend import parse_mapping_cfg
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from hypothesis import given
from hypothesis import strategies as st

from leadcard.card import i18n

ROOT = Path(__file__).resolve().parents[2]
TRANSLATIONS = ROOT / "translations"
CATALOG_LOCALES = list(i18n.CATALOG_LOCALES)  # English is the source: no catalog


def nbsp(text: str | None) -> str | None:
    """Babel uses no-break and narrow no-break spaces; compare with plain ones."""
    return None if text is None else text.replace("\u00a0", " ").replace("\u202f", " ")


# --- LANG → locales ---

# Every LANG id a portal sends (api-reference/crm/data-types.md; b24jssdk
# packages/jssdk/src/core/language/list.ts) → (catalog, format locale, BCP 47, dir).
# Written out here, not read from the table under test.
TABLE = {
    "en": ("en", "en", "en", "ltr"),
    "ru": ("ru", "ru", "ru", "ltr"),
    "de": ("de", "de", "de", "ltr"),
    "la": ("es", "es", "es", "ltr"),
    "br": ("pt_BR", "pt_BR", "pt-BR", "ltr"),
    "fr": ("fr", "fr", "fr", "ltr"),
    "it": ("it", "it", "it", "ltr"),
    "pl": ("pl", "pl", "pl", "ltr"),
    "tr": ("tr", "tr", "tr", "ltr"),
    "ua": ("uk", "uk", "uk", "ltr"),
    "kz": ("kk", "kk", "kk", "ltr"),
    "sc": ("zh_Hans", "zh_Hans_CN", "zh-Hans", "ltr"),
    "tc": ("zh_Hant", "zh_Hant_TW", "zh-Hant", "ltr"),
    "ja": ("ja", "ja", "ja", "ltr"),
    "vn": ("vi", "vi", "vi", "ltr"),
    "id": ("id", "id", "id", "ltr"),
    "ms": ("ms", "ms", "ms", "ltr"),
    "th": ("th", "th", "th", "ltr"),
    "in": ("hi", "hi", "hi", "ltr"),
    "hi": ("hi", "hi", "hi", "ltr"),
    "ar": ("ar", "ar", "ar", "rtl"),
}


@pytest.mark.parametrize("lang", list(TABLE))
def test_language_table(lang):
    catalog, fmt, tag, direction = TABLE[lang]
    entry = i18n.language_for_lang(lang)
    assert (entry.bitrix, entry.catalog, entry.format, entry.tag, entry.dir) == (
        lang, catalog, fmt, tag, direction)
    assert i18n.format_locale_for_lang(lang) == fmt
    assert i18n.language_for_lang(lang.upper()) == entry
    # the page names the language of the catalog it shows (English until one is shipped)
    ui = catalog if (TRANSLATIONS / catalog / "LC_MESSAGES" / "messages.mo").is_file() else "en"
    assert i18n.locales_for_lang(lang) == i18n.Locales(ui=ui, format=fmt)
    assert i18n.html_lang(fmt) == (tag if ui == catalog else "en")
    assert i18n.html_dir(fmt) == (direction if ui == catalog else "ltr")


def test_table_has_exactly_the_issues_languages():
    assert {lang.bitrix for lang in i18n.LANGUAGES} == set(TABLE)
    assert set(i18n.CATALOG_LOCALES) == {c for c, *_ in TABLE.values()} - {"en"}
    assert len(i18n.CATALOG_LOCALES) == 19
    assert [lang.bitrix for lang in i18n.LANGUAGES if lang.dir == "rtl"] == ["ar"]


@pytest.mark.parametrize("locale", i18n.CATALOG_LOCALES)
def test_every_catalog_is_shipped(locale):
    # A language without its catalog shows English: the issue wants none left.
    assert i18n.has_catalog(locale), f"translations/{locale}: no compiled catalog"


def test_scripts_i18n_sh_handles_every_catalog():
    script = (ROOT / "scripts" / "i18n.sh").read_text()
    listed = re.search(r"^LOCALES=\(([^)]*)\)", script, re.M)
    assert listed and listed.group(1).split() == list(i18n.CATALOG_LOCALES)


@pytest.mark.parametrize(
    "lang, fmt",
    [
        (" DE ", "de"),
        ("LA", "es"),
        ("de-AT", "de_AT"),
        ("es_MX", "es_MX"),
        ("xx", "en"),
        ("klingon", "en"),
        ("", "en"),
        (None, "en"),
        ("<script>", "en"),
        ("../../etc/passwd", "en"),
        ("en" * 100, "en"),
    ],
)
def test_lang_mapping_of_other_ids(lang, fmt):
    assert i18n.format_locale_for_lang(lang) == fmt
    ui = i18n.locales_for_lang(lang).ui
    assert ui == ("de" if fmt.startswith("de") else "es" if fmt.startswith("es") else "en")
    assert i18n.ui_locale_for_lang(lang) == i18n.locale_for_lang(lang) == ui


@pytest.mark.parametrize("lang", ["xx", "klingon", "", None, "<script>", "qq-ZZ", "en-GB"])
def test_unknown_codes_fall_back_to_english(lang):
    assert i18n.language_for_lang(lang) == i18n.ENGLISH
    assert i18n.html_lang(i18n.format_locale_for_lang(lang)) == "en"
    assert i18n.html_dir(i18n.format_locale_for_lang(lang)) == "ltr"


def test_bitrix_ids_are_never_parsed_as_iso_codes():
    # Babel would read "br" as Breton and "in" as Indonesian.
    assert i18n.format_locale_for_lang("br") != "br"
    assert i18n.format_locale_for_lang("in") == "hi"
    assert i18n.language_for_lang("in").catalog == "hi" != Locale.parse("in").language
    assert i18n.language_for_lang("id").catalog == "id"  # Indonesian is "id"


@pytest.mark.parametrize(
    "locale, tag",
    [
        ("zh_TW", "zh-Hant"),
        ("zh_HK", "zh-Hant"),  # same script as Taiwan
        ("zh-Hant", "zh-Hant"),
        ("zh_CN", "zh-Hans"),
        ("zh", "zh-Hans"),
        ("pt", "pt-BR"),
        ("pt_PT", "pt-BR"),
        ("es_MX", "es"),
        ("de_AT", "de"),
        ("ar_EG", "ar"),
    ],
)
def test_locales_find_their_language(locale, tag):
    assert i18n.language_for_locale(locale).tag == tag


@given(st.one_of(st.none(), st.text(max_size=40)))
def test_any_lang_gives_a_supported_catalog_and_a_babel_locale(lang):
    locales = i18n.locales_for_lang(lang)
    assert locales.ui in i18n.SUPPORTED_LOCALES
    Locale.parse(locales.format)
    assert i18n.language_for_lang(lang) in i18n.LANGUAGES


@pytest.mark.parametrize(
    "locale, lang",
    [
        ("es", "la"),
        ("pt_BR", "br"),
        ("uk", "ua"),
        ("kk", "kz"),
        ("zh_CN", "sc"),
        ("zh_TW", "tc"),
        ("zh_Hant_HK", "tc"),
        ("vi", "vn"),
        ("hi", "in"),
        ("de_AT", "de"),
        ("en", "en"),
        ("nl", "nl"),  # not in the table: its language
        ("junk!", "en"),
    ],
)
def test_bitrix_lang_for_locale(locale, lang):
    assert i18n.bitrix_lang_for_locale(locale) == lang


def test_every_bitrix_lang_maps_to_a_locale_babel_knows():
    for lang, locale in i18n.BITRIX_LANG_TO_LOCALE.items():
        Locale.parse(locale)
        # "hi" shares Hindi with "in", the first in the table
        assert i18n.bitrix_lang_for_locale(locale) == ("in" if lang == "hi" else lang)


# --- Catalogs at run time ---


def test_translations_per_locale():
    assert i18n.translations("de").gettext("Show all fields") == "Alle Felder anzeigen"
    assert i18n.translations("ru").gettext("Show all fields") == "Показать все поля"
    assert i18n.translations("es").gettext("Show all fields") == "Mostrar todos los campos"
    assert i18n.translations("de_AT").gettext("Yes") == "Ja"
    assert i18n.translations("xx").gettext("Show all fields") == "Show all fields"
    assert i18n.translations("en").gettext("Show all fields") == "Show all fields"
    assert i18n.translations(None).gettext("Yes") == "Yes"


def test_translations_are_cached():
    assert i18n.translations("de") is i18n.translations("de_DE")
    # the two Chinese catalogs are told apart by script, not by gettext's "zh"
    assert i18n.translations("zh_TW") is i18n.translations("zh_Hant_TW")
    assert i18n.translations("zh_TW") is not i18n.translations("zh_CN")


# --- Formatting ---


@pytest.mark.parametrize(
    "amount, currency, locale, expected",
    [
        ("48250.00", "EUR", "en", "€48,250.00"),
        ("48250.00", "EUR", "de", "48.250,00 €"),
        ("48250.00", "EUR", "es", "48.250,00 €"),
        ("3607999.00", "RUB", "ru", "3 607 999,00 ₽"),
        ("3607999.00", "RUB", "en", "RUB 3,607,999.00"),  # alphabetic symbol gets a space
        ("1234.5", "BRL", "pt_BR", "R$ 1.234,50"),
        ("100", "usd", "de", "100,00 $"),
        ("5", "XYZ", "en", "XYZ 5.00"),
        ("5", "bitcoin", "en", "5 bitcoin"),
        ("5", None, "ru", "5"),
        ("abc", "EUR", "en", None),
        ("", "EUR", "en", None),
        (None, "EUR", "en", None),
        ("NaN", "EUR", "en", None),
    ],
)
def test_format_money(amount, currency, locale, expected):
    assert nbsp(i18n.format_money(amount, currency, locale)) == expected


@pytest.mark.parametrize(
    "value, locale, expected",
    [
        ("2024-05-23T18:18:25+02:00", "en", "May 23, 2024, 6:18 PM"),
        ("2024-05-23T18:18:25+02:00", "de", "23.05.2024, 18:18"),
        ("2024-05-23T18:18:25+02:00", "ru", "23 мая 2024 г., 18:18"),
        ("2024-05-23T18:18:25+02:00", "es", "23 may 2024, 18:18"),
        ("2024-05-23T18:18:25+02:00", "pt_BR", "23 de mai. de 2024 18:18"),
        ("2024-05-23T23:30:00-05:00", "de", "23.05.2024, 23:30"),  # the value's own offset
        ("2024-05-23", "de", "23.05.2024"),
        ("23.05.2024 18:18:25", "de", "23.05.2024, 18:18"),
        ("", "en", None),
        ("yesterday", "en", None),
        (None, "en", None),
    ],
)
def test_format_datetime(value, locale, expected):
    assert nbsp(i18n.format_datetime(value, locale)) == expected


@pytest.mark.parametrize(
    "value, locale, expected",
    [
        ("2000-01-01T02:00:00+02:00", "en", "Jan 1, 2000"),  # not shifted to UTC (Dec 31)
        ("1980-04-12", "ru", "12 апр. 1980 г."),
        ("1980-04-12", "es", "12 abr 1980"),
        ("", "en", None),
    ],
)
def test_format_date(value, locale, expected):
    assert nbsp(i18n.format_date(value, locale)) == expected


def test_format_number():
    assert nbsp(i18n.format_number("1234.5", "de")) == "1.234,5"
    assert nbsp(i18n.format_number("1234.5", "ru")) == "1 234,5"
    assert i18n.format_number("x", "en") is None


@pytest.mark.parametrize("value", ["1e30", "1E+30", "-1e26", "1e999999",
                                   "123456789012345678901234567890.5"])
@pytest.mark.parametrize("locale", ["en", "de", "ru"])
def test_amounts_too_long_to_write_out_are_scientific_not_an_error(value, locale):
    # Babel's 28-digit context raised InvalidOperation on these; the card answered 500.
    for text in (i18n.format_money(value, "USD", locale), i18n.format_money(value, "RUB", locale),
                 i18n.format_money(value, "bitcoin", locale), i18n.format_number(value, locale)):
        assert text and "E" in text and len(text) < 60


def test_longest_amount_still_written_out():
    assert nbsp(i18n.format_money("999999999999999999999999", "USD", "en")) == (
        "$999,999,999,999,999,999,999,999.00")


# Bitrix24 LANG → what its readers expect (CLDR via Babel; written out, not computed):
# Arabic with its right-to-left marks, Hindi with lakh grouping, traditional Chinese
# with 年月日 and 下午, Brazilian Portuguese with R$ and "de mai.".
LOCALE_FORMATS = {
    "ar": ("1,234,567.5", "\u200f1,234,567.50 US$", "23\u200f/05\u200f/2024",
           "23\u200f/05\u200f/2024، 6:18 م"),
    "in": ("12,34,567.5", "$12,34,567.50", "23 मई 2024", "23 मई 2024, 6:18 pm"),
    "tc": ("1,234,567.5", "US$1,234,567.50", "2024年5月23日", "2024年5月23日 下午6:18"),
    "sc": ("1,234,567.5", "US$1,234,567.50", "2024年5月23日", "2024年5月23日 18:18"),
    "br": ("1.234.567,5", "US$ 1.234.567,50", "23 de mai. de 2024", "23 de mai. de 2024 18:18"),
    "ua": ("1 234 567,5", "1 234 567,50 USD", "23 трав. 2024 р.", "23 трав. 2024 р., 18:18"),
}


@pytest.mark.parametrize("lang", list(LOCALE_FORMATS))
def test_numbers_money_and_dates_in_the_viewers_locale(lang):
    number, money, day, moment = LOCALE_FORMATS[lang]
    fmt = i18n.format_locale_for_lang(lang)
    assert nbsp(i18n.format_number("1234567.5", fmt)) == number
    assert nbsp(i18n.format_money("1234567.5", "USD", fmt)) == money
    assert nbsp(i18n.format_date("2024-05-23", fmt)) == day
    assert nbsp(i18n.format_datetime("2024-05-23T18:18:25+02:00", fmt)) == moment


# The count message of the duplicates panel (card/panels.py): which msgstr[i] each count
# takes, by the language's gettext plural rule — Polish and Ukrainian have three forms
# (one, few, many), Arabic six (zero, one, two, few, many, other).
COUNT = "%(num)d more you cannot open"
PLURAL_INDEX = {
    "pl": (3, {1: 0, 2: 1, 4: 1, 5: 2, 12: 2, 22: 1, 25: 2, 101: 2}),
    "uk": (3, {1: 0, 2: 1, 4: 1, 5: 2, 11: 2, 21: 0, 22: 1, 111: 2}),
    # Babel's Arabic rule (the catalog's Plural-Forms) puts "many" (11-99) last and
    # "other" (100-102 …) fifth: index 5 and 4, not GNU gettext's usual 4 and 5.
    "ar": (6, {0: 0, 1: 1, 2: 2, 3: 3, 10: 3, 11: 5, 99: 5, 100: 4, 102: 4, 103: 3}),
}


@pytest.mark.parametrize("locale", list(PLURAL_INDEX))
def test_count_message_takes_the_languages_plural_form(locale):
    nplurals, index = PLURAL_INDEX[locale]
    entry = read_catalog(po_path(locale)).get((COUNT, COUNT)) or read_catalog(po_path(locale)).get(COUNT)
    assert entry is not None and isinstance(entry.string, tuple)
    assert len(entry.string) == nplurals
    catalog = i18n.translations(locale)
    for count, i in index.items():
        shown = catalog.ngettext(COUNT, COUNT, count) % {"num": count}
        assert shown == entry.string[i] % {"num": count}, (count, i)
        assert shown != COUNT % {"num": count}  # not the English text
    # the forms really differ where the language says so (not one string copied three times)
    assert len({entry.string[i] for i in index.values()}) > 1


# --- Catalog files ---


def read_catalog(path: Path):
    with path.open("rb") as f:
        return read_po(f)


def po_path(locale: str) -> Path:
    return TRANSLATIONS / locale / "LC_MESSAGES" / "messages.po"


def message_ids(catalog) -> set:
    return {m.id for m in catalog if m.id}


def placeholders(text: str) -> set[str]:
    return set(re.findall(r"%\((\w+)\)s", text))


def test_catalog_pot_matches_the_sources():
    """translations/messages.pot is what scripts/i18n.sh would extract now."""
    with (ROOT / "babel.cfg").open() as f:
        method_map, options_map = parse_mapping_cfg(f)
    keywords = {
        "_": None,
        "gettext": None,
        "ngettext": (1, 2),
        "N_": None,
        "lazy_gettext": None,
        "_l": None,
        "lazy_ngettext": (1, 2),
    }
    extracted = {
        msgid
        for _filename, _lineno, msgid, _comments, _context in extract_from_dir(
            str(ROOT), method_map, options_map, keywords=keywords
        )
    }
    pot = message_ids(read_catalog(TRANSLATIONS / "messages.pot"))
    assert pot == extracted, "run scripts/i18n.sh"


@pytest.mark.parametrize("locale", CATALOG_LOCALES)
def test_catalog_translates_every_msgid(locale):
    pot = read_catalog(TRANSLATIONS / "messages.pot")
    po = read_catalog(po_path(locale))
    untranslated = []
    for message in pot:
        if not message.id:
            continue
        found = po.get(message.id, message.context)
        strings = found.string if found else None
        strings = strings if isinstance(strings, tuple) else (strings,)
        if found is None or found.fuzzy or not all(strings):
            untranslated.append(message.id)
    assert untranslated == [], f"{locale}: untranslated"


@pytest.mark.parametrize("locale", CATALOG_LOCALES)
def test_catalog_keeps_placeholders(locale):
    for message in read_catalog(po_path(locale)):
        if message.id and isinstance(message.id, str):
            assert placeholders(message.string) == placeholders(message.id), message.id


@pytest.mark.parametrize("locale", CATALOG_LOCALES)
def test_catalog_has_no_obsolete_or_extra_entries(locale):
    po = read_catalog(po_path(locale))
    pot = read_catalog(TRANSLATIONS / "messages.pot")
    assert message_ids(po) == message_ids(pot)
    assert not po.obsolete


@pytest.mark.parametrize("locale", CATALOG_LOCALES)
def test_catalog_mo_is_compiled_from_the_po(locale):
    buf = io.BytesIO()
    write_mo(buf, read_catalog(po_path(locale)))
    mo = po_path(locale).with_suffix(".mo").read_bytes()
    assert mo == buf.getvalue(), "run scripts/i18n.sh"


@pytest.mark.parametrize("locale", CATALOG_LOCALES)
def test_catalog_translations_differ_from_english(locale):
    """Real translations, not copies: most strings must change."""
    po = read_catalog(po_path(locale))
    messages = [m for m in po if m.id and isinstance(m.id, str)]
    same = [m.id for m in messages if m.string == m.id]
    assert len(same) < len(messages) * 0.1, same
