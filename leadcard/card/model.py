"""Pure: a raw ``crm.lead.get`` result + reference data + locale → ``Card``.

No Flask and no I/O here. The data layer asks :func:`user_ids_of`,
:func:`company_id_of` and :func:`contact_id_of` what to fetch, fills a
:class:`ReferenceData`, and :func:`build_card` turns it all into a frozen
view-model that ``templates/card.html`` only has to lay out.

Everything in a lead is untrusted text typed by strangers (web forms, open
channels, imports): values stay plain strings for Jinja to autoescape, links
are built here from an allowlist of schemes (``http``, ``https``, ``tel``,
``mailto``), portal links are checked paths for the frame library's
``slider.openPath``, colours are validated ``#rrggbb``, and ``COMMENTS``
(BB-code or HTML) is reduced to text. Field shapes: shared/bitrix24/protocol.md
section g.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from dataclasses import field as dc_field
from functools import lru_cache
from html.parser import HTMLParser
from typing import NamedTuple
from urllib.parse import urlsplit

from leadcard.card import i18n
from leadcard.card.i18n import N_

# --- Input ------------------------------------------------------------------


@dataclass(frozen=True)
class ReferenceData:
    """Portal dictionaries the card needs besides the lead itself."""

    fields: dict[str, dict] = dc_field(default_factory=dict)  # crm.lead.fields
    statuses: dict[str, list[dict]] = dc_field(default_factory=dict)  # ENTITY_ID → items
    currencies: list[dict] = dc_field(default_factory=list)  # crm.currency.list
    users: dict[str, dict] = dc_field(default_factory=dict)  # "7" → user.get item
    companies: dict[str, dict] = dc_field(default_factory=dict)  # "5" → crm.company.get
    contacts: dict[str, dict] = dc_field(default_factory=dict)  # "9" → crm.contact.get


# --- Output (the view-model) -------------------------------------------------


class Value(NamedTuple):
    """One displayed piece of a field.

    ``href`` is only ever ``http(s)://…``, ``tel:…`` or ``mailto:…``;
    ``b24_path`` is a portal path such as ``/crm/company/details/5/`` that the
    page opens in a Bitrix24 slider (``data-b24-path``).

    Values and fields are immutable named tuples rather than frozen dataclasses:
    a card makes ~90 of them per view, a frozen dataclass takes three times as
    long to construct (every attribute goes through ``object.__setattr__``), and
    ``templates/_macros.html`` unpacks them in field order instead of reading
    attributes one by one. Keep that order in step with the template.
    """

    text: str
    kind: str = "text"  # text|multiline|phone|email|web|im|user|crm|file|date|money|flag
    href: str | None = None
    b24_path: str | None = None
    note: str | None = None  # e.g. the VALUE_TYPE label "Mobile"
    photo: str | None = None  # user avatar, http(s) only
    initials: str | None = None  # avatar fallback

    @property
    def external(self) -> bool:
        """Opens outside the app (new tab, no referrer)."""
        return bool(self.href) and self.href.startswith(("http://", "https://"))


class Field(NamedTuple):
    """A labelled row: ``code`` is the Bitrix field code or a synthetic key.

    Build one with :func:`make_field`, which works out ``inline``.
    """

    code: str
    label: str
    values: tuple[Value, ...]
    inline: bool  # values of more than one kind (a date and who did it) share one line
    hint: str | None = None  # technical name shown small, e.g. "utm_source"


def make_field(code: str, label: str, values: tuple[Value, ...], hint: str | None = None) -> Field:
    """A :class:`Field` with ``inline`` derived from its values."""
    return Field(code, label, values, len({v.kind for v in values}) > 1, hint)


@dataclass(frozen=True)
class Section:
    key: str  # contact|company|deal|stage|comments|address|marketing|people|custom
    title: str
    fields: tuple[Field, ...]


@dataclass(frozen=True)
class Stage:
    code: str
    name: str
    semantic: str  # "P" in progress, "S" success, "F" failure
    semantic_label: str
    color: str | None = None  # validated "#rrggbb" from crm.status.list
    text_color: str | None = None  # "#000000"/"#ffffff", whichever reads better on color


@dataclass(frozen=True)
class Card:
    id: str | None
    title: str
    stage: Stage | None
    amount: str | None
    person: str | None
    company: str | None
    sections: tuple[Section, ...]
    extra: tuple[Field, ...]  # "Show all fields": the rest that is not empty
    locale: str  # Babel locale used for numbers and dates
    ui_locale: str  # catalog the texts came from (one of i18n.SUPPORTED_LOCALES)

    @property
    def is_empty(self) -> bool:
        """Nothing to show beyond the header (the stage row repeats the pill)."""
        return all(f.code == "STATUS_ID" for s in self.sections for f in s.fields)

    def section(self, key: str) -> Section | None:
        return next((s for s in self.sections if s.key == key), None)


# --- Small parsers -----------------------------------------------------------

_POSITIVE_INT = re.compile(r"^\s*0*([1-9]\d{0,17})\s*$")
_COLOR = re.compile(r"^#[0-9a-fA-F]{6}$")
_EMAIL = re.compile(r"^[A-Za-z0-9.!#$%*+/=^_`{|}~'-]+@[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?$")
_BARE_HOST = re.compile(r"^(?:[A-Za-z0-9-]+\.)+[A-Za-z]{2,63}(?::\d{1,5})?(?:[/?#]\S*)?$")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\u200b-\u200f\u202a-\u202e\u2066-\u2069]")
# What makes a would-be URL plain text: whitespace (``\s`` is exactly
# ``str.isspace``), C0 controls, a backslash, and the invisible/bidi marks of
# _CONTROL. One regex instead of a per-character loop in Python.
_URL_JUNK = re.compile(r"[\s\x00-\x1f\x7f\\\u200b-\u200f\u202a-\u202e\u2066-\u2069]")

USER_FIELDS = ("ASSIGNED_BY_ID", "CREATED_BY_ID", "MODIFY_BY_ID", "MOVED_BY_ID", "LAST_ACTIVITY_BY")


def _text(value: object) -> str:
    """A scalar as clean one-line-or-more text; '' for None and containers."""
    if type(value) is str:  # nearly every call: skip the other checks
        if value.isprintable():
            # No line breaks and nothing _CONTROL matches (all of it is unprintable).
            return value.strip()
        text = value
    elif value is None or isinstance(value, (dict, list, tuple, set)):
        return ""
    elif isinstance(value, bool):
        return "Y" if value else "N"
    else:
        text = str(value)
    if "\r" in text:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    return _CONTROL.sub("", text).strip()


def positive_id(value: object) -> str | None:
    """``"19"`` → ``"19"``; ``""``, ``"0"``, ``None``, ``"-3"``, ``"x"`` → None."""
    if isinstance(value, bool):
        return None
    match = _POSITIVE_INT.match(_text(value))
    return match.group(1) if match else None


def user_ids_of(lead: Mapping) -> set[str]:
    """User ids the card shows (responsible, author, editors), for ``user.get``."""
    ids = (positive_id(lead.get(key)) for key in USER_FIELDS)
    return {uid for uid in ids if uid}


def company_id_of(lead: Mapping) -> str | None:
    """The linked company's id for ``crm.company.get``, None when not linked."""
    return positive_id(lead.get("COMPANY_ID"))


