"""REST methods for a lead's context: activities, timeline comments, duplicates, product rows
and items (what a converted lead became, and names of duplicates).

Owns their parameters, rights and ``result`` shapes; registered in :data:`.rest.METHODS` when
this module is imported (``portal_app`` does). Rights follow the parent record: a user reads
an activity, comment or product row when they may read its lead (``Portal.can_read``);
activities have no rights of their own (api-reference/crm/timeline/activities/activity-base/
crm-activity-list.md: "taking the current user's permissions into account"). List methods leave
out what the caller may not read, as Bitrix24's do.
"""

from __future__ import annotations

import copy
import re
from typing import Any

from .envelope import RestError, crm_error
from .params import as_list, get_ci
from .rest import Call, Result, method

PAGE = 50  # list methods page by 50 (settings/how-to-call-rest-api/list-methods-pecularities.md)
_ENTITY_TYPES = {1: "leads", 2: "deals", 3: "contacts", 4: "companies"}
_DUP_TYPES = {"LEAD": "leads", "CONTACT": "contacts", "COMPANY": "companies"}


# --- shared helpers ------------------------------------------------------------------------

def _filter(call: Call) -> dict:
    flt = get_ci(call.params, "filter", default={}) or {}
    if not isinstance(flt, dict):
        raise RestError("INVALID_ARG_VALUE", "Invalid filter", 400)
    return flt


def _key(raw: str) -> tuple[str, str]:
    """Split a filter key into its operator prefix and field: ``"=ownerType"`` → ("=", "ownerType")."""
    m = re.match(r"^(>=|<=|!=|@|=|>|<|!)?(.+)$", raw)
    assert m is not None
    return m.group(1) or "", m.group(2)


def _matches(value: Any, op: str, wanted: Any) -> bool:
    if op in ("@", "") and isinstance(wanted, (list, dict)):
        return str(value) in {str(w) for w in as_list(wanted) if str(w) != ""}
    if op in ("", "="):
        return str(value) == str(wanted)
    if op in ("!", "!="):
        return str(value) != str(wanted)
    if op in (">", ">=", "<", "<="):
        a, b = str(value), str(wanted)
        return {">": a > b, ">=": a >= b, "<": a < b, "<=": a <= b}[op]
    return False


def _page(call: Call, rows: list) -> Result:
    start = get_ci(call.params, "start", default=0)
    try:
        start = max(int(start), 0)
    except (TypeError, ValueError):
        start = 0
    chunk = rows[start:start + PAGE]
    extra: dict[str, Any] = {"total": len(rows)}
    if start + PAGE < len(rows):
        extra["next"] = start + PAGE
    return chunk, extra


def _order(rows: list[dict], order: Any, default: tuple[str, str]) -> list[dict]:
    pairs = list(order.items()) if isinstance(order, dict) and order else [default]
    for field, direction in reversed(pairs):
        desc = str(direction).upper() == "DESC"
        rows.sort(key=lambda r, f=str(field): (r.get(f) is None, str(r.get(f) or "")), reverse=desc)
    return rows


def _lead_readable(call: Call, lead_id: Any) -> bool:
    try:
        lead = call.portal.leads.get(int(str(lead_id)))
    except ValueError:
        return False
    return lead is not None and call.portal.can_read(call.user_id, lead)


# --- activities ----------------------------------------------------------------------------

@method("crm.activity.list", {"crm"})
def crm_activity_list(call: Call) -> Result:
    """api-reference/crm/timeline/activities/activity-base/crm-activity-list.md: filter on any
    field (OWNER_TYPE_ID, OWNER_ID, COMPLETED, PROVIDER_ID, DEADLINE…), order (default START_TIME
    ascending), select, 50 per page."""
    flt = _filter(call)
    rows = []
    for activity in call.portal.activities:
        if not all(_matches(activity.get(_key(k)[1]), _key(k)[0], v) for k, v in flt.items()):
            continue
        if activity["OWNER_TYPE_ID"] == "1" and not _lead_readable(call, activity["OWNER_ID"]):
            continue
        rows.append(activity)
    rows = _order(list(rows), get_ci(call.params, "order"), ("START_TIME", "ASC"))
    select = [str(s) for s in as_list(get_ci(call.params, "select"))]
    if select and "*" not in select:
        rows = [{k: v for k, v in r.items() if k in select or k == "ID"} for r in rows]
    return _page(call, copy.deepcopy(rows))


# --- timeline comments ---------------------------------------------------------------------

