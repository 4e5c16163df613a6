"""The card's view-model, and the reference data a card is built from.

Owns the shapes only: :class:`ReferenceData` (what the data layer hands in besides the lead)
and the frozen output — :class:`Card` → :class:`Section` → :class:`Field` → :class:`Value`,
plus the :class:`Stage` pill — that ``templates/card.html`` lays out by attribute name. Who
fills them: :func:`leadcard.card.build.build_card`. No logic beyond small derived properties.

Security contract of the values (enforced where they are made, ``values.py`` and
``context.py``): text stays plain for Jinja to autoescape; ``href`` is only ever
``http(s)://…``, ``tel:…`` or ``mailto:…``; ``b24_path`` is a checked portal path for the
frame library's ``slider.openPath``; colours are validated ``#rrggbb``.
"""

from __future__ import annotations

from dataclasses import dataclass
from dataclasses import field as dc_field
from typing import Any

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
    context: LeadContext | None = None  # the panels' answers (flows/lead_context.py)


@dataclass(frozen=True)
class LeadContext:
    """The lead's context as Bitrix24 answered it for this viewer, raw: the panels are made of
    it (:mod:`leadcard.card.panels`). ``state`` maps a panel to "denied" or "failed" when its
    read did not succeed; the others stand."""

    open_activities: list[dict] = dc_field(default_factory=list)  # crm.activity.list COMPLETED=N
    done_activities: list[dict] = dc_field(default_factory=list)  # COMPLETED=Y, newest first
    comments: list[dict] = dc_field(default_factory=list)  # crm.timeline.comment.list, newest first
    products: list[dict] = dc_field(default_factory=list)  # crm.item.productrow.list productRows
    # lead|contact|company → ids findbycomm found (this lead left out); str keys: the
    # reuse key's encoder (rendered.digest) takes no others
    duplicates_found: dict[str, list[int]] = dc_field(default_factory=dict)
    duplicates_named: dict[str, list[dict]] = dc_field(default_factory=dict)  # readable items
    came: dict[str, list[dict]] = dc_field(default_factory=dict)  # deal|contact|company → items
    state: dict[str, str] = dc_field(default_factory=dict)


# --- Output (the view-model) -------------------------------------------------


@dataclass(frozen=True, slots=True)
class Value:
    """One displayed piece of a field.

    ``href`` is only ever ``http(s)://…``, ``tel:…`` or ``mailto:…``;
    ``b24_path`` is a portal path such as ``/crm/company/details/5/`` that the
    page opens in a Bitrix24 slider (``data-b24-path``).
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
        return self.href is not None and self.href.startswith(("http://", "https://"))


@dataclass(frozen=True, slots=True)
class Field:
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
    panels: Any = None  # card.panels.Panels: the lead's context and the header's time facts
    stages: tuple[Any, ...] = ()  # card.actions.StageChoice: where "move the stage" may go

    @property
    def is_empty(self) -> bool:
        """Nothing to show beyond the header (the stage row repeats the pill)."""
        return all(f.code == "STATUS_ID" for s in self.sections for f in s.fields)

    def section(self, key: str) -> Section | None:
        return next((s for s in self.sections if s.key == key), None)