def contact_id_of(lead: Mapping) -> str | None:
    """The linked contact's id for ``crm.contact.get``, None when not linked."""
    return positive_id(lead.get("CONTACT_ID"))


def valid_color(value: object) -> str | None:
    """``"#39A8EF"`` → ``"#39a8ef"``; anything that is not ``#rrggbb`` → None."""
    text = _text(value)
    return text.lower() if _COLOR.match(text) else None


def _luminance(color: str) -> float:
    def channel(hex2: str) -> float:
        c = int(hex2, 16) / 255
        return c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4

    r, g, b = (channel(color[i : i + 2]) for i in (1, 3, 5))
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def contrast_ratio(a: str, b: str) -> float:
    """WCAG contrast ratio of two ``#rrggbb`` colours."""
    la, lb = sorted((_luminance(a), _luminance(b)), reverse=True)
    return (la + 0.05) / (lb + 0.05)


def text_color_on(color: str) -> str:
    """Black or white, whichever contrasts more with ``color`` (always ≥ 4.5:1)."""
    black, white = "#000000", "#ffffff"
    return black if contrast_ratio(color, black) >= contrast_ratio(color, white) else white


def safe_web_url(value: object) -> str | None:
    """An ``http``/``https`` URL fit for ``href``, or None.

    A bare host (``www.example.com/x``) is taken as ``https://``; any other
    scheme (``javascript:``, ``data:``, ``vbscript:``), protocol-relative
    ``//host``, credentials in the URL and whitespace or control characters
    anywhere make it plain text.
    """
    text = _text(value) if not isinstance(value, str) else value.strip()
    if not text or len(text) > 2048:
        return None
    return _checked_web_url(text)


@lru_cache(maxsize=1024)
def _checked_web_url(text: str) -> str | None:
    # Cached (bounded, short keys only), like urllib's own urlsplit: a card checks
    # the same few links and avatars on every view, and urlsplit plus its
    # properties is the slow part.
    if _URL_JUNK.search(text):
        return None
    if "://" not in text:
        if not _BARE_HOST.match(text):
            return None
        text = "https://" + text
    try:
        parts = urlsplit(text)
        _ = parts.port  # raises ValueError on a junk port
    except ValueError:
        return None
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        return None
    if "@" in parts.netloc:  # same as a username or password being present
        return None
    return parts.scheme.lower() + text[len(parts.scheme) :]


def _tel_href(value: str) -> str | None:
    digits = re.sub(r"[^0-9+*#]", "", value)
    digits = digits[:1] + digits[1:].replace("+", "")
    return "tel:" + digits if sum(ch.isdigit() for ch in digits) >= 3 else None


def _mailto_href(value: str) -> str | None:
    return "mailto:" + value if len(value) <= 254 and _EMAIL.match(value) else None


# --- COMMENTS: BB-code / HTML → plain text -------------------------------------

_BB_BLOCK = frozenset("p quote code list * tr table br left right center justify".split())
_BB_TAGS = (
    "b|i|u|s|url|img|color|size|font|quote|code|list|\\*|p|br|left|right|center|"
    "justify|table|tr|td|th|user|video|spoiler|icon|disk file id|file|project|department"
)
_BB_TAG = re.compile(r"\[(/?)(" + _BB_TAGS + r")(?:[= ][^\]\n]{0,500})?\]", re.IGNORECASE)
_LOOKS_HTML = re.compile(r"</?[A-Za-z][^>]*>|&(?:[A-Za-z]{2,8}|#\d{1,7}|#x[0-9A-Fa-f]{1,6});")