@method("crm.timeline.comment.list", {"crm"})
def crm_timeline_comment_list(call: Call) -> Result:
    """api-reference/crm/timeline/comments/crm-timeline-comment-list.md: ENTITY_ID and
    ENTITY_TYPE are required; a record the user may not read → "Access denied" (empty code)."""
    flt = _filter(call)
    entity_id = get_ci(flt, "ENTITY_ID", "=ENTITY_ID")
    entity_type = str(get_ci(flt, "ENTITY_TYPE", "=ENTITY_TYPE", default="") or "").lower()
    if not entity_id or not entity_type:
        raise crm_error("ENTITY_ID and ENTITY_TYPE are required in the filter.")
    if entity_type == "lead" and not _lead_readable(call, entity_id):
        raise crm_error("Access denied")
    rows = [c for c in call.portal.comments
            if str(c["ENTITY_ID"]) == str(entity_id) and c["ENTITY_TYPE"] == entity_type]
    rows = _order(list(rows), get_ci(call.params, "order"), ("ID", "ASC"))
    return _page(call, copy.deepcopy(rows))


# --- duplicates ----------------------------------------------------------------------------

def _digits(phone: str) -> str:
    # "The phone extension is ignored" (api-reference/crm/duplicates/crm-duplicate-find-by-comm.md)
    return re.sub(r"\D", "", phone.split(";")[0].split(" ext")[0])


@method("crm.duplicate.findbycomm", {"crm"})
def crm_duplicate_findbycomm(call: Call) -> Result:
    """api-reference/crm/duplicates/crm-duplicate-find-by-comm.md: ``type`` PHONE|EMAIL,
    ``values`` (at most 20), optional ``entity_type``. IDs only, whatever the caller may read;
    nothing found → an empty array."""
    kind = str(get_ci(call.params, "type", default="") or "").upper()
    if kind not in ("PHONE", "EMAIL"):
        raise RestError("", "Communication type is not defined or invalid.", 400)
    values = [str(v).strip() for v in as_list(get_ci(call.params, "values")) if str(v).strip()]
    if len(as_list(get_ci(call.params, "values"))) > 20:
        raise RestError("", "Too many values. Maximum allowed: 20.", 400)
    if not values:
        raise RestError("", "Communication values are not defined.", 400)
    wanted = {_digits(v) if kind == "PHONE" else v.lower() for v in values}
    wanted.discard("")
    only = str(get_ci(call.params, "entity_type", default="") or "").upper()
    found: dict[str, list[int]] = {}
    for type_name, attr in _DUP_TYPES.items():
        if only and only != type_name:
            continue
        for rec_id, rec in sorted(getattr(call.portal, attr).items()):
            comms = [str(m.get("VALUE", "")) for m in rec.get(kind) or [] if isinstance(m, dict)]
            keys = {_digits(c) if kind == "PHONE" else c.lower() for c in comms}
            if keys & wanted:
                found.setdefault(type_name, []).append(int(rec_id))
    return (found or []), {}


# --- product rows ----------------------------------------------------------------------------

@method("crm.item.productrow.list", {"crm"})
def crm_item_productrow_list(call: Call) -> Result:
    """api-reference/crm/universal/product-rows/crm-item-productrow-list.md: the filter must
    hold ``=ownerType`` (short code, L for a lead) and ``=ownerId``; answers
    ``{"productRows": [...]}``."""
    flt = _filter(call)
    owner_type = get_ci(flt, "=ownerType")
    owner_id = get_ci(flt, "=ownerId")
    if not owner_type or not owner_id:
        raise RestError("INVALID_ARG_VALUE", "Filter must contain =ownerType and =ownerId", 400)
    if str(owner_type).upper() != "L":
        return {"productRows": []}, {"total": 0}
    if not _lead_readable(call, owner_id):
        raise RestError("ACCESS_DENIED", "Access denied.", 403)
    rows = call.portal.product_rows.get(int(str(owner_id)), [])
    rows = sorted(rows, key=lambda r: (r["sort"], r["id"]))
    return {"productRows": copy.deepcopy(rows)}, {"total": len(rows)}


# --- items: leads, deals, contacts, companies -------------------------------------------------

