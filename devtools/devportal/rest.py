"""The portal's REST methods (``/rest/<method>``), one function per method.

Owns method semantics: parameter validation, permissions, scopes and the exact
``result`` shapes; ``execute`` is shared by direct calls and ``batch`` sub-commands.
HTTP concerns (auth extraction, faults, rate limit, envelopes) live in
``portal_app``; batch mechanics in ``batch``.
"""

from __future__ import annotations

import copy
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from . import data as sample
from .envelope import RestError, crm_error
from .params import as_list, get_ci
from .state import Grant, Portal, World

MULTIFIELDS = ("PHONE", "EMAIL", "WEB", "IM", "LINK")


@dataclass
class Call:
    world: World
    portal: Portal
    grant: Grant
    method: str
    params: dict

    @property
    def user_id(self) -> int:
        return self.grant.user_id

    @property
    def is_admin(self) -> bool:
        return self.portal.is_admin(self.grant.user_id)


Result = tuple[Any, dict]   # (result, extra top-level keys such as total/next)
METHODS: dict[str, tuple[set[str] | None, Callable[[Call], Result]]] = {}


def method(name: str, scopes: set[str] | None = None):
    def deco(fn):
        METHODS[name] = (scopes, fn)
        return fn
    return deco


# --- helpers ---------------------------------------------------------------------------------

_POSITIVE_INT = re.compile(r"^\s*\d+\s*$")


def _crm_id(call: Call) -> int:
    """RD crm.lead.get: ``id`` missing or not a positive integer -> "ID is not defined or invalid."

    (Live responses end with a period: payloads/crm_lead_get_batch_error_bad_id.fast_bitrix24_real.json.)
    """
    raw = get_ci(call.params, "id")
    if isinstance(raw, (int, float)) and not isinstance(raw, bool):
        raw = str(int(raw)) if float(raw).is_integer() else "x"
    if not isinstance(raw, str) or not _POSITIVE_INT.match(raw) or int(raw) <= 0:
        raise crm_error("ID is not defined or invalid.")
    return int(raw)


def _absolute(portal: Portal, path: str) -> str:
    return portal.base_url + path if path.startswith("/") else path


_IMMUTABLE = (str, int, float, bool, type(None))


def _snapshot(value: object) -> object:
    """A copy the caller may keep while the world changes; scalars need none (most fields)."""
    return value if isinstance(value, _IMMUTABLE) else copy.deepcopy(value)


def serialize_lead(lead: dict) -> dict:
    """System keys, then UF_*, then multifields: the order of real crm.lead.get answers."""
    out = {k: _snapshot(v) for k, v in lead.items() if k not in MULTIFIELDS and not k.startswith("UF_")}
    out.update({k: _snapshot(v) for k, v in lead.items() if k.startswith("UF_")})
    out.update({k: _snapshot(lead[k]) for k in MULTIFIELDS if k in lead})
    return out


def _user_view(call: Call, user: dict) -> dict:
    u = copy.deepcopy(user)
    if "PERSONAL_PHOTO" in u:
        u["PERSONAL_PHOTO"] = _absolute(call.portal, u["PERSONAL_PHOTO"])
    scopes = call.world.app.scopes
    if not scopes & {"user", "user_basic"}:
        # user_brief: name without contact details (RD api-reference/user/user-scope.md)
        u = {k: v for k, v in u.items() if k in sample.USER_BRIEF_FIELDS}
    return u


# --- CRM ---------------------------------------------------------------------------------------

def _readable_record(call: Call, records: dict) -> dict:
    """The record named by the call's id, as legacy crm.*.get answers when it is missing or
    the caller may not read it (api-reference/crm/leads/crm-lead-get.md: 400, empty code, text in the description;
    the RD lead page spells "Access denied" without a period)."""
    rec = records.get(_crm_id(call))
    if rec is None:
        raise crm_error("Not found")
    if not call.portal.can_read(call.user_id, rec):
        raise crm_error("Access denied")
    return rec


@method("crm.lead.get", {"crm"})
def crm_lead_get(call: Call) -> Result:
    return serialize_lead(_readable_record(call, call.portal.leads)), {}


@method("crm.lead.fields", {"crm"})
def crm_lead_fields(call: Call) -> Result:
    return copy.deepcopy(call.portal.lead_fields), {}


@method("crm.company.get", {"crm"})
def crm_company_get(call: Call) -> Result:
    return copy.deepcopy(_readable_record(call, call.portal.companies)), {}


