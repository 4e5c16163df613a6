"""The lead's context panels: which batch sub-commands read them, and what came back.

Owns the *asking* for issue 12's panels — next steps, history, duplicates, products, what came
of a converted lead — as sub-commands that ride in the view's one ``batch`` beside
``crm.lead.get`` (:mod:`leadcard.flows.lead_reader`), and sorting their answers into a
:class:`~leadcard.card.model.LeadContext` for the card. Everything here is read with the
viewer's own token on every view: activities, comments, product rows and duplicates change
at the portal and differ per user's rights, so none of it is cached (docs/DESIGN.md,
"The lead's context").

Duplicates need the lead's phones and e-mails before ``crm.duplicate.findbycomm`` can ask, and
the names of what it found need its answer: both come from batch back-references
(``$result[lead][PHONE][0][VALUE]``, ``$result[dup_phone][LEAD][0]``; settings/how-to-call-rest-api/
batch.md), so the whole chain is still one request. A back-reference to a value that is not
there resolves to an empty string, which Bitrix24 leaves out of a list filter.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import lru_cache
from types import MappingProxyType
from typing import Any

from leadcard.bitrix24.rest import php_query
from leadcard.card.model import LeadContext
from leadcard.core import errors

# How many of the lead's phones / e-mails are looked up (findbycomm takes at most 20 values).
COMM_VALUES = 5
# How many ids per entity type and communication type get a name (the rest are counted).
NAMED_PER_TYPE = 10
# Panels show at most this many (the bounds).
HISTORY_ACTIVITIES = 5
HISTORY_COMMENTS = 3

_ACTIVITY_SELECT = ["ID", "TYPE_ID", "PROVIDER_ID", "PROVIDER_TYPE_ID", "SUBJECT", "DEADLINE",
                    "START_TIME", "END_TIME", "COMPLETED", "RESPONSIBLE_ID", "DIRECTION", "CREATED"]
# The panels' people (responsible users, comment authors), by back-reference: asked in
# every view's batch, so a new responsible never costs a second request.
OPEN_REFS = 5
USER_REFS = ([f"$result[ctx_open][{i}][RESPONSIBLE_ID]" for i in range(OPEN_REFS)]
             + [f"$result[ctx_done][{i}][RESPONSIBLE_ID]" for i in range(HISTORY_ACTIVITIES)]
             + [f"$result[ctx_comments][{i}][AUTHOR_ID]" for i in range(HISTORY_COMMENTS)])
# findbycomm's answer keys → the card's entity names; crm.item.list entityTypeId of each.
_DUP_TYPES = {"LEAD": "lead", "CONTACT": "contact", "COMPANY": "company"}
ENTITY_TYPE_IDS = {"lead": 1, "deal": 2, "contact": 3, "company": 4}
_CAME_TYPES = ("deal", "contact", "company")


def context_commands(lead_id: int) -> dict[str, tuple[str, dict[str, Any]]]:
    """The panels' batch sub-commands for lead ``lead_id`` (they follow the ``lead`` command,
    whose phones and e-mails they reference)."""
    owner = {"OWNER_TYPE_ID": 1, "OWNER_ID": lead_id}
    commands: dict[str, tuple[str, dict[str, Any]]] = {
        # api-reference/crm/timeline/activities/activity-base/crm-activity-list.md
        "ctx_open": ("crm.activity.list", {
            "filter": {**owner, "COMPLETED": "N"}, "order": {"DEADLINE": "ASC"},
            "select": _ACTIVITY_SELECT}),
        "ctx_done": ("crm.activity.list", {
            "filter": {**owner, "COMPLETED": "Y"}, "order": {"END_TIME": "DESC"},
            "select": _ACTIVITY_SELECT}),
        # api-reference/crm/timeline/comments/crm-timeline-comment-list.md
        "ctx_comments": ("crm.timeline.comment.list", {
            "filter": {"ENTITY_ID": lead_id, "ENTITY_TYPE": "lead"}, "order": {"CREATED": "DESC"},
            "select": ["ID", "CREATED", "AUTHOR_ID", "COMMENT"]}),
        # api-reference/crm/universal/product-rows/crm-item-productrow-list.md
        # (crm.lead.productrows.get is deprecated)
        "ctx_products": ("crm.item.productrow.list", {
            "filter": {"=ownerType": "L", "=ownerId": lead_id}}),
    }
    # api-reference/crm/duplicates/crm-duplicate-find-by-comm.md: ids only, per type.
    for kind in ("PHONE", "EMAIL"):
        commands[f"ctx_dup_{kind.lower()}"] = ("crm.duplicate.findbycomm", {
            "type": kind,
            "values": [f"$result[lead][{kind}][{i}][VALUE]" for i in range(COMM_VALUES)]})
    # Names of what findbycomm found, as the viewer may read them (crm.item.list leaves out
    # the rest; api-reference/crm/universal/crm-item-list.md, "@id" = in the list).
    for type_name, entity in _DUP_TYPES.items():
        refs = [f"$result[ctx_dup_{kind}][{type_name}][{i}]"
                for kind in ("phone", "email") for i in range(NAMED_PER_TYPE)]
        commands[f"ctx_dupnames_{entity}"] = ("crm.item.list", {
            "entityTypeId": ENTITY_TYPE_IDS[entity], "filter": {"@id": refs},
            "select": ["id", "title", "name", "lastName"]})
    # Names of the people the panels show (user_brief scope; api-reference/user/user-get.md).
    commands["ctx_users"] = ("user.get", {"FILTER": {"ID": USER_REFS}})
    # What a converted lead became: every deal, contact and company has a leadId
    # (api-reference/crm/universal/object-fields.md).
    for key in _CAME_TYPES:
        commands[f"ctx_came_{key}"] = ("crm.item.list", {
            "entityTypeId": ENTITY_TYPE_IDS[key], "filter": {"leadId": lead_id},
            "select": ["id", "title", "name", "lastName", "stageId", "opportunity", "currencyId"]})
    return commands


@lru_cache(maxsize=4096)
def encoded_context_commands(lead_id: int) -> Mapping[str, str]:
    """:func:`context_commands` as the ``method?query`` strings a batch sends, kept per lead.

    Encoding 16 nested sub-commands costs ~0.9 ms of CPU per view (php_query), ~1.7 % of a
    warm view at the benchmark's 50 ms; they depend on the lead id alone, so they are encoded
    once per lead and process (a read-only view; ~6 KB of text per lead, so 4096 leads stay
    under ~30 MB with the dict overhead)."""
    return MappingProxyType({key: f"{method}?{php_query(params)}"
                             for key, (method, params) in context_commands(lead_id).items()})


def collect(results: dict[str, Any], failures: dict[str, errors.LeadCardError],
            lead: dict[str, Any]) -> LeadContext:
    """The panels' answers sorted out of one batch result; a failed sub-command marks its
    panel ("denied" when Bitrix24 said the viewer may not, else "failed") and nothing else."""
    lead_id = _int(lead.get("ID")) or 0
    state: dict[str, str] = {}

    def panel(name: str, *keys: str) -> None:
        for key in keys:
            err = failures.get(key)
            if err is not None:
                denied = isinstance(err, (errors.AccessDenied, errors.InsufficientScope))
                state[name] = "denied" if denied else "failed"
                return

    panel("next_steps", "ctx_open")
    panel("history", "ctx_done", "ctx_comments")
    panel("products", "ctx_products")
    # A lead without phones (or e-mails) sends findbycomm no values, which it refuses: that
    # is "no duplicates by phone", not a failure.
    panel("duplicates", *(f"ctx_dup_{kind.lower()}" for kind in ("PHONE", "EMAIL")
                          if _has_values(lead.get(kind))))
    panel("came", *(f"ctx_came_{k}" for k in _CAME_TYPES))

    found: dict[str, set[int]] = {entity: set() for entity in _DUP_TYPES.values()}
    for kind in ("phone", "email"):
        answer = results.get(f"ctx_dup_{kind}")
        if isinstance(answer, dict):  # nothing found is an empty *list*
            for type_name, entity in _DUP_TYPES.items():
                found[entity].update(_ints(answer.get(type_name)))
    found["lead"].discard(lead_id)  # the lead itself
    named: dict[str, list[dict]] = {}
    for entity in _DUP_TYPES.values():
        items = _items(results.get(f"ctx_dupnames_{entity}"))
        named[entity] = [i for i in items if _int(i.get("id")) in found[entity]]
    came = {key: _items(results.get(f"ctx_came_{key}")) for key in _CAME_TYPES}
    products = results.get("ctx_products")
    return LeadContext(
        open_activities=_list(results.get("ctx_open")),
        done_activities=_list(results.get("ctx_done"))[:HISTORY_ACTIVITIES],
        comments=_list(results.get("ctx_comments"))[:HISTORY_COMMENTS],
        products=_list(products.get("productRows")) if isinstance(products, dict) else [],
        duplicates_found={entity: sorted(ids) for entity, ids in found.items()},
        duplicates_named=named,
        came=came,
        state=state,
    )


def user_ids(context: LeadContext) -> set[str]:
    """Users the panels name: responsible for an activity, authors of comments."""
    ids = {str(a.get("RESPONSIBLE_ID")) for a in
           (*context.open_activities, *context.done_activities)}
    ids |= {str(c.get("AUTHOR_ID")) for c in context.comments}
    return {i for i in ids if i.isdigit() and i != "0"}


def asked_user_ids(context: LeadContext) -> set[str]:
    """The panels' people the batch's ``ctx_users`` asked about (USER_REFS reach that far)."""
    return user_ids(LeadContext(open_activities=context.open_activities[:OPEN_REFS],
                                done_activities=context.done_activities[:HISTORY_ACTIVITIES],
                                comments=context.comments[:HISTORY_COMMENTS]))


def panel_users(results: dict[str, Any]) -> list[dict]:
    """The ``ctx_users`` answer: user.get items of the people the panels show."""
    return _list(results.get("ctx_users"))


def _has_values(multifield: Any) -> bool:
    return any(isinstance(m, dict) and str(m.get("VALUE") or "").strip()
               for m in (multifield if isinstance(multifield, list) else [])[:COMM_VALUES])


def _list(value: Any) -> list[dict]:
    if isinstance(value, dict):
        value = list(value.values())
    return [v for v in value if isinstance(v, dict)] if isinstance(value, list) else []


def _items(value: Any) -> list[dict]:
    return _list(value.get("items")) if isinstance(value, dict) else []


def _int(value: Any) -> int | None:
    try:
        return int(str(value))
    except ValueError:
        return None


def _ints(value: Any) -> set[int]:
    return {i for i in (_int(v) for v in (value if isinstance(value, list) else [])) if i}
