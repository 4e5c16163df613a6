"""Bitrix24 ``LANG`` → language, message catalog and locale-aware formatting.

One table, :data:`LANGUAGES`, says for every language id a portal sends which
catalog holds its texts, which Babel locale formats its numbers, money and
dates, which BCP 47 tag names it in ``<html lang>`` and which way it is
written. Two locales come out of one ``LANG``, on purpose:

* the **UI locale** picks the message catalog (``translations/<catalog>``).
  A language whose catalog is not shipped yet shows the English texts, and the
  page then says ``lang="en"``, because that is what the reader gets;
* the **format locale** drives numbers, money and dates. It is the full locale
  Babel knows for that language (``br`` → ``pt_BR``), so even under English
  texts a Brazilian user reads ``R$ 1.234,50`` and ``23 de mai. de 2024``.

Bitrix24 ids are not all ISO codes (``la`` is Spanish, ``br`` Brazilian
Portuguese, ``ua`` Ukrainian, ``sc``/``tc`` Chinese, ``in`` Hindi…); the table
follows b24jssdk's ``B24LocaleMap`` (``packages/jssdk/src/core/language/list.ts``)
and api-reference/crm/data-types.md. Never hand a raw Bitrix id to Babel:
``br`` parses as Breton and ``in`` as Indonesian.

Everything here is pure (no Flask) so ``cards.py`` can use it; ``frontend.py``
plugs the same mapping into flask-babel.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import Decimal, InvalidOperation
from functools import lru_cache, wraps
from pathlib import Path
from typing import NamedTuple

from babel import Locale, UnknownLocaleError
from babel import dates as babel_dates
from babel import numbers as babel_numbers
from babel.support import NullTranslations, Translations


@dataclass(frozen=True)
class Language:
    """One language a Bitrix24 portal can send as ``LANG``."""

    bitrix: str  # the LANG id Bitrix24 sends
    catalog: str  # translations/<catalog>/LC_MESSAGES; "en" is the source and has none
    format: str  # Babel locale for numbers, money and dates
    tag: str  # BCP 47, for <html lang>
    dir: str = "ltr"  # <html dir>


# Order matters where two ids share a locale: the first one is what a locale
# maps back to (``hi`` → ``in``, for Bitrix24's per-language dictionaries).
LANGUAGES: tuple[Language, ...] = (
    Language("en", "en", "en", "en"),
    Language("ru", "ru", "ru", "ru"),
    Language("de", "de", "de", "de"),
    Language("la", "es", "es", "es"),
    Language("br", "pt_BR", "pt_BR", "pt-BR"),
    Language("fr", "fr", "fr", "fr"),
    Language("it", "it", "it", "it"),
    Language("pl", "pl", "pl", "pl"),
    Language("tr", "tr", "tr", "tr"),
    Language("ua", "uk", "uk", "uk"),
    Language("kz", "kk", "kk", "kk"),
    Language("sc", "zh_Hans", "zh_Hans_CN", "zh-Hans"),
    Language("tc", "zh_Hant", "zh_Hant_TW", "zh-Hant"),
    Language("ja", "ja", "ja", "ja"),
    Language("vn", "vi", "vi", "vi"),
    Language("id", "id", "id", "id"),
    Language("ms", "ms", "ms", "ms"),
    Language("th", "th", "th", "th"),
    Language("in", "hi", "hi", "hi"),  # Bitrix24's India portals; Babel would read "in" as Indonesian
    Language("hi", "hi", "hi", "hi"),
    Language("ar", "ar", "ar", "ar", "rtl"),
)
ENGLISH = LANGUAGES[0]
DEFAULT_LOCALE = ENGLISH.catalog

# Every catalog the app ships, English (the msgids) first.
SUPPORTED_LOCALES: tuple[str, ...] = tuple(dict.fromkeys(lang.catalog for lang in LANGUAGES))
CATALOG_LOCALES: tuple[str, ...] = SUPPORTED_LOCALES[1:]

# <repo>/translations — committed .po and compiled .mo (scripts/i18n.sh).
TRANSLATIONS_DIR = Path(__file__).resolve().parents[2] / "translations"
DOMAIN = "messages"

_BY_BITRIX: dict[str, Language] = {lang.bitrix: lang for lang in LANGUAGES}

# Bitrix24 language id → Babel locale used for formatting.
BITRIX_LANG_TO_LOCALE: dict[str, str] = {lang.bitrix: lang.format for lang in LANGUAGES}

# A plain locale id such as "de", "pt-BR", "es_419", "zh_Hant_TW". Anything
# else (markup, paths, very long strings) is not worth handing to Babel.
_LOCALE_ID = re.compile(r"^[A-Za-z]{2,3}(?:[-_][A-Za-z0-9]{2,8}){0,3}$")


class Locales(NamedTuple):
    """The two locales that one Bitrix24 ``LANG`` resolves to."""

    ui: str  # message catalog: one of SUPPORTED_LOCALES
    format: str  # numbers/dates: a Babel locale id


def _parse(locale_id: str) -> Locale | None:
    if not _LOCALE_ID.match(locale_id):
        return None
    return _parse_locale_id(locale_id)


@lru_cache(maxsize=256)
def _parse_locale_id(locale_id: str) -> Locale | None:
    # Cached (keys are short: _LOCALE_ID was checked): Locale.parse costs more
    # than formatting a number, and one card asks for the same locale dozens of
    # times. Babel's Locale objects are not modified after creation, so one
    # instance may be shared.
    try:
        return Locale.parse(locale_id.replace("-", "_"))
    except (UnknownLocaleError, ValueError):
        return None


# Babel's view of each table entry's format locale: Locale.parse adds the
# script ("zh_TW" → zh_Hant_TW), which is what tells the two Chinese apart.
_PARSED_FORMATS: tuple[tuple[Language, Locale], ...] = tuple(
    (lang, Locale.parse(lang.format)) for lang in LANGUAGES
)


def _language_of(parsed: Locale) -> Language | None:
    """The table's language for a Babel locale: same locale, else same language
    and script (``zh_Hant_HK`` → ``tc``), else same language; first entry wins."""
    for lang, fmt in _PARSED_FORMATS:
        if str(fmt) == str(parsed):
            return lang
    for lang, fmt in _PARSED_FORMATS:
        if fmt.language == parsed.language and (fmt.script or None) == (parsed.script or None):
            return lang
    for lang, fmt in _PARSED_FORMATS:
        if fmt.language == parsed.language:
            return lang
    return None


def language_for_lang(lang: str | None) -> Language:
    """The table's entry for a Bitrix24 ``LANG`` (or an ISO locale id such as
    ``pt-BR``); :data:`ENGLISH` for anything unknown."""
    if not lang:
        return ENGLISH
    key = lang.strip()
    known = _BY_BITRIX.get(key.lower())
    if known is not None:
        return known
    parsed = _parse(key)
    return (_language_of(parsed) if parsed else None) or ENGLISH


# Cached: the pages ask once per gettext call (frontend.CatalogDomain), dozens per card.
# Keys are short locale ids (_parse refuses anything else) or None; bounded anyway.
@lru_cache(maxsize=256)
def language_for_locale(locale: str | None) -> Language:
    """The table's entry for a Babel locale id (``zh_TW`` → ``tc``); English if none."""
    parsed = _parse(locale) if locale else None
    return (_language_of(parsed) if parsed else None) or ENGLISH


