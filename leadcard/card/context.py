"""What every section builder reads: one lead, the portal's reference data, one locale.

Owns :class:`Context`, the read-only bundle a build hands to each section (the raw lead, the
:class:`~leadcard.card.model.ReferenceData`, the format locale and the translator derived from
it), and the lookups sections share: field text and labels, yes/no, status names, currency
names, and the two linked kinds of value — a portal user and a CRM record — with their portal
paths. Nothing here remembers anything between calls: a section's result depends only on
its inputs.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping

from leadcard.card import i18n
from leadcard.card.fields import FIELD_LABELS, SECTION_TITLES
from leadcard.card.i18n import N_
from leadcard.card.model import Field, ReferenceData, Section, Value, make_field
from leadcard.card.values import flag, initials, person_name, positive_id, safe_web_url, text

# Portal paths the frame library may open in a slider (checked again in frame.js).
CRM_PATHS = {
    "lead": "/crm/lead/details/{id}/",
    "deal": "/crm/deal/details/{id}/",
    "contact": "/crm/contact/details/{id}/",
    "company": "/crm/company/details/{id}/",
}
SMART_PROCESS_PATH = "/crm/type/{type_id}/details/{id}/"
USER_PATH = "/company/personal/user/{id}/"
_CRM_FALLBACK_NAMES = {
    "lead": N_("Lead #%(id)s"),
    "deal": N_("Deal #%(id)s"),
    "contact": N_("Contact #%(id)s"),
    "company": N_("Company #%(id)s"),
    "type": N_("Item #%(id)s"),
}
# The linked records a lead's card has fetched, and how each is named.
_CRM_NAMES: dict[str, Callable[[ReferenceData, str], str]] = {
    "company": lambda ref, eid: text((ref.companies.get(eid) or {}).get("TITLE")),
    "contact": lambda ref, eid: person_name(ref.contacts.get(eid) or {}),
}


class Context:
    """The inputs of one card build and the lookups every section shares."""

    __slots__ = ("lead", "ref", "locale", "ui_locale", "bitrix_lang", "gettext")

    def __init__(self, lead: Mapping, ref: ReferenceData, locale: str) -> None:
        self.lead: Mapping = lead if isinstance(lead, Mapping) else {}
        self.ref = ref
        self.locale = locale
        self.ui_locale = i18n.ui_locale_for_locale(locale)
        self.bitrix_lang = i18n.bitrix_lang_for_locale(locale)
        self.gettext: Callable[[str], str] = i18n.translations(locale).gettext

    # text ------------------------------------------------------------------

    def _(self, message: str, **params: object) -> str:
        """``message`` translated, with ``%(name)s`` parameters filled in."""
        translated = self.gettext(message)
        return translated % params if params else translated

    def raw(self, code: str) -> object:
        return self.lead.get(code)

    def text(self, code: str) -> str:
        return text(self.lead.get(code))

    def label(self, code: str) -> str:
        msgid = FIELD_LABELS.get(code)
        return self._(msgid) if msgid else code

    def yes_no(self, value: object) -> str | None:
        answer = flag(value)
        if answer is None:
            return None
        return self._("Yes") if answer else self._("No")

    # reference data --------------------------------------------------------

    def status_item(self, entity: str, status_id: str) -> dict | None:
        for item in self.ref.statuses.get(entity) or ():
            if isinstance(item, Mapping) and text(item.get("STATUS_ID")) == status_id:
                return dict(item)
        return None

    def status_name(self, entity: str, status_id: str) -> str | None:
        item = self.status_item(entity, status_id)
        name = text(item.get("NAME")) if item else ""
        return name or None

    def currency_value(self, code: str) -> Value | None:
        """``"Euro (EUR)"``: Babel's name, else the portal's own (``crm.currency.list``)."""
        if not code:
            return None
        name = i18n.currency_name(code, self.locale)
        name = name[:1].upper() + name[1:] if name else None
        if not name:
            for item in self.ref.currencies:
                if isinstance(item, Mapping) and text(item.get("CURRENCY")) == code:
                    name = text(item.get("FULL_NAME")) or None
                    lang = item.get("LANG")
                    if isinstance(lang, Mapping):
                        localized = lang.get(i18n.bitrix_lang_for_locale(self.locale))
                        if isinstance(localized, Mapping):
                            name = text(localized.get("FULL_NAME")) or name
                    break
        return Value(text=f"{name} ({code})" if name and name != code else code)

    def user_value(self, user_id: object) -> Value | None:
        """A portal user with name, position, avatar and profile link (None for no id)."""
        uid = positive_id(user_id)
        if uid is None:
            return None
        user = self.ref.users.get(uid)
        if user is None:
            # System users (integrations) are not returned by user.get: a neutral label,
            # and no profile link.
            return Value(text=self._("User #%(id)s", id=uid), kind="user", initials="#")
        name = person_name(user) or text(user.get("LOGIN")) or self._("User #%(id)s", id=uid)
        return Value(
            text=name,
            kind="user",
            b24_path=USER_PATH.format(id=uid),
            photo=safe_web_url(user.get("PERSONAL_PHOTO"))
            if isinstance(user.get("PERSONAL_PHOTO"), str)
            else None,
            initials=initials(user) or "#",
            note=text(user.get("WORK_POSITION")) or None,
        )

    def crm_value(self, entity: str, entity_id: str, entity_type_id: int | None = None) -> Value:
        """A linked CRM record (``entity`` of :data:`CRM_PATHS`, or ``"type"`` for a smart
        process item of ``entity_type_id``), named when its record was fetched."""
        names = _CRM_NAMES.get(entity)
        name = names(self.ref, entity_id) if names else ""
        if entity == "type":
            path = SMART_PROCESS_PATH.format(type_id=entity_type_id, id=entity_id)
        else:
            path = CRM_PATHS[entity].format(id=entity_id)
        return Value(
            text=name or self._(_CRM_FALLBACK_NAMES[entity], id=entity_id),
            kind="crm",
            b24_path=path,
        )

    # rows and sections -----------------------------------------------------

    def field(
        self,
        code: str,
        values: Iterable[Value | None],
        label: str | None = None,
        hint: str | None = None,
    ) -> Field | None:
        """A row of the non-empty ``values``, or None when nothing is left to show."""
        kept = [v for v in values if v is not None and v.text]
        if not kept:
            return None
        return make_field(code, label or self.label(code), tuple(kept), hint)

    def text_field(self, code: str, multiline: bool = False) -> Field | None:
        """The lead's ``code`` as one text row."""
        value = self.text(code)
        return self.field(
            code, [Value(text=value, kind="multiline" if multiline or "\n" in value else "text")]
        )

    def section(self, key: str, fields: Iterable[Field | None]) -> Section | None:
        """Section ``key`` with its rows, or None when none of them has a value."""
        kept = tuple(f for f in fields if f is not None)
        return Section(key=key, title=self._(SECTION_TITLES[key]), fields=kept) if kept else None
