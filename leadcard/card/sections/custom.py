"""Section "Custom fields": the lead's ``UF_*`` fields, labelled in the viewer's language
and formatted by their ``crm.lead.fields`` type (one formatter per type in :data:`_BY_TYPE`).

Field types and label shapes: ``bitrix24/b24restdocs``
``api-reference/crm/leads/userfield/index.md``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping

from leadcard.card import i18n
from leadcard.card.context import Context
from leadcard.card.header import Header
from leadcard.card.model import Value
from leadcard.card.sections.base import Shown
from leadcard.card.values import enum_text, is_file, positive_id, safe_web_url, text

_UF_LABEL_KEYS = ("formLabel", "listLabel", "filterLabel", "editFormLabel")  # by preference
_CRM_PREFIX = {"L": "lead", "D": "deal", "C": "contact", "CO": "company"}


def build(ctx: Context, header: Header) -> Shown:
    codes = [c for c in ctx.ref.fields if c.startswith("UF_") and c in ctx.lead]
    codes += [c for c in ctx.lead if isinstance(c, str) and c.startswith("UF_") and c not in codes]
    fields = []
    for code in codes:
        meta = ctx.ref.fields.get(code)
        meta = meta if isinstance(meta, Mapping) else {}
        values = _values(ctx, ctx.raw(code), meta)
        fields.append(ctx.field(code, values, label=label(ctx, code, meta)))
    return Shown(ctx.section("custom", fields), frozenset(codes))


def label(ctx: Context, code: str, meta: Mapping) -> str:
    """``formLabel``/``listLabel``…: text, or ``{"en": …, "la": …}`` per Bitrix24 language."""
    plain = ""  # the first non-empty text label
    dicts = []
    for key in _UF_LABEL_KEYS:
        candidate = meta.get(key)
        if isinstance(candidate, Mapping):
            dicts.append(candidate)
        elif not plain:
            plain = text(candidate)
    for lang in (ctx.bitrix_lang, ctx.ui_locale):
        for per_lang in dicts:
            found = text(per_lang.get(lang))
            if found:
                return found
    if plain:
        return plain
    for per_lang in dicts:
        found = text(per_lang.get("en")) or next((t for t in map(text, per_lang.values()) if t), "")
        if found:
            return found
    title = text(meta.get("title"))
    return title if title and title != code else code


def _values(ctx: Context, raw: object, meta: Mapping) -> list[Value | None]:
    kind = text(meta.get("type")).lower()
    items = raw if isinstance(raw, list) else [raw]
    if kind == "file" or (items and all(is_file(item) for item in items)):
        return [_file(ctx, item) for item in items]
    if isinstance(raw, Mapping):
        items = list(raw.values())
    return [_value(ctx, item, kind, meta) for item in items if not isinstance(item, (Mapping, list))]


def _file(ctx: Context, item: object) -> Value | None:
    if isinstance(item, Mapping):
        name = text(item.get("name") or item.get("ORIGINAL_NAME") or item.get("originalName"))
        file_id = positive_id(item.get("id") or item.get("ID"))
        if name:
            return Value(text=name, kind="file")
        if file_id:
            return Value(text=ctx._("File #%(id)s", id=file_id), kind="file")
        return None
    file_id = positive_id(item)
    return Value(text=ctx._("File #%(id)s", id=file_id), kind="file") if file_id else None


def _value(ctx: Context, item: object, kind: str, meta: Mapping) -> Value | None:
    if kind == "boolean":  # judged on the raw item: False and 0 are answers, not blanks
        answer = ctx.yes_no(item)
        return Value(text=answer, kind="flag") if answer else None
    shown = text(item)
    if not shown:
        return None
    return _BY_TYPE.get(kind, _plain)(ctx, item, shown, meta)


# One formatter per UF type: (ctx, raw item, its clean text, field metadata) -> Value.
_Formatter = Callable[[Context, object, str, Mapping], Value | None]


def _plain(ctx: Context, item: object, shown: str, meta: Mapping) -> Value:
    return Value(text=shown, kind="multiline" if "\n" in shown else "text")


def _enumeration(ctx: Context, item: object, shown: str, meta: Mapping) -> Value:
    return Value(text=enum_text(meta.get("items"), shown))


def _money(ctx: Context, item: object, shown: str, meta: Mapping) -> Value | None:
    amount, _sep, currency = shown.partition("|")
    if not amount.strip():
        return None
    formatted = i18n.format_money(amount, currency.strip() or None, ctx.locale)
    return Value(text=formatted or shown, kind="money")


def _number(ctx: Context, item: object, shown: str, meta: Mapping) -> Value:
    return Value(text=i18n.format_number(shown, ctx.locale) or shown)


def _date(ctx: Context, item: object, shown: str, meta: Mapping) -> Value:
    return Value(text=i18n.format_date(shown, ctx.locale) or shown, kind="date")


def _datetime(ctx: Context, item: object, shown: str, meta: Mapping) -> Value:
    return Value(text=i18n.format_datetime(shown, ctx.locale) or shown, kind="date")


def _url(ctx: Context, item: object, shown: str, meta: Mapping) -> Value:
    # Judged on the raw value, like every link (multifield.py).
    return Value(text=shown, kind="web", href=safe_web_url(item if isinstance(item, str) else shown))


def _employee(ctx: Context, item: object, shown: str, meta: Mapping) -> Value | None:
    return ctx.user_value(shown)


def _crm(ctx: Context, item: object, shown: str, meta: Mapping) -> Value:
    # "C_12" / "CO_5" / "L_3" / "D_9" / "T8a_4" (smart process, hex type id),
    # or a bare id when the field allows a single entity type.
    settings = meta.get("settings")
    prefix, _sep, rest = shown.partition("_")
    entity_id = positive_id(rest)
    if entity_id and prefix.upper() in _CRM_PREFIX:
        return ctx.crm_value(_CRM_PREFIX[prefix.upper()], entity_id)
    if entity_id and re.fullmatch(r"[Tt][0-9a-fA-F]{1,8}", prefix):
        return ctx.crm_value("type", entity_id, entity_type_id=int(prefix[1:], 16))
    bare = positive_id(shown)
    if bare and isinstance(settings, Mapping):
        allowed = [
            e for e in ("LEAD", "DEAL", "CONTACT", "COMPANY") if text(settings.get(e)) == "Y"
        ]
        if len(allowed) == 1:
            return ctx.crm_value(allowed[0].lower(), bare)
    return Value(text=shown)


def _crm_status(ctx: Context, item: object, shown: str, meta: Mapping) -> Value:
    raw_settings = meta.get("settings")
    settings = raw_settings if isinstance(raw_settings, Mapping) else {}
    entity = text(settings.get("ENTITY_TYPE"))
    return Value(text=(ctx.status_name(entity, shown) if entity else None) or shown)


def _address(ctx: Context, item: object, shown: str, meta: Mapping) -> Value:
    # The address text comes before the first "|" (what follows is for maps).
    return Value(text=shown.split("|", 1)[0].strip(), kind="multiline")


_BY_TYPE: dict[str, _Formatter] = {
    "enumeration": _enumeration,
    "money": _money,
    "double": _number,
    "integer": _number,
    "date": _date,
    "datetime": _datetime,
    "url": _url,
    "employee": _employee,
    "crm": _crm,
    "crm_status": _crm_status,
    "address": _address,
}