@lru_cache(maxsize=64)
def has_catalog(catalog: str) -> bool:
    """Whether ``translations/<catalog>`` has a compiled catalog (English always has)."""
    if catalog == ENGLISH.catalog:
        return True
    return (TRANSLATIONS_DIR / catalog / "LC_MESSAGES" / f"{DOMAIN}.mo").is_file()


@lru_cache(maxsize=256)
def ui_language(locale: str | None) -> Language:
    """The language the page's texts are in for a Babel locale id: its table entry
    when that catalog is shipped, else English."""
    lang = language_for_locale(locale)
    return lang if has_catalog(lang.catalog) else ENGLISH


def format_locale_for_lang(lang: str | None) -> str:
    """Babel locale for formatting numbers and dates for a Bitrix24 ``LANG``.

    Known Bitrix ids map through :data:`LANGUAGES`; an ISO-style locale id Babel
    knows (``de_AT``, ``pt-BR``) is kept; anything else is ``en``.
    """
    if not lang:
        return DEFAULT_LOCALE
    key = lang.strip()
    known = _BY_BITRIX.get(key.lower())
    if known is not None:
        return known.format
    parsed = _parse(key)
    return str(parsed) if parsed else DEFAULT_LOCALE


def ui_locale_for_locale(locale: str | None) -> str:
    """Catalog for a Babel locale id: its language's if we ship it, else ``en``."""
    return ui_language(locale).catalog


def ui_locale_for_lang(lang: str | None) -> str:
    """Message catalog for a Bitrix24 ``LANG``: one of :data:`SUPPORTED_LOCALES`."""
    return ui_locale_for_locale(format_locale_for_lang(lang))


def locale_for_lang(lang: str | None) -> str:
    """Best supported catalog for a Bitrix24 ``LANG`` (same as ui_locale_for_lang)."""
    return ui_locale_for_lang(lang)


def locales_for_lang(lang: str | None) -> Locales:
    """Both locales for a Bitrix24 ``LANG`` at once."""
    fmt = format_locale_for_lang(lang)
    return Locales(ui=ui_locale_for_locale(fmt), format=fmt)