@method("crm.contact.get", {"crm"})
def crm_contact_get(call: Call) -> Result:
    return copy.deepcopy(_readable_record(call, call.portal.contacts)), {}


@method("crm.status.list", {"crm"})
def crm_status_list(call: Call) -> Result:
    flt = get_ci(call.params, "filter", default={}) or {}
    if not isinstance(flt, dict):
        raise RestError("Invalid parameters.", "Incorrect parameters passed.", 400)
    entity = get_ci(flt, "ENTITY_ID")
    status_id = get_ci(flt, "STATUS_ID")
    rows: list[dict] = []
    for ent, items in call.portal.statuses.items():
        if entity is not None and ent != str(entity):
            continue
        rows.extend(i for i in items if status_id is None or i["STATUS_ID"] == str(status_id))
    order = get_ci(call.params, "order", default={}) or {}
    desc = isinstance(order, dict) and str(get_ci(order, "SORT", default="ASC")).upper() == "DESC"
    rows.sort(key=lambda r: (r["ENTITY_ID"], int(r["SORT"])), reverse=desc)
    return copy.deepcopy(rows), {"total": len(rows)}


@method("crm.status.entity.items", {"crm"})
def crm_status_entity_items(call: Call) -> Result:
    entity = get_ci(call.params, "entityId")
    if not entity:
        raise crm_error("The parameter 'entityId' is not defined or invalid.")
    items = call.portal.statuses.get(str(entity), [])
    # RD crm-status-entity-items.md: SORT is an int here (a string in crm.status.list).
    return [{"NAME": i["NAME"], "SORT": int(i["SORT"]), "STATUS_ID": i["STATUS_ID"]} for i in items], {}


@method("crm.currency.list", {"crm"})
def crm_currency_list(call: Call) -> Result:
    # RD crm-currency-list.md shows "total": 0 next to four currencies; we copy that quirk.
    return copy.deepcopy(call.portal.currencies), {"total": 0}


# --- users -------------------------------------------------------------------------------------

_USER_SCOPES = {"user", "user_basic", "user_brief"}


@method("user.get", _USER_SCOPES)
def user_get(call: Call) -> Result:
    flt = get_ci(call.params, "FILTER", default=None)
    ids: list[str] | None = None
    if isinstance(flt, dict):
        raw = get_ci(flt, "ID", "@ID")
        if raw is not None:
            ids = [str(v) for v in as_list(raw)]
    top = get_ci(call.params, "ID")
    if top is not None:
        ids = [str(v) for v in as_list(top)]
    users = [u for uid, u in sorted(call.portal.users.items()) if ids is None or str(uid) in ids]
    return [_user_view(call, u) for u in users], {"total": len(users)}


@method("user.current", _USER_SCOPES)
def user_current(call: Call) -> Result:
    return _user_view(call, call.portal.users[call.user_id]), {}


@method("profile")
def profile(call: Call) -> Result:
    u = call.portal.users[call.user_id]
    out = {"ID": u["ID"], "ADMIN": call.is_admin, "NAME": u["NAME"], "LAST_NAME": u["LAST_NAME"],
           "PERSONAL_GENDER": u.get("PERSONAL_GENDER", "")}
    if "PERSONAL_PHOTO" in u:
        out["PERSONAL_PHOTO"] = _absolute(call.portal, u["PERSONAL_PHOTO"])
    out["TIME_ZONE"] = u.get("TIME_ZONE", "")
    return out, {}


@method("app.info")
def app_info(call: Call) -> Result:
    # Portal-side app.info (RD api-reference/common/system/app-info.md).
    app = call.world.app
    return {"ID": 5, "CODE": app.client_id, "VERSION": app.version, "STATUS": app.status,
            "INSTALLED": call.portal.installed, "PAYMENT_EXPIRED": "N", "DAYS": None,
            "LANGUAGE_ID": call.portal.lang, "LICENSE": f"{call.portal.lang}_project",
            "LICENSE_TYPE": "project", "LICENSE_FAMILY": "project"}, {}


@method("scope")
def scope(call: Call) -> Result:
    return sorted(call.world.app.scopes), {}


# --- placements ----------------------------------------------------------------------------------

_PLACEMENT_RE = re.compile(r"^(CRM_[A-Z0-9_]+|REST_APP_URI|LEFT_MENU|USER_PROFILE_MENU|"
                           r"USER_PROFILE_TOOLBAR|TASK_VIEW_TAB|IM_CONTEXT_MENU|PAGE_BACKGROUND_WORKER|"
                           r"CALENDAR_GRIDVIEW|TELEPHONY_CALL_CARD|SONET_GROUP_DETAIL_TAB)$")


