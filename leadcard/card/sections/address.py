"""Section "Address": the lead's address fields as one postal block."""

from __future__ import annotations

from leadcard.card.context import Context
from leadcard.card.header import Header
from leadcard.card.model import Value
from leadcard.card.sections.base import Shown

CODES = frozenset(
    (
        "ADDRESS",
        "ADDRESS_2",
        "ADDRESS_POSTAL_CODE",
        "ADDRESS_CITY",
        "ADDRESS_REGION",
        "ADDRESS_PROVINCE",
        "ADDRESS_COUNTRY",
        "ADDRESS_COUNTRY_CODE",
    )
)


def build(ctx: Context, header: Header) -> Shown:
    t = ctx.text
    city_line = " ".join(p for p in (t("ADDRESS_POSTAL_CODE"), t("ADDRESS_CITY")) if p)
    region_line = ", ".join(p for p in (t("ADDRESS_REGION"), t("ADDRESS_PROVINCE")) if p)
    country = t("ADDRESS_COUNTRY") or t("ADDRESS_COUNTRY_CODE")
    lines = [
        line for line in (t("ADDRESS"), t("ADDRESS_2"), city_line, region_line, country) if line
    ]
    section = ctx.section(
        "address", [ctx.field("ADDRESS", [Value(text="\n".join(lines), kind="multiline")])]
    )
    return Shown(section, CODES)
