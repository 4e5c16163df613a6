"""REST methods that change a lead's world: a timeline comment, a to-do, marking an activity
done and moving a lead to another stage (issue 13).

Owns their parameters, rights, error answers and the write log. Registered in
:data:`.rest.METHODS` when this module is imported (``portal_app`` does), so they run in
``batch`` like every other method. Rights: writing a comment needs the right to *read* the lead
(``Portal.can_read``); a to-do, an activity update and a lead update need the right to *edit*
it (``Portal.can_edit``: admins edit all, a sales rep only leads assigned to him).

Every successful write is appended to ``World.writes`` (method, portal, user_id, params as
received), which tests read through ``Simulator.writes()`` / ``GET /_sim/writes``; the stats
reset clears it.

Error families, as the docs show them:
  * legacy ``crm.lead.update`` / ``crm.activity.update``: empty code, the text in the
    description, HTTP 400 (``crm_error``);
  * the newer ``crm.timeline.comment.add`` / ``crm.activity.todo.add``: named codes
    (``OWNER_NOT_FOUND``, ``ACCESS_DENIED``, ``INVALID_ARG_VALUE``, ``WRONG_DATETIME_FORMAT``)
    with HTTP 400, and the integer code ``100`` for a missing parameter.
"""

from __future__ import annotations

import copy
import time
from datetime import datetime
from typing import Any

from .context_data import _activity
from .envelope import RestError, crm_error, iso, tz
from .params import get_ci
from .rest import Call, Result, _crm_id, method

LEAD_TYPE_ID = 1  # crm object type of a lead (api-reference/crm/data-types.md#object_type)


# --- shared helpers ------------------------------------------------------------------------

def _log_write(call: Call) -> None:
    """Remember one successful write; the caller holds the world lock."""
    call.world.writes.append({"time": time.time(), "method": call.method, "portal": call.portal.name,
                              "user_id": call.user_id, "params": copy.deepcopy(call.params)})


def _missing(name: str) -> RestError:
    """The engine's answer to a missing parameter: ``{"error": 100, ...}`` with an integer code
    (api-reference/crm/timeline/activities/todo/crm-activity-todo-add.md, code 100 "Required
    fields are missing"; the wording is the one the crm.item pages show, HTTP 400)."""
    return RestError("100", f"Could not find value for parameter {{{name}}}", 400, {"error": 100})


def _int_param(raw: Any, name: str) -> int:
    try:
        value = int(str(raw).strip())
    except ValueError:
        raise RestError("100", f"Invalid value {raw} to match with parameter {{{name}}}. "
                        "Should be value of type int.", 400, {"error": 100}) from None
    return value


def _blank(value: Any) -> bool:
    if value is None:
        return True
    if isinstance(value, (list, dict)):
        return not value
    return not str(value).strip()


def _touch_lead(call: Call, lead: dict) -> None:
    """A new or finished activity moves the lead's "last activity" (crm.lead.get fields)."""
    lead["LAST_ACTIVITY_TIME"] = call.world.now_iso(call.portal)
    lead["LAST_ACTIVITY_BY"] = str(call.user_id)


def _next_id(rows: list[dict], floor: int) -> int:
    return max((int(r["ID"]) for r in rows), default=floor) + 1


# --- crm.timeline.comment.add ----------------------------------------------------------------

@method("crm.timeline.comment.add", {"crm"})
def crm_timeline_comment_add(call: Call) -> Result:
    """api-reference/crm/timeline/comments/crm-timeline-comment-add.md: ``fields`` (lowercase
    only since crm 23.100.0) with ENTITY_ID, ENTITY_TYPE, COMMENT; answers the new id. The
    author is the caller; the comment needs the right to read the lead."""
    fields = call.params.get("fields")  # deliberately case-sensitive (the doc's warning)
    if not isinstance(fields, dict):
        raise _missing("fields")
    entity_id = get_ci(fields, "ENTITY_ID")
    entity_type = str(get_ci(fields, "ENTITY_TYPE", default="") or "").lower()
    for name, value in (("ENTITY_ID", entity_id), ("ENTITY_TYPE", entity_type)):
        if _blank(value):
            raise RestError("100", f"Required fields are not provided: {name}", 400, {"error": 100})
    with call.world.lock:
        lead = _lead_or_none(call, entity_id) if entity_type == "lead" else None
        if lead is None:
            raise RestError("OWNER_NOT_FOUND", "Owner of the element not found", 400)
        if not call.portal.can_read(call.user_id, lead):
            # The docs list ACCESS_DENIED without a status; the newer CRM methods answer 400
            # (api-reference/crm/universal/crm-item-update.md, table of codes).
            raise RestError("ACCESS_DENIED", "Access denied.", 400)
        text = get_ci(fields, "COMMENT")
        if _blank(text):
            raise RestError("INVALID_ARG_VALUE", "Empty comment", 400)
        new_id = _next_id(call.portal.comments, 700)
        call.portal.comments.append({
            "ID": str(new_id), "ENTITY_ID": int(lead["ID"]), "ENTITY_TYPE": "lead",
            "CREATED": call.world.now_iso(call.portal), "COMMENT": str(text),
            "AUTHOR_ID": str(call.user_id), "FILES": []})
        _log_write(call)
    return new_id, {}


