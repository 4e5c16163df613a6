"""Multifields — ``PHONE``, ``EMAIL``, ``WEB``, ``IM``, ``LINK`` — → displayed values.

Owns the ``VALUE_TYPE`` labels ("Mobile", "Work"…), the open-channel connector names of ``IM``
values, and one formatter per ``TYPE_ID`` (a phone gets a ``tel:`` link, an e-mail a
``mailto:``, a website a checked ``http(s)`` link). Used by the contact section and by "Show
all fields".
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from leadcard.card.context import Context
from leadcard.card.i18n import N_
from leadcard.card.model import Value
from leadcard.card.values import mailto_href, positive_id, safe_web_url, tel_href, text

MULTIFIELDS = ("PHONE", "EMAIL", "WEB", "IM", "LINK")

# crm_multifield VALUE_TYPE labels per TYPE_ID
# (bitrix24/b24restdocs api-reference/crm/auxiliary/multifield/crm-multifield-fields.md).
_VALUE_TYPES_COMMON = {
    "WORK": N_("Work"),
    "HOME": N_("Home"),
    "OTHER": N_("Other"),
    "MAILING": N_("Mailing"),
}
VALUE_TYPE_LABELS: dict[str, dict[str, str]] = {
    "PHONE": {
        **_VALUE_TYPES_COMMON,
        "MOBILE": N_("Mobile"),
        "FAX": N_("Fax"),
        "PAGER": N_("Pager"),
    },
    "EMAIL": {**_VALUE_TYPES_COMMON, "HOME": N_("Personal")},
    "WEB": {
        **_VALUE_TYPES_COMMON,
        "WORK": N_("Corporate"),
        "HOME": N_("Personal"),
        "FACEBOOK": "Facebook",
        "VK": "VK",
        "LIVEJOURNAL": "LiveJournal",
        "TWITTER": "X (Twitter)",
        "INSTAGRAM": "Instagram",
    },
    "IM": {
        "OTHER": N_("Other"),
        "OPENLINE": N_("Open channel"),
        "IMOL": N_("Open channel"),
        "TELEGRAM": "Telegram",
        "VK": "VK",
        "SKYPE": "Skype",
        "VIBER": "Viber",
        "BITRIX24": "Bitrix24",
        "ICQ": "ICQ",
        "MSN": "MSN",
        "JABBER": "Jabber",
        "FACEBOOK": "Facebook",
        "INSTAGRAM": "Instagram",
        "WHATSAPP": "WhatsApp",
    },
    "LINK": {**_VALUE_TYPES_COMMON},
}

# Open channel connector ids seen in IM values "imol|<connector>|<line>|<chat>|<session>".
IMOL_CONNECTORS = {
    "livechat": N_("Live chat"),
    "network": "Bitrix24.Network",
    "telegrambot": "Telegram",
    "viber": "Viber",
    "vkgroup": "VK",
    "facebook": "Facebook",
    "facebookcomments": "Facebook",
    "fbinstagram": "Instagram",
    "fbinstagramdirect": "Instagram",
    "whatsappbytwilio": "WhatsApp",
    "whatsappbyedna": "WhatsApp",
    "wechat": "WeChat",
    "avito": "Avito",
    "olx": "OLX",
    "imessage": "Apple Messages for Business",
    "notifications": N_("Bitrix24 CRM notifications"),
    "email": N_("E-mail"),
}


def values_of(ctx: Context, type_id: str) -> tuple[Value, ...]:
    """The lead's ``type_id`` multifield items (a list, or a dict keyed by item id)."""
    items = ctx.raw(type_id)
    if isinstance(items, Mapping):
        items = list(items.values())
    if not isinstance(items, list):
        return ()
    labels = VALUE_TYPE_LABELS.get(type_id, _VALUE_TYPES_COMMON)
    make = _BY_TYPE.get(type_id, _plain)
    values = []
    for item in items:
        if not isinstance(item, Mapping):
            continue
        shown = text(item.get("VALUE"))
        if not shown:
            continue
        value_type = text(item.get("VALUE_TYPE")).upper()
        note = labels.get(value_type)
        note = ctx._(note) if note else (value_type.title() or None)
        values.append(make(ctx, shown, note, item.get("VALUE")))
    return tuple(values)


# Links are judged on the raw value: cleaning "https://ex\x00ample.com" first would turn a
# hostile value into a working link.


def _phone(ctx: Context, shown: str, note: str | None, raw: object) -> Value:
    return Value(text=shown, kind="phone", href=tel_href(shown), note=note)


def _email(ctx: Context, shown: str, note: str | None, raw: object) -> Value:
    return Value(text=shown, kind="email", href=mailto_href(shown), note=note)


def _web(ctx: Context, shown: str, note: str | None, raw: object) -> Value:
    href = safe_web_url(raw if isinstance(raw, str) else shown)
    return Value(text=shown, kind="web", href=href, note=note)


def _im(ctx: Context, shown: str, note: str | None, raw: object) -> Value:
    return Value(text=im_text(ctx, shown), kind="im", note=note)


def _plain(ctx: Context, shown: str, note: str | None, raw: object) -> Value:
    return Value(text=shown, note=note)


_BY_TYPE: dict[str, Callable[[Context, str, str | None, object], Value]] = {
    "PHONE": _phone,
    "EMAIL": _email,
    "WEB": _web,
    "LINK": _web,
    "IM": _im,
}


def im_text(ctx: Context, value: str) -> str:
    """``"imol|livechat|1|67|21"`` (connector, line id, chat/user code, session) →
    "Live chat, open channel 1"; any other messenger value as it is."""
    parts = value.split("|")
    if len(parts) >= 3 and parts[0].lower() == "imol":
        connector = parts[1]
        name = IMOL_CONNECTORS.get(connector.lower())
        name = ctx._(name) if name else connector
        line = positive_id(parts[2])
        if line:
            return ctx._("%(connector)s, open channel %(line)s", connector=name, line=line)
        return name
    return value
