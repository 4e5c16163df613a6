"""Section "Comment": ``COMMENTS`` (BB-code or HTML) as plain text."""

from __future__ import annotations

from leadcard.card.context import Context
from leadcard.card.header import Header
from leadcard.card.model import Value
from leadcard.card.sections.base import Shown
from leadcard.card.values import rich_text_to_plain

CODES = frozenset(("COMMENTS",))


def build(ctx: Context, header: Header) -> Shown:
    comment = rich_text_to_plain(ctx.raw("COMMENTS"))
    section = ctx.section(
        "comments", [ctx.field("COMMENTS", [Value(text=comment, kind="multiline")])]
    )
    return Shown(section, CODES)
