"""Section "Stage and source": the stage (with its group when the name does not say it),
the stage details, the source and its details, and "repeat lead"."""

from __future__ import annotations

from leadcard.card.context import Context
from leadcard.card.header import Header
from leadcard.card.model import Field, Value
from leadcard.card.sections.base import Shown
from leadcard.card.values import flag

CODES = frozenset(
    ("STATUS_ID", "STATUS_SEMANTIC_ID", "STATUS_DESCRIPTION", "SOURCE_ID", "SOURCE_DESCRIPTION")
)


def build(ctx: Context, header: Header) -> Shown:
    stage = header.stage
    fields: list[Field | None] = []
    if stage:
        note = (
            stage.semantic_label
            if stage.semantic_label.casefold() != stage.name.casefold()
            else None
        )
        fields.append(ctx.field("STATUS_ID", [Value(text=stage.name, note=note)]))
    fields.append(ctx.text_field("STATUS_DESCRIPTION", multiline=True))
    source = _source_value(ctx)
    fields.append(ctx.field("SOURCE_ID", [source] if source else []))
    fields.append(ctx.text_field("SOURCE_DESCRIPTION", multiline=True))
    codes = CODES
    if flag(ctx.raw("IS_RETURN_CUSTOMER")):
        fields.append(ctx.field("IS_RETURN_CUSTOMER", [Value(text=ctx._("Yes"), kind="flag")]))
        codes = CODES | {"IS_RETURN_CUSTOMER"}
    # else "No" is only worth a line in "all fields".
    return Shown(ctx.section("stage", fields), codes)


def _source_value(ctx: Context) -> Value | None:
    code = ctx.text("SOURCE_ID")
    if not code:
        return None
    return Value(text=ctx.status_name("SOURCE", code) or code)