def bitrix_lang_for_locale(locale: str) -> str:
    """Bitrix24 language id for a Babel locale (``es`` → ``la``), for the
    per-language dictionaries Bitrix24 returns (a UF field's ``formLabel`` as
    ``{"en": …, "la": …}``); the locale's language if the table lacks it, ``en``
    if it is no locale."""
    parsed = _parse(locale)
    if parsed is None:
        return DEFAULT_LOCALE
    lang = _language_of(parsed)
    return lang.bitrix if lang else parsed.language


def html_lang(locale: str) -> str:
    """BCP 47 tag for ``<html lang>``: the language the texts are written in."""
    return ui_language(locale).tag


def html_dir(locale: str) -> str:
    """``ltr`` or ``rtl`` for ``<html dir>``: the direction of the texts' language."""
    return ui_language(locale).dir


@lru_cache(maxsize=32)
def _translations(catalog: str) -> NullTranslations:
    # Loaded from the table's directory name itself: gettext.find would try
    # "zh_Hans_CN", "zh" and never "zh_Hans".
    path = TRANSLATIONS_DIR / catalog / "LC_MESSAGES" / f"{DOMAIN}.mo"
    if catalog == ENGLISH.catalog or not path.is_file():
        return NullTranslations()
    with path.open("rb") as f:
        return Translations(f, DOMAIN)


def translations(locale: str | None) -> Translations:
    """Compiled catalog for any locale id (cached); English msgids when none.

    ``"de_AT"`` and ``"de"`` share the German one; ``"zh_TW"`` gets ``zh_Hant``.
    """
    return _translations(ui_locale_for_locale(locale))  # type: ignore[return-value]


def N_(message: str) -> str:  # noqa: N802 - the gettext convention
    """Mark a string for extraction without translating it now."""
    return message


# --- Formatting ------------------------------------------------------------


def _babel_locale(locale: str) -> Locale:
    return _parse(locale) or _parse(DEFAULT_LOCALE)  # type: ignore[return-value]


def to_decimal(value: object) -> Decimal | None:
    """``"3607999.00"`` / ``12`` / ``"1 234,5"`` → Decimal; None when not a number."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, (int, Decimal)):
        return Decimal(value)
    if isinstance(value, float):
        return Decimal(repr(value))
    text = str(value).strip().replace("\u00a0", "").replace(" ", "")
    if not text:
        return None
    if "," in text and "." not in text:
        text = text.replace(",", ".")
    try:
        number = Decimal(text)
    except InvalidOperation:
        return None
    return number if number.is_finite() else None


_CURRENCY_CODE = re.compile(r"^[A-Z]{3}$")


def _space_alpha_symbol(text: str) -> str:
    # CLDR "currencySpacing": an alphabetic symbol (RUB, CHF, XYZ) gets a
    # no-break space next to the digits; Babel leaves "RUB3,607,999.00".
    out = []
    for i, ch in enumerate(text):
        if i and (
            (ch.isdigit() and text[i - 1].isalpha()) or (ch.isalpha() and text[i - 1].isdigit())
        ):
            out.append("\u00a0")
        out.append(ch)
    return "".join(out)


# Formatted numbers and dates are cached per (value, locale): every view of a
# lead formats the same amounts and dates again, and Babel takes 10-30 µs per
# value where a cache hit takes about one. Keys are a Decimal's exact text or a
# date/time object, never free text, and the caches are bounded.
_VALUE_CACHE_SIZE = 2048


def _short_numbers_cached(fn: Callable[..., str]) -> Callable[..., str]:
    """``fn(number_text, ...)`` behind an LRU cache, except for numbers that would
    format to something long (many digits, or exponent notation like ``1E+999``)."""
    cached = lru_cache(maxsize=_VALUE_CACHE_SIZE)(fn)

    @wraps(fn)
    def call(number: str, *args: str) -> str:
        if len(number) <= 32 and "E" not in number:
            return cached(number, *args)
        return fn(number, *args)

    return call


# Babel formats in the default decimal context (28 significant digits) and raises
# InvalidOperation past it, so an amount like "1e30" from a hostile or broken portal broke the
# whole card. Amounts with more than this many integer digits are shown in scientific form.
_MAX_INTEGER_DIGITS = 24


def _scientific(number: Decimal, locale: str) -> str | None:
    """``1E30`` in the locale for a number too long to write out, else None."""
    if number.adjusted() < _MAX_INTEGER_DIGITS:
        return None
    return babel_numbers.format_scientific(number, locale=_babel_locale(locale))


def format_number(value: object, locale: str) -> str | None:
    """A decimal number in the locale (``1234.5`` → ``1.234,5`` for de)."""
    number = to_decimal(value)
    if number is None:
        return None
    return _scientific(number, locale) or _number_text(str(number), locale)


@_short_numbers_cached
def _number_text(number: str, locale: str) -> str:
    return babel_numbers.format_decimal(Decimal(number), locale=_babel_locale(locale))


def format_money(amount: object, currency: str | None, locale: str) -> str | None:
    """Amount with its currency symbol in the locale; None when not a number.

    An unknown but well-formed ISO code is shown as the code
    (``XYZ 5.00``); a malformed one is appended as text.
    """
    number = to_decimal(amount)
    if number is None:
        return None
    code = (currency or "").strip().upper()
    scientific = _scientific(number, locale)
    if _CURRENCY_CODE.match(code) and scientific is None:
        return _money_text(str(number), code, locale)
    plain = scientific or _plain_amount_text(str(number), locale)
    return f"{plain} {currency.strip()}" if currency and currency.strip() else plain


@_short_numbers_cached
def _money_text(number: str, code: str, locale: str) -> str:
    loc = _babel_locale(locale)
    return _space_alpha_symbol(babel_numbers.format_currency(Decimal(number), code, locale=loc))


@_short_numbers_cached
def _plain_amount_text(number: str, locale: str) -> str:
    loc = _babel_locale(locale)
    return babel_numbers.format_decimal(Decimal(number), locale=loc, decimal_quantization=False)


def currency_name(code: str, locale: str) -> str | None:
    """Localized currency name (``EUR`` → ``Euro``), None if Babel doesn't know it."""
    if not _CURRENCY_CODE.match(code or ""):
        return None
    loc = _babel_locale(locale)
    name = babel_numbers.get_currency_name(code, locale=loc)
    return None if name == code else name


