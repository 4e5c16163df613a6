"""Section "Deal value": amount, currency, and whether the amount was typed or calculated."""

from __future__ import annotations

from leadcard.card.context import Context
from leadcard.card.header import Header
from leadcard.card.model import Value
from leadcard.card.sections.base import Shown
from leadcard.card.values import flag

CODES = frozenset(("OPPORTUNITY", "CURRENCY_ID", "IS_MANUAL_OPPORTUNITY"))


def build(ctx: Context, header: Header) -> Shown:
    amount = header.amount
    if not amount:
        # 0.00 is Bitrix24's "not filled": no section, and the fields stay in "all fields".
        return Shown(None, frozenset())
    currency = ctx.currency_value(ctx.text("CURRENCY_ID"))
    manual = flag(ctx.raw("IS_MANUAL_OPPORTUNITY"))
    calc = None
    if manual is not None:
        calc = Value(
            text=ctx._("Entered manually") if manual else ctx._("Calculated from products")
        )
    section = ctx.section(
        "deal",
        [
            ctx.field("OPPORTUNITY", [Value(text=amount, kind="money")]),
            ctx.field("CURRENCY_ID", [currency] if currency else []),
            ctx.field("IS_MANUAL_OPPORTUNITY", [calc], label=ctx._("How the amount is set")),
        ],
    )
    return Shown(section, CODES)