def _camel(rec: dict, type_id: int) -> dict:
    """The crm.item shape (api-reference/crm/universal/object-fields.md): camelCase, ids as
    integers."""
    item = {"id": int(rec["ID"]), "title": rec.get("TITLE") or "", "assignedById": int(rec["ASSIGNED_BY_ID"]),
            "opened": rec.get("OPENED", "N"), "createdTime": rec.get("DATE_CREATE"),
            "leadId": int(rec["LEAD_ID"]) if rec.get("LEAD_ID") else None}
    if type_id in (1, 3):
        item.update({"name": rec.get("NAME") or "", "lastName": rec.get("LAST_NAME") or ""})
    if type_id == 2:
        item.update({"stageId": rec.get("STAGE_ID"), "opportunity": float(rec.get("OPPORTUNITY") or 0),
                     "currencyId": rec.get("CURRENCY_ID")})
    return item


_ITEM_FIELDS = {"id": "ID", "leadId": "LEAD_ID", "assignedById": "ASSIGNED_BY_ID", "title": "TITLE"}


@method("crm.item.list", {"crm"})
def crm_item_list(call: Call) -> Result:
    """api-reference/crm/universal/crm-item-list.md: ``entityTypeId`` required, camelCase
    filter keys with prefixes (``@id`` for a list, ``leadId``), 50 per page, ``{"items": [...]}``.
    Items the caller may not read are left out."""
    try:
        type_id = int(str(get_ci(call.params, "entityTypeId", default="")))
    except ValueError:
        raise RestError("NOT_FOUND", "Smart process not found", 400) from None
    attr = _ENTITY_TYPES.get(type_id)
    if attr is None:
        raise RestError("NOT_FOUND", "Smart process not found", 400)
    flt = _filter(call)
    rows = []
    for _rid, rec in sorted(getattr(call.portal, attr).items()):
        ok = True
        for raw, wanted in flt.items():
            op, name = _key(str(raw))
            column = _ITEM_FIELDS.get(name)
            if column is None:
                raise RestError("INVALID_ARG_VALUE", f"Unknown filter field {name}", 400)
            if not _matches(rec.get(column), op, wanted):
                ok = False
                break
        if ok and call.portal.can_read(call.user_id, rec):
            rows.append(_camel(rec, type_id))
    chunk, extra = _page(call, rows)
    return {"items": chunk}, extra


@method("crm.deal.get", {"crm"})
def crm_deal_get(call: Call) -> Result:
    """api-reference/crm/deals/crm-deal-get.md (legacy shape, UPPER_CASE)."""
    raw = get_ci(call.params, "id")
    try:
        rec = call.portal.deals.get(int(str(raw)))
    except ValueError:
        raise crm_error("ID is not defined or invalid.") from None
    if rec is None:
        raise crm_error("Not found")
    if not call.portal.can_read(call.user_id, rec):
        raise crm_error("Access denied")
    return copy.deepcopy(rec), {}


# --- legacy list methods: crm.lead.list, crm.contact.list, crm.company.list, crm.deal.list ------

def _legacy_list(call: Call, records: dict) -> Result:
    """api-reference/crm/deals/crm-deal-list.md (and the lead/contact/company pages): UPPER_CASE
    filter keys with prefixes (``ID`` may be an array, ``LEAD_ID``), ``select`` (ID always
    answered), ``order``, 50 per page; records the caller may not read are left out."""
    flt = _filter(call)
    rows = []
    for _rid, rec in sorted(records.items()):
        if not all(_matches(rec.get(_key(str(k))[1]), _key(str(k))[0], v) for k, v in flt.items()):
            continue
        if call.portal.can_read(call.user_id, rec):
            rows.append(rec)
    rows = _order(list(rows), get_ci(call.params, "order"), ("ID", "ASC"))
    if get_ci(call.params, "order") in (None, {}, []):
        rows.sort(key=lambda r: int(r["ID"]))
    select = [str(s) for s in as_list(get_ci(call.params, "select"))]
    if select and "*" not in select:
        rows = [{k: v for k, v in r.items() if k in select or k == "ID"} for r in rows]
    return _page(call, copy.deepcopy(rows))


@method("crm.lead.list", {"crm"})
def crm_lead_list(call: Call) -> Result:
    return _legacy_list(call, call.portal.leads)


@method("crm.contact.list", {"crm"})
def crm_contact_list(call: Call) -> Result:
    return _legacy_list(call, call.portal.contacts)


@method("crm.company.list", {"crm"})
def crm_company_list(call: Call) -> Result:
    return _legacy_list(call, call.portal.companies)


@method("crm.deal.list", {"crm"})
def crm_deal_list(call: Call) -> Result:
    return _legacy_list(call, call.portal.deals)
