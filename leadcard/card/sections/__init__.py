"""The card's sections, one module each, in the order the card shows them.

A new section is a new module with a ``build(ctx, header) -> Shown`` function
(:mod:`leadcard.card.sections.base`) plus one line in :data:`SECTIONS`.
"""

from __future__ import annotations

from leadcard.card.sections import (
    address,
    comments,
    company,
    contact,
    custom,
    deal,
    marketing,
    people,
    stage,
)
from leadcard.card.sections.base import SectionBuilder, Shown

SECTIONS: tuple[SectionBuilder, ...] = (
    contact.build,
    company.build,
    deal.build,
    stage.build,
    comments.build,
    address.build,
    marketing.build,
    people.build,
    custom.build,
)

__all__ = ["SECTIONS", "SectionBuilder", "Shown"]
