"""Section "Marketing (UTM)": the five UTM parameters, each with its technical name."""

from __future__ import annotations

from leadcard.card.context import Context
from leadcard.card.header import Header
from leadcard.card.model import Value
from leadcard.card.sections.base import Shown

UTM_FIELDS = ("UTM_SOURCE", "UTM_MEDIUM", "UTM_CAMPAIGN", "UTM_CONTENT", "UTM_TERM")
CODES = frozenset(UTM_FIELDS)


def build(ctx: Context, header: Header) -> Shown:
    fields = [
        ctx.field(code, [Value(text=ctx.text(code))], hint=code.lower()) for code in UTM_FIELDS
    ]
    return Shown(ctx.section("marketing", fields), CODES)
