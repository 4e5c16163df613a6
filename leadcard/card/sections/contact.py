"""Section "Contact person": position, birthday, phones, e-mails, websites, messengers,
links and the linked contact(s)."""

from __future__ import annotations

from leadcard.card import i18n
from leadcard.card.context import Context
from leadcard.card.fields import contact_id_of
from leadcard.card.header import Header
from leadcard.card.model import Field, Value
from leadcard.card.multifield import MULTIFIELDS, values_of
from leadcard.card.sections.base import Shown
from leadcard.card.values import positive_id

# HAS_* only say whether the lists above are filled.
CODES = frozenset(
    ("POST", "BIRTHDATE", *MULTIFIELDS, "CONTACT_ID", "CONTACT_IDS", "HAS_PHONE", "HAS_EMAIL",
     "HAS_IMOL")
)


def build(ctx: Context, header: Header) -> Shown:
    fields: list[Field | None] = [ctx.text_field("POST")]
    birth = i18n.format_date(ctx.raw("BIRTHDATE"), ctx.locale)
    fields.append(ctx.field("BIRTHDATE", [Value(text=birth, kind="date")] if birth else []))
    for type_id in MULTIFIELDS:
        fields.append(ctx.field(type_id, values_of(ctx, type_id)))
    contact_ids = [contact_id_of(ctx.lead)]
    more = ctx.raw("CONTACT_IDS")
    contact_ids += [positive_id(i) for i in more] if isinstance(more, list) else []
    unique = list(dict.fromkeys(cid for cid in contact_ids if cid))
    if unique:
        label = ctx._("Linked contact") if len(unique) == 1 else ctx.label("CONTACT_IDS")
        values = [ctx.crm_value("contact", cid) for cid in unique]
        fields.append(ctx.field("CONTACT_ID", values, label=label))
    return Shown(ctx.section("contact", fields), CODES)
