"""i18n's cached locales and formatted values: same answers as Babel, nothing re-parsed per view."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone
from decimal import Decimal

import pytest
from babel import Locale
from babel import dates as babel_dates
from babel import numbers as babel_numbers

from leadcard.card import i18n
from leadcard.card.build import build_card
from leadcard.card.model import ReferenceData

LOCALES = ["en", "ru", "de", "es", "pt_BR", "uk", "ja", "ar"]


@pytest.mark.parametrize("locale", LOCALES)
def test_cached_formatting_matches_babel(locale):
    loc = Locale.parse(locale)
    when = datetime(2024, 5, 23, 18, 18, tzinfo=timezone(timedelta(hours=2)))
    day = date(1986, 3, 14)
    for _ in range(2):  # the second round comes from the caches
        assert i18n.format_date(day.isoformat(), locale) == babel_dates.format_date(
            day, format="medium", locale=loc
        )
        expected = (
            str(babel_dates.get_datetime_format("medium", locale=loc))
            .replace("{1}", babel_dates.format_date(when.date(), format="medium", locale=loc))
            .replace("{0}", babel_dates.format_time(when.time(), format="short", locale=loc))
        )
        assert i18n.format_datetime(when.isoformat(), locale) == expected
        assert i18n.format_number("1234.5", locale) == babel_numbers.format_decimal(
            Decimal("1234.5"), locale=loc
        )
        assert i18n.format_money("48500.00", "EUR", locale) == babel_numbers.format_currency(
            Decimal("48500.00"), "EUR", locale=loc
        )
        assert i18n.currency_name("EUR", locale) == babel_numbers.get_currency_name(
            "EUR", locale=loc
        )


def test_cached_values_stay_apart_per_locale_currency_and_offset():
    assert i18n.format_money("5", "EUR", "en") == "€5.00"
    assert i18n.format_money("5", "EUR", "de") == "5,00\xa0€"
    assert i18n.format_money("5", "USD", "en") == "$5.00"
    assert i18n.format_money("5", "JPY", "en") == "¥5"
    assert i18n.format_money("5.5", None, "en") == "5.5"
    # Exponent notation and long numbers bypass the cache but format the same way.
    assert i18n.format_number("1E+20", "en") == "100" + ",000" * 6
    assert i18n.format_number("1" * 24, "de") == ".".join(["111"] * 8)
    # Times are shown in the value's own offset: same wall clock, same text.
    assert i18n.format_datetime("2024-05-23T18:18:25+02:00", "de") == "23.05.2024, 18:18"
    assert i18n.format_datetime("2024-05-23T18:18:25+09:00", "de") == "23.05.2024, 18:18"
    assert i18n.format_datetime("2024-05-23T18:19:25+02:00", "de") == "23.05.2024, 18:19"
    assert i18n.format_datetime("2024-05-23T18:18:25+02:00", "en") == "May 23, 2024, 6:18\u202fPM"


def test_a_card_parses_no_locale_once_warm(monkeypatch):
    """Locale.parse on a string is slow; a warm card build must not call it at all."""
    lead = {
        "ID": "1",
        "OPPORTUNITY": "100",
        "CURRENCY_ID": "EUR",
        "DATE_CREATE": "2024-05-23T18:18:25+02:00",
        "BIRTHDATE": "1986-03-14",
        "UF_CRM_1": "2024-06-01",
    }
    ref = ReferenceData(fields={"UF_CRM_1": {"type": "date", "formLabel": {"en": "When"}}})
    build_card(lead, ref, "de")
    parsed: list[object] = []
    original = Locale.parse.__func__

    def counting(cls, identifier, *args, **kwargs):
        if isinstance(identifier, str):
            parsed.append(identifier)
        return original(cls, identifier, *args, **kwargs)

    monkeypatch.setattr(Locale, "parse", classmethod(counting))
    card = build_card(lead, ref, "de")
    assert card.amount == "100,00\xa0€"
    assert parsed == []