def _check_handler(url: Any, arg: str) -> str:
    if not url:
        raise RestError("ERROR_ARGUMENT", f"Argument '{arg}' is null or empty", 200, {"argument": arg})
    parts = urlsplit(str(url))
    if parts.scheme not in ("http", "https"):
        raise RestError("ERROR_UNSUPPORTED_PROTOCOL", "Unsupported event handler protocol", 400)
    if not parts.hostname:
        raise RestError("ERROR_WRONG_HANDLER_URL", "Wrong handler URL", 400)
    # Deviation: real Bitrix24 refuses handlers on localhost / local addresses
    # (RD api-reference/widgets/placement-bind.md "Important").  The simulator lives on
    # loopback with the app, so loopback handlers are accepted.
    return str(url)


def _require_admin(call: Call) -> None:
    if not call.is_admin:
        raise RestError("ACCESS_DENIED", "Access denied! Administrator access required", 403)


@method("placement.bind", {"placement"})
def placement_bind(call: Call) -> Result:
    _require_admin(call)
    placement = get_ci(call.params, "PLACEMENT")
    if not placement:
        # RD placement-bind.md: ERROR_ARGUMENT comes with HTTP 200 and an "argument" key.
        raise RestError("ERROR_ARGUMENT", "Argument 'PLACEMENT' is null or empty", 200, {"argument": "PLACEMENT"})
    placement = str(placement).upper()
    if not _PLACEMENT_RE.match(placement):
        raise RestError("ERROR_PLACEMENT_NOT_FOUND", "Placement not found", 400)
    handler = _check_handler(get_ci(call.params, "HANDLER"), "HANDLER")
    title = str(get_ci(call.params, "TITLE", default="") or "")
    description = str(get_ci(call.params, "DESCRIPTION", default="") or "")
    group = str(get_ci(call.params, "GROUP_NAME", default="") or "")
    lang_all = get_ci(call.params, "LANG_ALL")
    if not isinstance(lang_all, dict) or not lang_all:
        lang_all = {call.portal.lang: {"TITLE": title, "DESCRIPTION": description, "GROUP_NAME": group}}
    # CRM_XXX_DETAIL_TAB ignores OPTIONS; placement.get returns [] for it (api-reference/widgets/placement-bind.md).
    options = get_ci(call.params, "OPTIONS") if not placement.startswith("CRM_") else []
    record = {"placement": placement, "userId": 0, "handler": handler, "options": options or [],
              "title": title, "description": description, "langAll": lang_all}
    with call.world.lock:
        for existing in call.portal.placements:
            if existing["placement"] == placement and existing["handler"] == handler:
                # Re-binding an identical (PLACEMENT, HANDLER): real behaviour is
                # UNCONFIRMED (api-reference/widgets/placement-bind.md / i.10).  We keep a single record (and
                # refresh its captions), so an app that re-binds on every install does
                # not see duplicate tabs here - but it must not rely on that.
                existing.update(record)
                return True, {}
        call.portal.placements.append(record)
    return True, {}


@method("placement.unbind", {"placement"})
def placement_unbind(call: Call) -> Result:
    _require_admin(call)
    placement = get_ci(call.params, "PLACEMENT")
    if not placement:
        raise RestError("ERROR_ARGUMENT", "Argument 'PLACEMENT' is null or empty", 200, {"argument": "PLACEMENT"})
    handler = get_ci(call.params, "HANDLER")
    with call.world.lock:
        keep, removed = [], 0
        for rec in call.portal.placements:
            if rec["placement"] == str(placement).upper() and (not handler or rec["handler"] == handler):
                removed += 1
            else:
                keep.append(rec)
        call.portal.placements = keep
    return {"count": removed}, {}


@method("placement.get", {"placement"})
def placement_get(call: Call) -> Result:
    _require_admin(call)
    with call.world.lock:
        return copy.deepcopy(call.portal.placements), {}


# --- events ------------------------------------------------------------------------------------

KNOWN_EVENTS = {"ONAPPINSTALL", "ONAPPUNINSTALL", "ONAPPUPDATE", "ONAPPPAYMENT", "ONAPPTEST",
                "ONAPPMETHODCONFIRM", "ONOFFLINEEVENT", "ONUSERADD"}