class _TextExtractor(HTMLParser):
    _BLOCK = frozenset("p div li tr h1 h2 h3 h4 h5 h6 blockquote pre ul ol table".split())
    _SKIP = frozenset("script style template noscript iframe object svg math".split())

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._skipping = 0

    def handle_starttag(self, tag: str, attrs: list) -> None:
        if tag in self._SKIP:
            self._skipping += 1
        elif tag == "br":
            self.parts.append("\n")
        elif tag in self._BLOCK:
            self.parts.append("\n")

    def handle_startendtag(self, tag: str, attrs: list) -> None:
        if tag == "br":
            self.parts.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in self._SKIP:
            self._skipping = max(0, self._skipping - 1)
        elif tag in self._BLOCK:
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        if not self._skipping:
            self.parts.append(data)


def rich_text_to_plain(value: object) -> str:
    """``COMMENTS`` (BB-code and/or HTML) → plain text with line breaks kept."""
    text = _text(value)
    if not text:
        return ""

    def bb(match: re.Match) -> str:
        name = match.group(2).lower()
        if name in _BB_BLOCK:
            return "\n"
        return " " if name in ("td", "th") else ""

    text = _BB_TAG.sub(bb, text)
    if _LOOKS_HTML.search(text):
        parser = _TextExtractor()
        parser.feed(text)
        parser.close()
        text = "".join(parser.parts)
    text = _CONTROL.sub("", text.replace("\u00a0", " "))
    lines = [line.rstrip() for line in text.split("\n")]
    text = "\n".join(lines)
    text = re.sub(r"\n{3,}", "\n\n", text)
    return text.strip()


# --- Labels ------------------------------------------------------------------

# Every field crm.lead.get returns (protocol.md g.1, crm-lead-get.md), in the
# order "Show all fields" lists them.
FIELD_LABELS: dict[str, str] = {
    "ID": N_("ID"),
    "TITLE": N_("Lead name"),
    "HONORIFIC": N_("Salutation"),
    "NAME": N_("First name"),
    "SECOND_NAME": N_("Middle name"),
    "LAST_NAME": N_("Last name"),
    "POST": N_("Position"),
    "BIRTHDATE": N_("Date of birth"),
    "PHONE": N_("Phone"),
    "EMAIL": N_("E-mail"),
    "WEB": N_("Website"),
    "IM": N_("Messenger"),
    "LINK": N_("Link"),
    "CONTACT_ID": N_("Contact"),
    "CONTACT_IDS": N_("Contacts"),
    "COMPANY_TITLE": N_("Company name"),
    "COMPANY_ID": N_("Company"),
    "OPPORTUNITY": N_("Amount"),
    "CURRENCY_ID": N_("Currency"),
    "IS_MANUAL_OPPORTUNITY": N_("Amount entered manually"),
    "STATUS_ID": N_("Stage"),
    "STATUS_DESCRIPTION": N_("Stage details"),
    "STATUS_SEMANTIC_ID": N_("Stage group"),
    "SOURCE_ID": N_("Source"),
    "SOURCE_DESCRIPTION": N_("Source details"),
    "IS_RETURN_CUSTOMER": N_("Repeat lead"),
    "COMMENTS": N_("Comment"),
    "ADDRESS": N_("Address"),
    "ADDRESS_2": N_("Address (line 2)"),
    "ADDRESS_CITY": N_("City"),
    "ADDRESS_POSTAL_CODE": N_("Postal code"),
    "ADDRESS_REGION": N_("Region"),
    "ADDRESS_PROVINCE": N_("State / province"),
    "ADDRESS_COUNTRY": N_("Country"),
    "ADDRESS_COUNTRY_CODE": N_("Country code"),
    "ADDRESS_LOC_ADDR_ID": N_("Location address ID"),
    "UTM_SOURCE": N_("Ad system"),
    "UTM_MEDIUM": N_("Traffic type"),
    "UTM_CAMPAIGN": N_("Ad campaign"),
    "UTM_CONTENT": N_("Campaign content"),
    "UTM_TERM": N_("Search term"),
    "ASSIGNED_BY_ID": N_("Responsible person"),
    "CREATED_BY_ID": N_("Created by"),
    "DATE_CREATE": N_("Created on"),
    "MODIFY_BY_ID": N_("Modified by"),
    "DATE_MODIFY": N_("Modified on"),
    "MOVED_BY_ID": N_("Stage changed by"),
    "MOVED_TIME": N_("Stage changed on"),
    "LAST_ACTIVITY_BY": N_("Last activity by"),
    "LAST_ACTIVITY_TIME": N_("Last activity on"),
    "DATE_CLOSED": N_("Closed on"),
    "OPENED": N_("Available to everyone"),
    "HAS_PHONE": N_("Has a phone"),
    "HAS_EMAIL": N_("Has an e-mail"),
    "HAS_IMOL": N_("Has an open channel"),
    "ORIGINATOR_ID": N_("External source"),
    "ORIGIN_ID": N_("ID in external source"),
}

# How a system field's value is shown when it lands in "Show all fields".
_KIND: dict[str, str] = {
    **dict.fromkeys(
        (
            "OPENED",
            "HAS_PHONE",
            "HAS_EMAIL",
            "HAS_IMOL",
            "IS_RETURN_CUSTOMER",
            "IS_MANUAL_OPPORTUNITY",
        ),
        "flag",
    ),
    **dict.fromkeys(USER_FIELDS, "user"),
    **dict.fromkeys(
        ("DATE_CREATE", "DATE_MODIFY", "MOVED_TIME", "LAST_ACTIVITY_TIME", "DATE_CLOSED"),
        "datetime",
    ),
    "BIRTHDATE": "date",
    "STATUS_ID": "status",
    "SOURCE_ID": "source",
    "HONORIFIC": "honorific",
    "STATUS_SEMANTIC_ID": "semantic",
    "OPPORTUNITY": "amount",
    "CURRENCY_ID": "currency",
    "COMPANY_ID": "company",
    "CONTACT_ID": "contact",
    "CONTACT_IDS": "contacts",
    "COMMENTS": "comments",
    **dict.fromkeys(("PHONE", "EMAIL", "WEB", "IM", "LINK"), "multifield"),
}