def _lead_or_none(call: Call, raw_id: Any) -> dict | None:
    try:
        return call.portal.leads.get(int(str(raw_id).strip()))
    except ValueError:
        return None


# --- crm.activity.todo.add -------------------------------------------------------------------

def _parse_deadline(raw: Any, offset_hours: int) -> float:
    """ATOM / ISO 8601 (``2031-03-04T10:00:00+01:00``); without an offset the time is the
    portal's. Anything else → WRONG_DATETIME_FORMAT."""
    try:
        when = datetime.fromisoformat(str(raw).strip().replace("Z", "+00:00"))
    except ValueError:
        raise RestError("WRONG_DATETIME_FORMAT", "Incorrect date format", 400) from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=tz(offset_hours))
    return when.timestamp()


@method("crm.activity.todo.add", {"crm"})
def crm_activity_todo_add(call: Call) -> Result:
    """api-reference/crm/timeline/activities/todo/crm-activity-todo-add.md: ownerTypeId,
    ownerId and deadline required; title, description, responsibleId (default: the caller).
    Answers ``{"id": <int>}``; the to-do shows in crm.activity.list as an open CRM_TODO."""
    raw = {name: get_ci(call.params, name) for name in ("ownerTypeId", "ownerId", "deadline")}
    for name, value in raw.items():
        if _blank(value):
            raise _missing(name)
    owner_type = _int_param(raw["ownerTypeId"], "ownerTypeId")
    owner_id = _int_param(raw["ownerId"], "ownerId")
    responsible = get_ci(call.params, "responsibleId")
    responsible_id = call.user_id if _blank(responsible) else _int_param(responsible, "responsibleId")
    deadline = _parse_deadline(raw["deadline"], call.portal.tz)
    with call.world.lock:
        lead = call.portal.leads.get(owner_id) if owner_type == LEAD_TYPE_ID else None
        if lead is None:  # only leads are modelled as owners
            raise RestError("OWNER_NOT_FOUND", "Owner of the entity not found", 400)
        if not call.portal.can_edit(call.user_id, lead):
            # "Who can execute the method: a user with permission to edit the CRM entity".
            raise RestError("ACCESS_DENIED", "Access denied.", 400)
        now = call.world.clock.now()
        new_id = _next_id(call.portal.activities, 500)
        todo = _activity(new_id, owner_id, type_id=6, provider="CRM_TODO", provider_type="TODO",
                         subject=str(get_ci(call.params, "title", default="") or ""),
                         completed=False, start=now, deadline=deadline, responsible=responsible_id,
                         description=str(get_ci(call.params, "description", default="") or ""),
                         tz=call.portal.tz)
        todo.update({"CREATED": iso(now, call.portal.tz), "AUTHOR_ID": str(call.user_id),
                     "EDITOR_ID": str(call.user_id)})
        call.portal.activities.append(todo)
        _touch_lead(call, lead)
        _log_write(call)
    return {"id": new_id}, {}


# --- crm.activity.update -----------------------------------------------------------------------

def _flag(value: Any) -> str | None:
    text = str(value).strip().upper()
    if value is True or text in ("Y", "1", "TRUE"):
        return "Y"
    if value is False or text in ("N", "0", "FALSE"):
        return "N"
    return None


@method("crm.activity.update", {"crm"})
def crm_activity_update(call: Call) -> Result:
    """api-reference/crm/timeline/activities/activity-base/crm-activity-update.md, for marking
    an activity done: ``{id, fields: {COMPLETED: "Y"}}`` → ``true``. Errors have an empty
    code: "Activity is not found", "Access denied." (no right to edit the owner lead). Fields
    other than COMPLETED are accepted and ignored; completing a completed activity is a no-op
    that still succeeds."""
    activity_id = _crm_id(call)
    fields = get_ci(call.params, "fields")
    with call.world.lock:
        activity = next((a for a in call.portal.activities if a["ID"] == str(activity_id)), None)
        if activity is None:
            raise crm_error("Activity is not found")
        lead = (call.portal.leads.get(int(activity["OWNER_ID"]))
                if activity["OWNER_TYPE_ID"] == str(LEAD_TYPE_ID) else None)
        allowed = call.portal.can_edit(call.user_id, lead) if lead is not None else \
            call.portal.is_admin(call.user_id)
        if not allowed:
            # The doc's sample answer: {"error": "", "error_description": "Access denied."}.
            raise crm_error("Access denied.")
        if not isinstance(fields, dict):
            raise crm_error("The parameter 'fields' must be array.")
        completed = _flag(get_ci(fields, "COMPLETED")) if get_ci(fields, "COMPLETED") is not None else None
        if completed is not None and completed != activity["COMPLETED"]:
            activity["COMPLETED"] = completed
            activity["STATUS"] = "2" if completed == "Y" else "1"
            activity["LAST_UPDATED"] = call.world.now_iso(call.portal)
            activity["EDITOR_ID"] = str(call.user_id)
            if lead is not None:
                _touch_lead(call, lead)
        _log_write(call)
    return True, {}


