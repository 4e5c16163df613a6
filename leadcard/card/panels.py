"""The lead's context panels and the header's time facts, from a :class:`LeadContext`.

Owns what each panel shows and in which order — next steps (open activities, soonest deadline
first, overdue marked), history (the last completed activities and timeline comments),
possible duplicates (named where the viewer may read them, the rest only counted), products
(the lead's product rows in its currency) and what came of a converted lead — and the header's
age / time in stage / since the last activity. Pure: no Flask, no I/O; ``now`` is an input.

A panel whose read failed carries ``state`` "denied" or "failed" and no items: the template
says so in one line and every other panel still renders.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from leadcard.card import i18n
from leadcard.card.context import Context
from leadcard.card.i18n import N_
from leadcard.card.model import LeadContext, Value
from leadcard.card.values import person_name, positive_id, rich_text_to_plain, text

# crm.activity.list TYPE_ID (api-reference/crm/timeline/activities/activity-base/
# crm-activity-list.md: 1 meeting, 2 call, 3 task, 4 e-mail, 6 provider — a to-do is
# PROVIDER_ID CRM_TODO); DIRECTION 1 incoming, 2 outgoing.
_KINDS = {
    ("2", "1"): ("call_in", N_("Incoming call")),
    ("2", "2"): ("call_out", N_("Outgoing call")),
    ("2", ""): ("call", N_("Call")),
    ("4", "1"): ("email_in", N_("Incoming e-mail")),
    ("4", "2"): ("email_out", N_("Outgoing e-mail")),
    ("4", ""): ("email", N_("E-mail")),
    ("1", ""): ("meeting", N_("Meeting")),
    ("3", ""): ("task", N_("Task")),
}
_TODO = ("todo", N_("To-do"))
_OTHER = ("activity", N_("Activity"))
_TYPE_LABELS = {"lead": N_("Lead"), "deal": N_("Deal"), "contact": N_("Contact"),
                "company": N_("Company")}


@dataclass(frozen=True, slots=True)
class Activity:
    kind: str  # call_in|call_out|call|email_in|email_out|email|meeting|task|todo|activity
    kind_label: str
    subject: str
    when: str | None  # the deadline (open) or when it happened (done), in the viewer's locale
    relative: str | None  # "in 2 days" / "3 days ago"
    overdue: bool
    responsible: Value | None
    id: int | None = None  # the activity's ID: what "mark done" sends (open ones only)


@dataclass(frozen=True, slots=True)
class Comment:
    text: str
    when: str | None
    author: Value | None


@dataclass(frozen=True, slots=True)
class Linked:
    value: Value  # kind "crm", opens in the Bitrix24 slider
    type_label: str


@dataclass(frozen=True, slots=True)
class ProductRow:
    name: str
    quantity: str
    price: str | None
    total: str | None


@dataclass(frozen=True)
class Panels:
    next_steps: tuple[Activity, ...]
    next_steps_state: str | None
    history: tuple[Activity, ...]
    comments: tuple[Comment, ...]
    history_state: str | None
    duplicates: tuple[Linked, ...]
    duplicates_hidden: str | None  # "2 more you cannot open"
    duplicates_state: str | None
    products: tuple[ProductRow, ...]
    products_total: str | None
    products_state: str | None
    came: tuple[Linked, ...]
    came_hidden: bool
    came_state: str | None
    facts: tuple[tuple[str, str], ...]  # (label, "3 days") for the header

    @property
    def show_came(self) -> bool:
        return bool(self.came or self.came_state or self.came_hidden)


def build_panels(ctx: Context, data: LeadContext | None, now: datetime) -> Panels | None:
    """The panels of one card, or None when the view read no context (older callers)."""
    if data is None:
        return None
    state = data.state
    currency = text(ctx.raw("CURRENCY_ID"))
    products = tuple(_product(ctx, row, currency) for row in data.products)
    total = sum((i18n.to_decimal(r.get("price")) or 0) * (i18n.to_decimal(r.get("quantity")) or 0)
                for r in data.products)
    found = sum(len(ids) for ids in data.duplicates_found.values())
    named = tuple(_linked(ctx, entity, item)
                  for entity in ("lead", "contact", "company")
                  for item in data.duplicates_named.get(entity, []))
    hidden = max(found - len(named), 0)
    came = tuple(_linked(ctx, entity, item)
                 for entity in ("deal", "contact", "company")
                 for item in data.came.get(entity, []))
    converted = text(ctx.raw("STATUS_SEMANTIC_ID")) == "S"
    return Panels(
        next_steps=tuple(sorted((_activity(ctx, a, now, done=False) for a in data.open_activities),
                                key=lambda a: (not a.overdue, a.when is None))),
        next_steps_state=state.get("next_steps"),
        history=tuple(_activity(ctx, a, now, done=True) for a in data.done_activities),
        comments=tuple(_comment(ctx, c) for c in data.comments),
        history_state=state.get("history"),
        duplicates=named,
        duplicates_hidden=(i18n.translations(ctx.locale).ngettext(
            "%(num)d more you cannot open", "%(num)d more you cannot open", hidden)
            % {"num": hidden}) if hidden else None,
        duplicates_state=state.get("duplicates"),
        products=products,
        products_total=i18n.format_money(total, currency, ctx.locale) if products else None,
        products_state=state.get("products"),
        came=came,
        came_hidden=converted and not came and "came" not in state,
        came_state=state.get("came") if converted else None,
        facts=_facts(ctx, now),
    )


# --- items ------------------------------------------------------------------------------

def _activity(ctx: Context, raw: dict[str, Any], now: datetime, *, done: bool) -> Activity:
    if text(raw.get("PROVIDER_ID")) == "CRM_TODO":
        kind, label = _TODO
    else:
        type_id, direction = text(raw.get("TYPE_ID")), text(raw.get("DIRECTION"))
        kind, label = (_KINDS.get((type_id, direction)) or _KINDS.get((type_id, ""))
                       or _OTHER)
    moment_raw = raw.get("END_TIME") or raw.get("DEADLINE") if done else raw.get("DEADLINE")
    moment = i18n.parse_bitrix_datetime(moment_raw)
    overdue = (not done and isinstance(moment, datetime) and moment < now)
    relative = None
    if isinstance(moment, datetime):
        relative = i18n.format_relative(moment - now, ctx.locale)
    return Activity(
        kind=kind, kind_label=ctx._(label),
        subject=rich_text_to_plain(raw.get("SUBJECT")) or ctx._(label),
        when=i18n.format_datetime(moment_raw, ctx.locale) if moment else None,
        relative=relative, overdue=overdue,
        responsible=ctx.user_value(raw.get("RESPONSIBLE_ID")),
        id=_activity_id(raw.get("ID")),
    )


def _activity_id(raw: Any) -> int | None:
    value = positive_id(raw)
    return int(value) if value else None


def _comment(ctx: Context, raw: dict[str, Any]) -> Comment:
    # Comment text is the portal users' input: BB-code/HTML reduced to text, as for COMMENTS.
    return Comment(text=rich_text_to_plain(raw.get("COMMENT")),
                   when=i18n.format_datetime(raw.get("CREATED"), ctx.locale),
                   author=ctx.user_value(raw.get("AUTHOR_ID")))


def _linked(ctx: Context, entity: str, item: dict[str, Any]) -> Linked:
    item_id = positive_id(item.get("id")) or "0"
    name = (person_name({"NAME": item.get("name"), "LAST_NAME": item.get("lastName")})
            if entity == "contact" else "") or text(item.get("title"))
    value = ctx.crm_value(entity, item_id)
    if name:
        value = Value(text=name, kind="crm", b24_path=value.b24_path)
    return Linked(value=value, type_label=ctx._(_TYPE_LABELS[entity]))


def _product(ctx: Context, row: dict[str, Any], currency: str) -> ProductRow:
    price = i18n.to_decimal(row.get("price"))
    quantity = i18n.to_decimal(row.get("quantity"))
    total = price * quantity if price is not None and quantity is not None else None
    measure = text(row.get("measureName"))
    qty = i18n.format_number(quantity, ctx.locale) or ""
    return ProductRow(
        name=text(row.get("productName")) or ctx._("Product #%(id)s", id=text(row.get("productId"))),
        quantity=f"{qty} {measure}".strip(),
        price=i18n.format_money(price, currency, ctx.locale) if price is not None else None,
        total=i18n.format_money(total, currency, ctx.locale) if total is not None else None,
    )


def _facts(ctx: Context, now: datetime) -> tuple[tuple[str, str], ...]:
    """Age of the lead, time in its stage (MOVED_TIME), time since its last activity."""
    out = []
    for code, label in (("DATE_CREATE", N_("Age")), ("MOVED_TIME", N_("In this stage")),
                        ("LAST_ACTIVITY_TIME", N_("Last activity"))):
        moment = i18n.parse_bitrix_datetime(ctx.raw(code))
        if isinstance(moment, datetime):
            span = (i18n.format_relative(moment - now, ctx.locale) if code == "LAST_ACTIVITY_TIME"
                    else i18n.format_span(now - moment, ctx.locale))
            if span:
                out.append((ctx._(label), span))
    return tuple(out)