SECTION_TITLES = {
    "contact": N_("Contact person"),
    "company": N_("Company"),
    "deal": N_("Deal value"),
    "stage": N_("Stage and source"),
    "comments": N_("Comment"),
    "address": N_("Address"),
    "marketing": N_("Marketing (UTM)"),
    "people": N_("Responsible and history"),
    "custom": N_("Custom fields"),
}

# crm_multifield VALUE_TYPE labels per TYPE_ID (protocol.md g.2).
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

SEMANTIC_LABELS = {"P": N_("In progress"), "S": N_("Successful"), "F": N_("Unsuccessful")}
_SEMANTIC_FROM_EXTRA = {"process": "P", "success": "S", "failure": "F", "apology": "F"}

# Portal paths the frame library may open in a slider (checked again in frame.js).
_CRM_PATHS = {
    "lead": "/crm/lead/details/{id}/",
    "deal": "/crm/deal/details/{id}/",
    "contact": "/crm/contact/details/{id}/",
    "company": "/crm/company/details/{id}/",
}
USER_PATH = "/company/personal/user/{id}/"
_CRM_PREFIX = {"L": "lead", "D": "deal", "C": "contact", "CO": "company"}
_CRM_FALLBACK_NAMES = {
    "lead": N_("Lead #%(id)s"),
    "deal": N_("Deal #%(id)s"),
    "contact": N_("Contact #%(id)s"),
    "company": N_("Company #%(id)s"),
    "type": N_("Item #%(id)s"),
}

_HEADER_FIELDS = {"TITLE", "HONORIFIC", "NAME", "SECOND_NAME", "LAST_NAME"}
_ADDRESS_FIELDS = (
    "ADDRESS",
    "ADDRESS_2",
    "ADDRESS_POSTAL_CODE",
    "ADDRESS_CITY",
    "ADDRESS_REGION",
    "ADDRESS_PROVINCE",
    "ADDRESS_COUNTRY",
    "ADDRESS_COUNTRY_CODE",
)
_UTM_FIELDS = ("UTM_SOURCE", "UTM_MEDIUM", "UTM_CAMPAIGN", "UTM_CONTENT", "UTM_TERM")
_UF_LABEL_KEYS = ("formLabel", "listLabel", "filterLabel", "editFormLabel")  # by preference


# --- Building ----------------------------------------------------------------


