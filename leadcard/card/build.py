"""A raw ``crm.lead.get`` result + reference data + locale → :class:`~leadcard.card.model.Card`.

Owns the composition: the header first (:mod:`leadcard.card.header`), then every section
builder of :data:`leadcard.card.sections.SECTIONS` in order, each from the same explicit
inputs, and last "Show all fields" from the union of the codes the header and the sections
accounted for. Pure: no Flask, no I/O. The data layer asks
:func:`~leadcard.card.fields.user_ids_of`, :func:`~leadcard.card.fields.company_id_of` and
:func:`~leadcard.card.fields.contact_id_of` what to fetch and fills a ``ReferenceData``.
"""

from __future__ import annotations

from datetime import UTC, datetime

from leadcard.card import i18n
from leadcard.card.actions import stage_choices
from leadcard.card.context import Context
from leadcard.card.extra import extra_fields
from leadcard.card.header import HEADER_FIELDS, build_header
from leadcard.card.model import Card, ReferenceData
from leadcard.card.panels import build_panels
from leadcard.card.sections import SECTIONS
from leadcard.card.values import positive_id


def build_card(lead: dict, ref: ReferenceData, locale: str, now: datetime | None = None) -> Card:
    """Turn a raw ``crm.lead.get`` result into the card's view-model.

    ``locale`` is a Babel locale id — pass ``i18n.format_locale_for_lang(LANG)``
    so a ``br`` user gets English texts with Brazilian number and date formats.
    Unknown keys are ignored, empty values hidden, and whatever is filled but
    not placed in a section is listed in ``Card.extra``. ``now`` (aware; default: the
    current time) is what overdue to-dos and the header's time facts are measured from.
    """
    ctx = Context(lead, ref or ReferenceData(), locale or i18n.DEFAULT_LOCALE)
    header = build_header(ctx)
    shown = [build(ctx, header) for build in SECTIONS]
    accounted = HEADER_FIELDS.union(*(s.codes for s in shown))
    return Card(
        id=positive_id(ctx.raw("ID")),
        title=header.title,
        stage=header.stage,
        amount=header.amount,
        person=header.person,
        company=header.company,
        sections=tuple(s.section for s in shown if s.section is not None),
        extra=extra_fields(ctx, accounted),
        locale=ctx.locale,
        ui_locale=ctx.ui_locale,
        panels=build_panels(ctx, ctx.ref.context, now or datetime.now(UTC)),
        stages=stage_choices(ctx),
    )
