"""Section "Company": the company name typed into the lead and/or the linked company."""

from __future__ import annotations

from leadcard.card.context import Context
from leadcard.card.fields import company_id_of
from leadcard.card.header import Header
from leadcard.card.model import Field, Value
from leadcard.card.sections.base import Shown

CODES = frozenset(("COMPANY_TITLE", "COMPANY_ID"))


def build(ctx: Context, header: Header) -> Shown:
    title = ctx.text("COMPANY_TITLE")
    company_id = company_id_of(ctx.lead)
    fields: list[Field | None] = []
    if company_id:
        linked = ctx.crm_value("company", company_id)
        if title and title != linked.text:
            fields.append(ctx.field("COMPANY_TITLE", [Value(text=title)]))
            fields.append(ctx.field("COMPANY_ID", [linked], label=ctx._("Linked company")))
        else:
            fields.append(ctx.field("COMPANY_ID", [linked]))
    elif title:
        fields.append(ctx.field("COMPANY_TITLE", [Value(text=title)]))
    return Shown(ctx.section("company", fields), CODES)