class _Builder:
    """Holds the lead, the reference data and the translator for one build."""

    def __init__(self, lead: Mapping, ref: ReferenceData, locale: str) -> None:
        self.lead = lead if isinstance(lead, Mapping) else {}
        self.ref = ref
        self.locale = locale
        self.ui_locale = i18n.ui_locale_for_locale(locale)
        self.bitrix_lang = i18n.bitrix_lang_for_locale(locale)
        self.gettext: Callable[[str], str] = i18n.translations(locale).gettext
        self.used: set[str] = set()

    # helpers -------------------------------------------------------------

    def _(self, message: str, **params: object) -> str:
        text = self.gettext(message)
        return text % params if params else text

    def raw(self, code: str) -> object:
        return self.lead.get(code)

    def text(self, code: str) -> str:
        return _text(self.lead.get(code))

    def label(self, code: str) -> str:
        msgid = FIELD_LABELS.get(code)
        return self._(msgid) if msgid else code

    def yes_no(self, value: object) -> str | None:
        flag = _flag(value)
        if flag is None:
            return None
        return self._("Yes") if flag else self._("No")

    def status_item(self, entity: str, status_id: str) -> dict | None:
        for item in self.ref.statuses.get(entity) or ():
            if isinstance(item, Mapping) and _text(item.get("STATUS_ID")) == status_id:
                return dict(item)
        return None

    def status_name(self, entity: str, status_id: str) -> str | None:
        item = self.status_item(entity, status_id)
        name = _text(item.get("NAME")) if item else ""
        return name or None

    def user_value(self, user_id: object) -> Value | None:
        uid = positive_id(user_id)
        if uid is None:
            return None
        user = self.ref.users.get(uid)
        if user is None:
            # System users (integrations) are not returned by user.get
            # (protocol.md g.5): a neutral label, and no profile link.
            return Value(text=self._("User #%(id)s", id=uid), kind="user", initials="#")
        name = _person_name(user) or _text(user.get("LOGIN")) or self._("User #%(id)s", id=uid)
        return Value(
            text=name,
            kind="user",
            b24_path=USER_PATH.format(id=uid),
            photo=safe_web_url(user.get("PERSONAL_PHOTO"))
            if isinstance(user.get("PERSONAL_PHOTO"), str)
            else None,
            initials=_initials(user) or "#",
            note=_text(user.get("WORK_POSITION")) or None,
        )

    def crm_value(self, entity: str, entity_id: str, entity_type_id: int | None = None) -> Value:
        if entity == "company":
            company = self.ref.companies.get(entity_id) or {}
            name = _text(company.get("TITLE"))
        elif entity == "contact":
            name = _person_name(self.ref.contacts.get(entity_id) or {})
        else:
            name = ""
        if entity == "type":
            path = f"/crm/type/{entity_type_id}/details/{entity_id}/"
        else:
            path = _CRM_PATHS[entity].format(id=entity_id)
        return Value(
            text=name or self._(_CRM_FALLBACK_NAMES[entity], id=entity_id),
            kind="crm",
            b24_path=path,
        )

    def multifield(self, type_id: str) -> tuple[Value, ...]:
        items = self.raw(type_id)
        if isinstance(items, Mapping):
            items = list(items.values())
        if not isinstance(items, list):
            return ()
        labels = VALUE_TYPE_LABELS.get(type_id, _VALUE_TYPES_COMMON)
        values = []
        for item in items:
            if not isinstance(item, Mapping):
                continue
            text = _text(item.get("VALUE"))
            if not text:
                continue
            value_type = _text(item.get("VALUE_TYPE")).upper()
            note = labels.get(value_type)
            note = self._(note) if note else (value_type.title() or None)
            values.append(self.multifield_value(type_id, text, note, item.get("VALUE")))
        return tuple(values)

    def multifield_value(
        self, type_id: str, text: str, note: str | None, raw: object = None
    ) -> Value:
        # Links are judged on the raw value: cleaning "https://ex\x00ample.com"
        # first would turn a hostile value into a working link.
        if type_id == "PHONE":
            return Value(text=text, kind="phone", href=_tel_href(text), note=note)
        if type_id == "EMAIL":
            return Value(text=text, kind="email", href=_mailto_href(text), note=note)
        if type_id in ("WEB", "LINK"):
            href = safe_web_url(raw if isinstance(raw, str) else text)
            return Value(text=text, kind="web", href=href, note=note)
        if type_id == "IM":
            return Value(text=self.im_text(text), kind="im", note=note)
        return Value(text=text, note=note)

    def im_text(self, text: str) -> str:
        # "imol|livechat|1|67|21": connector, line id, chat/user code, session.
        parts = text.split("|")
        if len(parts) >= 3 and parts[0].lower() == "imol":
            connector = parts[1]
            name = IMOL_CONNECTORS.get(connector.lower())
            name = self._(name) if name else connector
            line = positive_id(parts[2])
            if line:
                return self._("%(connector)s, open channel %(line)s", connector=name, line=line)
            return name
        return text

    def field(
        self,
        code: str,
        values: Iterable[Value | None],
        label: str | None = None,
        hint: str | None = None,
    ) -> Field | None:
        kept = [v for v in values if v is not None and v.text]
        if not kept:
            return None
        return make_field(code, label or self.label(code), tuple(kept), hint)

    def text_field(self, code: str, multiline: bool = False) -> Field | None:
        self.used.add(code)
        text = self.text(code)
        return self.field(
            code, [Value(text=text, kind="multiline" if multiline or "\n" in text else "text")]
        )

    # header --------------------------------------------------------------

    def title(self) -> str:
        title = self.text("TITLE")
        if title:
            return title
        lead_id = positive_id(self.raw("ID"))
        return self._("Lead #%(id)s", id=lead_id) if lead_id else self._("Untitled lead")

    def stage(self) -> Stage | None:
        code = self.text("STATUS_ID")
        if not code:
            return None
        item = self.status_item("STATUS", code) or {}
        extra = item.get("EXTRA") if isinstance(item.get("EXTRA"), Mapping) else {}
        semantic = self.text("STATUS_SEMANTIC_ID").upper()
        if semantic not in SEMANTIC_LABELS:
            semantic = _text(item.get("SEMANTICS")).upper()
        if semantic not in SEMANTIC_LABELS:
            semantic = _SEMANTIC_FROM_EXTRA.get(_text(extra.get("SEMANTICS")).lower(), "P")
        color = valid_color(item.get("COLOR")) or valid_color(extra.get("COLOR"))
        return Stage(
            code=code,
            name=_text(item.get("NAME")) or code,
            semantic=semantic,
            semantic_label=self._(SEMANTIC_LABELS[semantic]),
            color=color,
            text_color=text_color_on(color) if color else None,
        )

    def amount(self) -> str | None:
        amount = i18n.to_decimal(self.raw("OPPORTUNITY"))
        if not amount:
            return None
        return i18n.format_money(amount, self.text("CURRENCY_ID"), self.locale)

    def person(self) -> str | None:
        honorific_code = self.text("HONORIFIC")
        honorific = self.status_name("HONORIFIC", honorific_code) if honorific_code else None
        name = " ".join(
            p for p in (self.text("NAME"), self.text("SECOND_NAME"), self.text("LAST_NAME")) if p
        )
        if not name:
            return None
        return f"{honorific} {name}" if honorific else name

    def company_name(self) -> str | None:
        title = self.text("COMPANY_TITLE")
        if title:
            return title
        company_id = company_id_of(self.lead)
        company = self.ref.companies.get(company_id) if company_id else None
        return _text(company.get("TITLE")) or None if isinstance(company, Mapping) else None

    # sections ------------------------------------------------------------

    def section(self, key: str, fields: Iterable[Field | None]) -> Section | None:
        kept = tuple(f for f in fields if f is not None)
        return Section(key=key, title=self._(SECTION_TITLES[key]), fields=kept) if kept else None

    def contact_section(self) -> Section | None:
        self.used.update(_HEADER_FIELDS)
        fields: list[Field | None] = [self.text_field("POST")]
        self.used.add("BIRTHDATE")
        birth = i18n.format_date(self.raw("BIRTHDATE"), self.locale)
        fields.append(self.field("BIRTHDATE", [Value(text=birth, kind="date")] if birth else []))
        for type_id in ("PHONE", "EMAIL", "WEB", "IM", "LINK"):
            self.used.add(type_id)
            fields.append(self.field(type_id, self.multifield(type_id)))
        # HAS_* only say whether the lists above are filled.
        self.used.update(("CONTACT_ID", "CONTACT_IDS", "HAS_PHONE", "HAS_EMAIL", "HAS_IMOL"))
        contact_ids = [contact_id_of(self.lead)]
        more = self.raw("CONTACT_IDS")
        contact_ids += [positive_id(i) for i in more] if isinstance(more, list) else []
        unique = list(dict.fromkeys(cid for cid in contact_ids if cid))
        if unique:
            label = self._("Linked contact") if len(unique) == 1 else self.label("CONTACT_IDS")
            values = [self.crm_value("contact", cid) for cid in unique]
            fields.append(self.field("CONTACT_ID", values, label=label))
        return self.section("contact", fields)

    def company_section(self) -> Section | None:
        self.used.update(("COMPANY_TITLE", "COMPANY_ID"))
        title = self.text("COMPANY_TITLE")
        company_id = company_id_of(self.lead)
        fields: list[Field | None] = []
        if company_id:
            linked = self.crm_value("company", company_id)
            if title and title != linked.text:
                fields.append(self.field("COMPANY_TITLE", [Value(text=title)]))
                fields.append(self.field("COMPANY_ID", [linked], label=self._("Linked company")))
            else:
                fields.append(self.field("COMPANY_ID", [linked]))
        elif title:
            fields.append(self.field("COMPANY_TITLE", [Value(text=title)]))
        return self.section("company", fields)

    def deal_section(self, amount: str | None) -> Section | None:
        if not amount:
            return None  # 0.00 is Bitrix24's "not filled"; it stays in "all fields"
        self.used.update(("OPPORTUNITY", "CURRENCY_ID", "IS_MANUAL_OPPORTUNITY"))
        currency = self.currency_value(self.text("CURRENCY_ID"))
        manual = _flag(self.raw("IS_MANUAL_OPPORTUNITY"))
        calc = None
        if manual is not None:
            calc = Value(
                text=self._("Entered manually") if manual else self._("Calculated from products")
            )
        return self.section(
            "deal",
            [
                self.field("OPPORTUNITY", [Value(text=amount, kind="money")]),
                self.field("CURRENCY_ID", [currency] if currency else []),
                self.field("IS_MANUAL_OPPORTUNITY", [calc], label=self._("How the amount is set")),
            ],
        )

    def currency_value(self, code: str) -> Value | None:
        if not code:
            return None
        name = i18n.currency_name(code, self.locale)
        name = name[:1].upper() + name[1:] if name else None
        if not name:
            for item in self.ref.currencies:
                if isinstance(item, Mapping) and _text(item.get("CURRENCY")) == code:
                    name = _text(item.get("FULL_NAME")) or None
                    lang = item.get("LANG")
                    if isinstance(lang, Mapping):
                        localized = lang.get(i18n.bitrix_lang_for_locale(self.locale))
                        if isinstance(localized, Mapping):
                            name = _text(localized.get("FULL_NAME")) or name
                    break
        return Value(text=f"{name} ({code})" if name and name != code else code)

    def stage_section(self, stage: Stage | None) -> Section | None:
        self.used.update(("STATUS_ID", "STATUS_SEMANTIC_ID", "SOURCE_ID", "IS_RETURN_CUSTOMER"))
        fields: list[Field | None] = []
        if stage:
            note = (
                stage.semantic_label
                if stage.semantic_label.casefold() != stage.name.casefold()
                else None
            )
            fields.append(self.field("STATUS_ID", [Value(text=stage.name, note=note)]))
        fields.append(self.text_field("STATUS_DESCRIPTION", multiline=True))
        source = self.source_value()
        fields.append(self.field("SOURCE_ID", [source] if source else []))
        fields.append(self.text_field("SOURCE_DESCRIPTION", multiline=True))
        if _flag(self.raw("IS_RETURN_CUSTOMER")):
            fields.append(
                self.field("IS_RETURN_CUSTOMER", [Value(text=self._("Yes"), kind="flag")])
            )
        else:
            self.used.discard("IS_RETURN_CUSTOMER")  # "No" is only worth a line in "all fields"
        return self.section("stage", fields)

    def source_value(self) -> Value | None:
        code = self.text("SOURCE_ID")
        if not code:
            return None
        return Value(text=self.status_name("SOURCE", code) or code)

    def comments_section(self) -> Section | None:
        self.used.add("COMMENTS")
        text = rich_text_to_plain(self.raw("COMMENTS"))
        return self.section(
            "comments", [self.field("COMMENTS", [Value(text=text, kind="multiline")])]
        )

    def address_section(self) -> Section | None:
        self.used.update(_ADDRESS_FIELDS)
        t = self.text
        city_line = " ".join(p for p in (t("ADDRESS_POSTAL_CODE"), t("ADDRESS_CITY")) if p)
        region_line = ", ".join(p for p in (t("ADDRESS_REGION"), t("ADDRESS_PROVINCE")) if p)
        country = t("ADDRESS_COUNTRY") or t("ADDRESS_COUNTRY_CODE")
        lines = [
            line for line in (t("ADDRESS"), t("ADDRESS_2"), city_line, region_line, country) if line
        ]
        return self.section(
            "address", [self.field("ADDRESS", [Value(text="\n".join(lines), kind="multiline")])]
        )

    def marketing_section(self) -> Section | None:
        fields = []
        for code in _UTM_FIELDS:
            self.used.add(code)
            fields.append(self.field(code, [Value(text=self.text(code))], hint=code.lower()))
        return self.section("marketing", fields)

    def people_section(self) -> Section | None:
        rows = (
            ("ASSIGNED_BY_ID", None, N_("Responsible")),
            ("CREATED_BY_ID", "DATE_CREATE", N_("Created")),
            ("MODIFY_BY_ID", "DATE_MODIFY", N_("Modified")),
            ("MOVED_BY_ID", "MOVED_TIME", N_("Stage changed")),
            ("LAST_ACTIVITY_BY", "LAST_ACTIVITY_TIME", N_("Last activity")),
            (None, "DATE_CLOSED", N_("Closed")),
        )
        fields = []
        for user_code, date_code, label in rows:
            values: list[Value | None] = []
            if date_code:
                self.used.add(date_code)
                when = i18n.format_datetime(self.raw(date_code), self.locale) or self.text(
                    date_code
                )
                values.append(Value(text=when, kind="date") if when else None)
            if user_code:
                self.used.add(user_code)
                values.append(self.user_value(self.raw(user_code)))
            fields.append(self.field(user_code or date_code or "", values, label=self._(label)))
        return self.section("people", fields)

    def custom_section(self) -> Section | None:
        codes = [c for c in self.ref.fields if c.startswith("UF_") and c in self.lead]
        codes += [
            c for c in self.lead if isinstance(c, str) and c.startswith("UF_") and c not in codes
        ]
        fields = []
        for code in codes:
            self.used.add(code)
            meta = self.ref.fields.get(code)
            meta = meta if isinstance(meta, Mapping) else {}
            values = self.uf_values(self.raw(code), meta)
            fields.append(self.field(code, values, label=self.uf_label(code, meta)))
        return self.section("custom", fields)

    # custom (UF_*) fields ------------------------------------------------

    def uf_label(self, code: str, meta: Mapping) -> str:
        """``formLabel``/``listLabel``…: text, or ``{"en": …, "la": …}`` per Bitrix24 language."""
        plain = ""  # the first non-empty text label
        dicts = []
        for key in _UF_LABEL_KEYS:
            label = meta.get(key)
            if isinstance(label, Mapping):
                dicts.append(label)
            elif not plain:
                plain = _text(label)
        for lang in (self.bitrix_lang, self.ui_locale):
            for label in dicts:
                text = _text(label.get(lang))
                if text:
                    return text
        if plain:
            return plain
        for label in dicts:
            text = _text(label.get("en")) or next((t for t in map(_text, label.values()) if t), "")
            if text:
                return text
        title = _text(meta.get("title"))
        return title if title and title != code else code

    def uf_values(self, raw: object, meta: Mapping) -> list[Value | None]:
        kind = _text(meta.get("type")).lower()
        items = raw if isinstance(raw, list) else [raw]
        if kind == "file" or (items and all(_is_file(item) for item in items)):
            return [self.uf_file(item) for item in items]
        if isinstance(raw, Mapping):
            items = list(raw.values())
        return [
            self.uf_value(item, kind, meta)
            for item in items
            if not isinstance(item, (Mapping, list))
        ]

    def uf_file(self, item: object) -> Value | None:
        if isinstance(item, Mapping):
            name = _text(item.get("name") or item.get("ORIGINAL_NAME") or item.get("originalName"))
            file_id = positive_id(item.get("id") or item.get("ID"))
            if name:
                return Value(text=name, kind="file")
            if file_id:
                return Value(text=self._("File #%(id)s", id=file_id), kind="file")
            return None
        file_id = positive_id(item)
        return Value(text=self._("File #%(id)s", id=file_id), kind="file") if file_id else None

    def uf_value(self, item: object, kind: str, meta: Mapping) -> Value | None:
        if kind == "boolean":
            text = self.yes_no(item)
            return Value(text=text, kind="flag") if text else None
        text = _text(item)
        if not text:
            return None
        if kind == "enumeration":
            return Value(text=_enum_text(meta.get("items"), text))
        if kind == "money":
            return self.uf_money(text)
        if kind in ("double", "integer"):
            return Value(text=i18n.format_number(text, self.locale) or text)
        if kind == "date":
            return Value(text=i18n.format_date(text, self.locale) or text, kind="date")
        if kind == "datetime":
            return Value(text=i18n.format_datetime(text, self.locale) or text, kind="date")
        if kind == "url":
            return Value(
                text=text, kind="web", href=safe_web_url(item if isinstance(item, str) else text)
            )
        if kind == "employee":
            return self.user_value(text)
        if kind == "crm":
            return self.uf_crm(text, meta.get("settings"))
        if kind == "crm_status":
            settings = meta.get("settings") if isinstance(meta.get("settings"), Mapping) else {}
            entity = _text(settings.get("ENTITY_TYPE"))
            return Value(text=(self.status_name(entity, text) if entity else None) or text)
        if kind == "address":
            return Value(text=text.split("|", 1)[0].strip(), kind="multiline")
        return Value(text=text, kind="multiline" if "\n" in text else "text")

    def uf_money(self, text: str) -> Value | None:
        amount, _sep, currency = text.partition("|")
        if not amount.strip():
            return None
        formatted = i18n.format_money(amount, currency.strip() or None, self.locale)
        return Value(text=formatted or text, kind="money")

    def uf_crm(self, text: str, settings: object) -> Value:
        # "C_12" / "CO_5" / "L_3" / "D_9" / "T8a_4" (smart process, hex type id),
        # or a bare id when the field allows a single entity type.
        prefix, _sep, rest = text.partition("_")
        entity_id = positive_id(rest)
        if entity_id and prefix.upper() in _CRM_PREFIX:
            return self.crm_value(_CRM_PREFIX[prefix.upper()], entity_id)
        if entity_id and re.fullmatch(r"[Tt][0-9a-fA-F]{1,8}", prefix):
            return self.crm_value("type", entity_id, entity_type_id=int(prefix[1:], 16))
        bare = positive_id(text)
        if bare and isinstance(settings, Mapping):
            allowed = [
                e for e in ("LEAD", "DEAL", "CONTACT", "COMPANY") if _text(settings.get(e)) == "Y"
            ]
            if len(allowed) == 1:
                return self.crm_value(allowed[0].lower(), bare)
        return Value(text=text)

    # "show all fields" ---------------------------------------------------

    def extra_fields(self) -> tuple[Field, ...]:
        fields = []
        for code in FIELD_LABELS:
            if code in self.used or code not in self.lead:
                continue
            values = self.generic_values(code)
            row = self.field(code, values)
            if row:
                fields.append(row)
        return tuple(fields)

    def generic_values(self, code: str) -> list[Value | None]:
        kind = _KIND.get(code, "text")
        raw = self.raw(code)
        text = _text(raw)
        if kind == "multifield":
            return list(self.multifield(code))
        if kind == "contacts":
            ids = raw if isinstance(raw, list) else [raw]
            return [self.crm_value("contact", cid) for cid in (positive_id(i) for i in ids) if cid]
        if not text:
            return []
        if kind == "flag":
            return [Value(text=self.yes_no(raw) or text, kind="flag")]
        if kind == "user":
            return [self.user_value(raw)]
        if kind == "datetime":
            return [Value(text=i18n.format_datetime(raw, self.locale) or text, kind="date")]
        if kind == "date":
            return [Value(text=i18n.format_date(raw, self.locale) or text, kind="date")]
        if kind == "status":
            return [Value(text=self.status_name("STATUS", text) or text)]
        if kind == "source":
            return [Value(text=self.status_name("SOURCE", text) or text)]
        if kind == "honorific":
            return [Value(text=self.status_name("HONORIFIC", text) or text)]
        if kind == "semantic":
            label = SEMANTIC_LABELS.get(text.upper())
            return [Value(text=self._(label) if label else text)]
        if kind == "amount":
            money = i18n.format_money(text, self.text("CURRENCY_ID") or None, self.locale)
            return [Value(text=money or text, kind="money")]
        if kind == "currency":
            return [self.currency_value(text)]
        if kind in ("company", "contact"):
            entity_id = positive_id(text)
            return [self.crm_value(kind, entity_id)] if entity_id else []
        if kind == "comments":
            return [Value(text=rich_text_to_plain(raw), kind="multiline")]
        return [Value(text=text, kind="multiline" if "\n" in text else "text")]


