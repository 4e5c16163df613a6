"""Section "Responsible and history": who is responsible, and who created, modified, moved
and last worked on the lead, and when; when it was closed."""

from __future__ import annotations

from leadcard.card import i18n
from leadcard.card.context import Context
from leadcard.card.header import Header
from leadcard.card.i18n import N_
from leadcard.card.model import Value
from leadcard.card.sections.base import Shown

# (user field, date field, row label): a row shows the date, then who.
ROWS = (
    ("ASSIGNED_BY_ID", None, N_("Responsible")),
    ("CREATED_BY_ID", "DATE_CREATE", N_("Created")),
    ("MODIFY_BY_ID", "DATE_MODIFY", N_("Modified")),
    ("MOVED_BY_ID", "MOVED_TIME", N_("Stage changed")),
    ("LAST_ACTIVITY_BY", "LAST_ACTIVITY_TIME", N_("Last activity")),
    (None, "DATE_CLOSED", N_("Closed")),
)
CODES = frozenset(code for row in ROWS for code in row[:2] if code)


def build(ctx: Context, header: Header) -> Shown:
    fields = []
    for user_code, date_code, label in ROWS:
        values: list[Value | None] = []
        if date_code:
            when = i18n.format_datetime(ctx.raw(date_code), ctx.locale) or ctx.text(date_code)
            values.append(Value(text=when, kind="date") if when else None)
        if user_code:
            values.append(ctx.user_value(ctx.raw(user_code)))
        fields.append(ctx.field(user_code or date_code or "", values, label=ctx._(label)))
    return Shown(ctx.section("people", fields), CODES)
