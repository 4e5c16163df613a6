"""The card's header: title, stage pill, amount, person and company name.

Owns :class:`Header` and :func:`build_header`. Two sections repeat a header value in their
rows (the deal section the amount, the stage section the stage), so the header is built
first and handed to every section builder as an explicit input.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from leadcard.card import i18n
from leadcard.card.context import Context
from leadcard.card.fields import SEMANTIC_LABELS, company_id_of
from leadcard.card.model import Stage
from leadcard.card.values import positive_id, text, text_color_on, valid_color

# Shown in the header (the title and the person's name), so never again in "all fields".
HEADER_FIELDS = frozenset(("TITLE", "HONORIFIC", "NAME", "SECOND_NAME", "LAST_NAME"))

# crm.status.list EXTRA.SEMANTICS → the stage group letter.
_SEMANTIC_FROM_EXTRA = {"process": "P", "success": "S", "failure": "F", "apology": "F"}


@dataclass(frozen=True)
class Header:
    title: str
    stage: Stage | None
    amount: str | None  # formatted money; None for Bitrix24's "not filled" 0.00
    person: str | None
    company: str | None


def build_header(ctx: Context) -> Header:
    """The header values of ``ctx``'s lead."""
    return Header(
        title=_title(ctx),
        stage=_stage(ctx),
        amount=_amount(ctx),
        person=_person(ctx),
        company=_company_name(ctx),
    )


def _title(ctx: Context) -> str:
    title = ctx.text("TITLE")
    if title:
        return title
    lead_id = positive_id(ctx.raw("ID"))
    return ctx._("Lead #%(id)s", id=lead_id) if lead_id else ctx._("Untitled lead")


def _stage(ctx: Context) -> Stage | None:
    code = ctx.text("STATUS_ID")
    if not code:
        return None
    item = ctx.status_item("STATUS", code) or {}
    extra_raw = item.get("EXTRA")
    extra = extra_raw if isinstance(extra_raw, Mapping) else {}
    semantic = ctx.text("STATUS_SEMANTIC_ID").upper()
    if semantic not in SEMANTIC_LABELS:
        semantic = text(item.get("SEMANTICS")).upper()
    if semantic not in SEMANTIC_LABELS:
        semantic = _SEMANTIC_FROM_EXTRA.get(text(extra.get("SEMANTICS")).lower(), "P")
    color = valid_color(item.get("COLOR")) or valid_color(extra.get("COLOR"))
    return Stage(
        code=code,
        name=text(item.get("NAME")) or code,
        semantic=semantic,
        semantic_label=ctx._(SEMANTIC_LABELS[semantic]),
        color=color,
        text_color=text_color_on(color) if color else None,
    )


def _amount(ctx: Context) -> str | None:
    amount = i18n.to_decimal(ctx.raw("OPPORTUNITY"))
    if not amount:
        return None
    return i18n.format_money(amount, ctx.text("CURRENCY_ID"), ctx.locale)


def _person(ctx: Context) -> str | None:
    honorific_code = ctx.text("HONORIFIC")
    honorific = ctx.status_name("HONORIFIC", honorific_code) if honorific_code else None
    name = " ".join(
        p for p in (ctx.text("NAME"), ctx.text("SECOND_NAME"), ctx.text("LAST_NAME")) if p
    )
    if not name:
        return None
    return f"{honorific} {name}" if honorific else name


def _company_name(ctx: Context) -> str | None:
    title = ctx.text("COMPANY_TITLE")
    if title:
        return title
    company_id = company_id_of(ctx.lead)
    company = ctx.ref.companies.get(company_id) if company_id else None
    return text(company.get("TITLE")) or None if isinstance(company, Mapping) else None