def _flag(value: object) -> bool | None:
    if isinstance(value, bool):
        return value
    text = _text(value).upper()
    if text in ("Y", "1", "TRUE", "YES"):
        return True
    if text in ("N", "0", "FALSE", "NO"):
        return False
    return None


def _is_file(item: object) -> bool:
    # File UF values: {"id": 37375, "showUrl": "…", "downloadUrl": "…"}.
    return (
        isinstance(item, Mapping) and "id" in item and ("showUrl" in item or "downloadUrl" in item)
    )


def _person_name(record: Mapping) -> str:
    if not isinstance(record, Mapping):
        return ""
    parts = [_text(record.get(k)) for k in ("NAME", "SECOND_NAME", "LAST_NAME")]
    return " ".join([p for p in parts if p])


def _initials(record: Mapping) -> str:
    parts = [_text(record.get(k)) for k in ("NAME", "LAST_NAME")]
    return "".join([p[0] for p in parts if p]).upper()[:2]


def _enum_text(items: object, value: str) -> str:
    if isinstance(items, Mapping):
        items = [{"ID": k, "VALUE": v} for k, v in items.items()]
    if isinstance(items, list):
        for item in items:
            if isinstance(item, Mapping) and _text(item.get("ID")) == value:
                return _text(item.get("VALUE")) or value
    return value


def build_card(lead: dict, ref: ReferenceData, locale: str) -> Card:
    """Turn a raw ``crm.lead.get`` result into the card's view-model.

    ``locale`` is a Babel locale id — pass ``i18n.format_locale_for_lang(LANG)``
    so a ``br`` user gets English texts with Brazilian number and date formats.
    Unknown keys are ignored, empty values hidden, and whatever is filled but
    not placed in a section is listed in ``Card.extra``.
    """
    b = _Builder(lead, ref or ReferenceData(), locale or i18n.DEFAULT_LOCALE)
    stage = b.stage()
    amount = b.amount()
    sections = (
        b.contact_section(),
        b.company_section(),
        b.deal_section(amount),
        b.stage_section(stage),
        b.comments_section(),
        b.address_section(),
        b.marketing_section(),
        b.people_section(),
        b.custom_section(),
    )
    return Card(
        id=positive_id(b.raw("ID")),
        title=b.title(),
        stage=stage,
        amount=amount,
        person=b.person(),
        company=b.company_name(),
        sections=tuple(s for s in sections if s is not None),
        extra=b.extra_fields(),
        locale=b.locale,
        ui_locale=b.ui_locale,
    )
