""""Show all fields": every filled system field no section accounts for.

Owns the rule for "the rest" — the fields of :data:`~leadcard.card.fields.FIELD_LABELS`, in
that order, that the lead has and whose codes no section returned — and one formatter per
value kind of :data:`~leadcard.card.fields.FIELD_KINDS`.
"""

from __future__ import annotations

from collections.abc import Callable, Set

from leadcard.card import i18n
from leadcard.card.context import Context
from leadcard.card.fields import FIELD_KINDS, FIELD_LABELS, SEMANTIC_LABELS
from leadcard.card.model import Field, Value
from leadcard.card.multifield import values_of as multifield_values
from leadcard.card.values import positive_id, rich_text_to_plain


def extra_fields(ctx: Context, accounted: Set[str]) -> tuple[Field, ...]:
    """The lead's filled fields whose codes are not in ``accounted``."""
    fields = []
    for code in FIELD_LABELS:
        if code in accounted or code not in ctx.lead:
            continue
        row = ctx.field(code, _values(ctx, code))
        if row:
            fields.append(row)
    return tuple(fields)


def _values(ctx: Context, code: str) -> list[Value | None]:
    kind = FIELD_KINDS.get(code, "text")
    raw = ctx.raw(code)
    whole = _WHOLE_VALUE.get(kind)
    if whole:
        return whole(ctx, code, raw)
    shown = ctx.text(code)
    if not shown:
        return []
    return _BY_KIND.get(kind, _plain)(ctx, raw, shown)


# Kinds that are lists, formatted from the raw value: (ctx, code, raw) -> values.
def _multifield(ctx: Context, code: str, raw: object) -> list[Value | None]:
    return list(multifield_values(ctx, code))


def _contacts(ctx: Context, code: str, raw: object) -> list[Value | None]:
    ids = raw if isinstance(raw, list) else [raw]
    return [ctx.crm_value("contact", cid) for cid in (positive_id(i) for i in ids) if cid]


_WHOLE_VALUE: dict[str, Callable[[Context, str, object], list[Value | None]]] = {
    "multifield": _multifield,
    "contacts": _contacts,
}


# Kinds of one filled scalar: (ctx, raw, its clean text) -> values.
def _plain(ctx: Context, raw: object, shown: str) -> list[Value | None]:
    return [Value(text=shown, kind="multiline" if "\n" in shown else "text")]


def _flag(ctx: Context, raw: object, shown: str) -> list[Value | None]:
    return [Value(text=ctx.yes_no(raw) or shown, kind="flag")]


def _user(ctx: Context, raw: object, shown: str) -> list[Value | None]:
    return [ctx.user_value(raw)]


def _datetime(ctx: Context, raw: object, shown: str) -> list[Value | None]:
    return [Value(text=i18n.format_datetime(raw, ctx.locale) or shown, kind="date")]


def _date(ctx: Context, raw: object, shown: str) -> list[Value | None]:
    return [Value(text=i18n.format_date(raw, ctx.locale) or shown, kind="date")]


def _status_of(entity: str) -> Callable[[Context, object, str], list[Value | None]]:
    def status(ctx: Context, raw: object, shown: str) -> list[Value | None]:
        return [Value(text=ctx.status_name(entity, shown) or shown)]

    return status


def _semantic(ctx: Context, raw: object, shown: str) -> list[Value | None]:
    label = SEMANTIC_LABELS.get(shown.upper())
    return [Value(text=ctx._(label) if label else shown)]


def _amount(ctx: Context, raw: object, shown: str) -> list[Value | None]:
    money = i18n.format_money(shown, ctx.text("CURRENCY_ID") or None, ctx.locale)
    return [Value(text=money or shown, kind="money")]


def _currency(ctx: Context, raw: object, shown: str) -> list[Value | None]:
    return [ctx.currency_value(shown)]


def _crm_of(entity: str) -> Callable[[Context, object, str], list[Value | None]]:
    def linked(ctx: Context, raw: object, shown: str) -> list[Value | None]:
        entity_id = positive_id(shown)
        return [ctx.crm_value(entity, entity_id)] if entity_id else []

    return linked


def _comments(ctx: Context, raw: object, shown: str) -> list[Value | None]:
    return [Value(text=rich_text_to_plain(raw), kind="multiline")]


_BY_KIND: dict[str, Callable[[Context, object, str], list[Value | None]]] = {
    "flag": _flag,
    "user": _user,
    "datetime": _datetime,
    "date": _date,
    "status": _status_of("STATUS"),
    "source": _status_of("SOURCE"),
    "honorific": _status_of("HONORIFIC"),
    "semantic": _semantic,
    "amount": _amount,
    "currency": _currency,
    "company": _crm_of("company"),
    "contact": _crm_of("contact"),
    "comments": _comments,
}