# --- crm.lead.update ---------------------------------------------------------------------------

def _field_label(call: Call, code: str) -> str:
    meta = call.portal.lead_fields.get(code) or {}
    return str(meta.get("formLabel") or meta.get("title") or code)


@method("crm.lead.update", {"crm"})
def crm_lead_update(call: Call) -> Result:
    """api-reference/crm/leads/crm-lead-update.md: ``{id, fields, params}`` → ``true``.

    Scalar fields the lead has are set (unknown and read-only ones are ignored, as the doc
    says); STATUS_ID must be a stage of the portal's STATUS dictionary. A stage change moves
    MOVED_TIME / MOVED_BY_ID and the semantics, and is refused when the target stage requires
    a field the lead (after this update) leaves empty (``Portal.stage_required``)."""
    lead_id = _crm_id(call)
    fields = get_ci(call.params, "fields")
    with call.world.lock:
        lead = call.portal.leads.get(lead_id)
        if lead is None:
            raise crm_error("Not found")
        if not call.portal.can_edit(call.user_id, lead):
            raise crm_error("Access denied.")
        if not isinstance(fields, dict):
            raise crm_error("The parameter 'fields' must be array.")
        changes = _lead_changes(call, lead, fields)
        stage = changes.get("STATUS_ID")
        moved = stage is not None and stage != lead.get("STATUS_ID")
        if moved:
            _check_stage_required(call, lead, changes, str(stage))
        now = call.world.now_iso(call.portal)
        if moved:
            semantics = next(s["SEMANTICS"] for s in call.portal.statuses["STATUS"] if s["STATUS_ID"] == stage)
            changes.update({"MOVED_TIME": now, "MOVED_BY_ID": str(call.user_id),
                            "STATUS_SEMANTIC_ID": semantics or "P",
                            "DATE_CLOSED": now if semantics in ("S", "F") else ""})
        if any(lead.get(k) != v for k, v in changes.items()):
            lead.update(changes)
            lead.update({"DATE_MODIFY": now, "MODIFY_BY_ID": str(call.user_id)})
        _log_write(call)
    return True, {}


def _lead_changes(call: Call, lead: dict, fields: dict) -> dict:
    """The scalar fields ``fields`` sets, as strings; a STATUS_ID outside the dictionary is
    refused. Unknown, read-only and multiple fields are left out (the doc: "An incorrect field
    in fields will be ignored"; multifields are not modelled here)."""
    changes: dict[str, str] = {}
    for raw_name, value in fields.items():
        name = str(raw_name).upper()
        meta = call.portal.lead_fields.get(name)
        if meta is None or meta.get("isReadOnly") or name not in lead or isinstance(lead[name], (list, dict)):
            continue
        if isinstance(value, (list, dict)):
            continue
        changes[name] = "" if value is None else str(value)
    if "STATUS_ID" in changes:
        stages = {s["STATUS_ID"] for s in call.portal.statuses.get("STATUS", [])}
        if changes["STATUS_ID"] not in stages:
            # Wording UNCONFIRMED for the legacy method; the crm.item pages name this
            # CRM_FIELD_ERROR_VALUE_NOT_VALID 'Invalid value for field "…"'.
            raise crm_error(f'Invalid value for field "{_field_label(call, "STATUS_ID")}".')
    return changes


def _check_stage_required(call: Call, lead: dict, changes: dict, stage: str) -> None:
    """Refuse entering ``stage`` while a field it requires stays empty. Wording of
    api-reference/crm/universal/import/crm-item-batch-import.md (CRM_FIELD_ERROR_REQUIRED,
    'The field "Title" is required.'), under the legacy method's empty code."""
    for code in call.portal.stage_required.get(stage, []):
        value = changes[code] if code in changes else lead.get(code)
        if _blank(value):
            raise crm_error(f'The field "{_field_label(call, code)}" is required.')