_DATE_ONLY = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def parse_bitrix_datetime(value: object) -> datetime | date | None:
    """Bitrix24 REST date/datetime text → ``date`` or aware ``datetime``.

    REST returns ISO 8601 with an offset (``2024-05-23T18:18:25+02:00``), a
    bare date for some UF fields, and ``""`` for no value.
    """
    if isinstance(value, datetime):
        return value
    if isinstance(value, date):
        return value
    if not isinstance(value, str):
        return None
    text = value.strip()
    if not text:
        return None
    try:
        if _DATE_ONLY.match(text):
            return date.fromisoformat(text)
        return datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        pass
    # Older/box portals and some UF values use the site format "23.05.2024 18:18:25".
    for fmt in ("%d.%m.%Y %H:%M:%S", "%d.%m.%Y %H:%M", "%d.%m.%Y", "%m/%d/%Y"):
        try:
            parsed = datetime.strptime(text, fmt)
        except ValueError:
            continue
        return parsed.date() if "%H" not in fmt else parsed
    return None


def format_date(value: object, locale: str) -> str | None:
    """A date in the locale's medium form (``May 23, 2024`` / ``23.05.2024``)."""
    parsed = parse_bitrix_datetime(value)
    if parsed is None:
        return None
    day = parsed.date() if isinstance(parsed, datetime) else parsed
    return _date_text(day, locale)


def format_datetime(value: object, locale: str) -> str | None:
    """Date and time (no seconds) in the locale, in the value's own UTC offset.

    Bitrix24 sends times in the portal's/user's offset; showing them in that
    offset matches what the rest of the lead page shows.
    """
    parsed = parse_bitrix_datetime(value)
    if parsed is None:
        return None
    if not isinstance(parsed, datetime):
        return format_date(parsed, locale)
    day = _date_text(parsed.date(), locale)
    clock = _time_text(parsed.time(), locale)  # naive: shown in the value's own offset
    return _datetime_pattern(locale).replace("{1}", day).replace("{0}", clock)


@lru_cache(maxsize=_VALUE_CACHE_SIZE)
def _date_text(day: date, locale: str) -> str:
    return babel_dates.format_date(day, format="medium", locale=_babel_locale(locale))


@lru_cache(maxsize=_VALUE_CACHE_SIZE)
def _time_text(moment: time, locale: str) -> str:
    return babel_dates.format_time(moment, format="short", locale=_babel_locale(locale))


@lru_cache(maxsize=256)
def _datetime_pattern(locale: str) -> str:
    return str(babel_dates.get_datetime_format("medium", locale=_babel_locale(locale)))


def format_span(span: timedelta, locale: str) -> str | None:
    """How long, in the locale's words and rounded as people say it (``3 days``,
    ``2 months``); None for a negative span (a clock ahead of the portal's)."""
    if span.total_seconds() < 0:
        return None
    return babel_dates.format_timedelta(span, threshold=1, locale=_babel_locale(locale))


def format_relative(delta: timedelta, locale: str) -> str:
    """A moment relative to now: ``in 2 days`` for a future one, ``3 days ago`` for a past one."""
    return babel_dates.format_timedelta(delta, threshold=1, add_direction=True,
                                        locale=_babel_locale(locale))