def _known_event(name: str) -> bool:
    return name in KNOWN_EVENTS or bool(re.match(r"^ONCRM[A-Z]+$", name))


@method("event.bind")
def event_bind(call: Call) -> Result:
    event = str(get_ci(call.params, "event", default="") or "").upper()
    if not event or not _known_event(event):
        raise RestError("ERROR_EVENT_NOT_FOUND", "Event not found", 400)
    handler = _check_handler(get_ci(call.params, "handler"), "handler")
    auth_type = str(get_ci(call.params, "auth_type", default="0") or "0")
    offline = str(get_ci(call.params, "event_type", default="online")).lower() == "offline"
    if not call.is_admin and (offline or auth_type not in ("0", str(call.user_id))):
        raise RestError("ACCESS_DENIED", "Access denied!", 403)
    with call.world.lock:
        for rec in call.portal.events:
            if rec["event"] == event and rec["handler"] == handler and rec["auth_type"] == auth_type:
                # Duplicate-bind answer: RD error-codes.md's generic sample
                # (api-reference/events/event-bind.md, UNCONFIRMED context), HTTP 400.
                raise RestError("ERROR_HANDLER_ALREADY_EXIST", "Handler already exists!", 400)
        call.portal.events.append({"id": call.world.next_handler_id(), "event": event, "handler": handler,
                                   "auth_type": auth_type, "offline": 1 if offline else 0})
    return True, {}


@method("event.unbind")
def event_unbind(call: Call) -> Result:
    event = get_ci(call.params, "event")
    handler = get_ci(call.params, "handler")
    auth_type = get_ci(call.params, "auth_type")
    with call.world.lock:
        keep, removed = [], 0
        for rec in call.portal.events:
            hit = ((not event or rec["event"] == str(event).upper())
                   and (not handler or rec["handler"] == handler)
                   and (auth_type in (None, "") or rec["auth_type"] == str(auth_type)))
            if hit:
                removed += 1
            else:
                keep.append(rec)
        call.portal.events = keep
    return {"count": removed}, {}


@method("event.get")
def event_get(call: Call) -> Result:
    with call.world.lock:
        return [{"event": r["event"], "handler": r["handler"], "auth_type": r["auth_type"],
                 "offline": r["offline"]} for r in call.portal.events], {}


# --- dispatcher ----------------------------------------------------------------------------------

def execute(world: World, portal: Portal, grant: Grant, name: str, params: dict,
            batch_sub: bool = False) -> tuple[Any, dict, dict]:
    """Run one method.  Returns (result, extra keys, time info); raises RestError."""
    name = name.strip().lower()
    if name.endswith(".json"):
        name = name[:-5]
    entry = METHODS.get(name)
    if entry is None:
        raise RestError("ERROR_METHOD_NOT_FOUND")
    scopes, fn = entry
    if scopes is not None and not (scopes & world.app.scopes):
        raise RestError("insufficient_scope")
    blocked = world.knob("operation_time_limit", portal.name) or []
    if name in [m.lower() for m in blocked]:
        # RD limits.md: the next call of a method over its time budget gets 429.
        raise RestError("OPERATION_TIME_LIMIT")
    fault = world.faults.take(portal.name, name, kinds=("error",), batch_sub=batch_sub) if batch_sub else None
    if fault is not None:
        r = fault.resolved()
        raise RestError(r["body"]["error"], r["body"].get("error_description", ""), r["status"])
    if batch_sub:  # a hang on this very method delays just this sub-command, then it answers
        hang = world.faults.take(portal.name, name, kinds=("hang",), batch_sub=True, named_only=True)
        if hang is not None:
            time.sleep(hang.seconds)
    start = time.time()
    result, extra = fn(Call(world, portal, grant, name, params))
    finish = time.time()
    if batch_sub:  # "commit then hang" on this method: it ran (a write is applied), then we wait
        late = world.faults.take(portal.name, name, kinds=("hang_after",), batch_sub=True, named_only=True)
        if late is not None:
            time.sleep(late.seconds)
    with world.lock:
        acc = portal.operating.setdefault(name, {"sum": 0.0, "reset_at": int(finish) + 600})
        acc["sum"] += finish - start
        timing = {"start": start, "finish": finish, "operating": acc["sum"],
                  "operating_reset_at": acc["reset_at"]}
    return result, extra, timing


from . import crm_settings  # noqa: E402,F401  (registers crm.settings.mode.get; imports this module)
