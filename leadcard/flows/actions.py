"""One action from the card — comment, plan a to-do, mark one done, move the stage — made as
the viewing user, never twice.

The order is the contract (issue 13):

1. the request is validated (`action_request.parse_action`; a stage against the portal's
   cached stage list) — a bad one is refused before any upstream request or ledger row;
2. `member_id` selects the stored portal; the token goes only to its stored
   `client_endpoint`, whatever else the request says;
3. the key is claimed in the shared database (`storage/action_keys.py`): a duplicate — a
   double click, a retry after a timeout, on another worker or host — finds the first
   attempt's row and gets its answer (waiting while it is still running), never a second write;
4. the write is sent once, through the portal's rate-limit bucket, never retried
   automatically (`idempotent=False`). Its outcome settles the key:
   - done → the answer is recorded and replayed for the same key for 24 hours;
   - refused by Bitrix24 (an error envelope: rights, a field the stage requires, an expired
     token) or by our own bucket → nothing was written: the key is released, so the retry
     after `refreshAuth` (same key) goes through;
   - timed out / dropped / 5xx → it may have happened: the key is marked unknown and the
     page says the change may not have been saved (a peer SDK created three documents by
     retrying such writes: bitrix24/b24jssdk issue #24);
5. on success the lead is read again (one batch) so the page can replace the card in place.

Answers are plain data (`ActionOutcome`): the web layer words the codes in the viewer's
language and renders the card.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from leadcard.bitrix24.rest import Deadline
from leadcard.bitrix24.session import PortalSession
from leadcard.core import errors, metrics
from leadcard.flows.action_request import ActionRefused, ActionRequest
from leadcard.flows.lead_reader import LeadReader
from leadcard.flows.lead_tab import LeadView, stored_portal, viewer_session
from leadcard.flows.services import Services
from leadcard.storage.action_keys import DONE, PENDING, Claim
from leadcard.storage.portals import PortalRoute

log = logging.getLogger(__name__)

# A pending key older than this belongs to an attempt that died between its write and its
# record (a killed worker): its outcome is unknown, so it is never written again.
STALE_PENDING = 60.0
# How often a duplicate looks again at a key whose first attempt is still running.
_POLL = (0.05, 0.1, 0.2, 0.3)

# Bitrix24's answers that mean "nothing was found to act on" (legacy methods answer an empty
# code and put it in the text: api-reference/crm/timeline/activities/activity-base/crm-activity-update.md).
_NOT_FOUND_CODES = {"owner_not_found", "not_found"}
_NOT_FOUND_TEXTS = {"not found", "activity is not found"}


@dataclass(frozen=True)
class ActionOutcome:
    """What the endpoint answers: HTTP status and the JSON body (codes, not texts), whether
    it is a replay of the key's first answer, and the lead read after a successful write."""

    status: int
    body: dict[str, Any]
    replayed: bool = False
    view: LeadView | None = None
    retry_after: float | None = None

    @property
    def ok(self) -> bool:
        return bool(self.body.get("ok"))


def refused(exc: ActionRefused) -> ActionOutcome:
    """The answer for a request refused before anything was written."""
    error: dict[str, Any] = {"code": exc.code}
    if exc.field:
        error["field"] = exc.field
    if exc.detail:
        error["detail"] = exc.detail
    return ActionOutcome(status=exc.status, body={"ok": False, "error": error},
                         retry_after=exc.retry_after)


def run(svc: Services, req: ActionRequest) -> ActionOutcome:
    """Carry out one validated action request (see the module docstring for the order)."""
    deadline = Deadline.after(svc.settings.view_budget)
    try:
        portal = stored_portal(svc, req.member_id, "")
    except errors.NotInstalled:
        metrics.observe_action(req.action, "not_installed")
        return refused(ActionRefused("not_installed", 403))
    session = viewer_session(svc, portal, req.auth, "", deadline)
    try:
        if req.action == "stage":
            _check_stage(svc, session, req)
        claim = svc.action_keys.claim(req.member_id, req.key, req.fingerprint)
    except ActionRefused as exc:
        metrics.observe_action(req.action, "invalid")
        return refused(exc)
    except errors.LeadCardError as exc:
        return _refusal_from(req, exc)
    if not claim.won:
        return _duplicate(svc, req, claim, portal, session)
    return _write(svc, req, portal, session)


# --- the write ----------------------------------------------------------------------------

def _write(svc: Services, req: ActionRequest, portal: PortalRoute,
           session: PortalSession) -> ActionOutcome:
    method, params = upstream_call(req)
    try:
        answer = session.call(method, params, idempotent=False)
    except errors.LeadCardError as exc:
        if exc.maybe_executed:
            log.warning("action %s on %s: outcome unknown (%s)", req.action, req.member_id,
                        type(exc).__name__)
            body = _outcome_unknown()
            _settle(req, lambda: svc.action_keys.unknown(req.member_id, req.key, 504, body))
            metrics.observe_action(req.action, "unknown")
            return ActionOutcome(status=504, body=body)
        _settle(req, lambda: svc.action_keys.release(req.member_id, req.key))
        return _refusal_from(req, exc)
    body = {"ok": True, "result": result_of(req, answer)}
    _settle(req, lambda: svc.action_keys.finish(req.member_id, req.key, 200, body))
    metrics.observe_action(req.action, "ok")
    return ActionOutcome(status=200, body=body, view=_read_back(svc, session, req, portal))


def upstream_call(req: ActionRequest) -> tuple[str, dict[str, Any]]:
    """The Bitrix24 method and params that carry out `req` (as the viewer)."""
    p = req.params
    if req.action == "comment":
        # Only the lowercase `fields` key is accepted since crm 23.100.0
        # (api-reference/crm/timeline/comments/crm-timeline-comment-add.md).
        return "crm.timeline.comment.add", {
            "fields": {"ENTITY_ID": req.lead_id, "ENTITY_TYPE": "lead", "COMMENT": p["text"]}}
    if req.action == "todo":
        # api-reference/crm/timeline/activities/todo/crm-activity-todo-add.md: ownerTypeId 1 is
        # a lead; without responsibleId the to-do is the calling user's.
        params: dict[str, Any] = {"ownerTypeId": 1, "ownerId": req.lead_id,
                                  "deadline": p["deadline"], "title": p["title"]}
        if p.get("description"):
            params["description"] = p["description"]
        if p.get("responsible_id"):
            params["responsibleId"] = p["responsible_id"]
        return "crm.activity.todo.add", params
    if req.action == "todo_done":
        # The to-do methods have no "complete"; crm.activity.update sets COMPLETED
        # (api-reference/crm/timeline/activities/activity-base/crm-activity-update.md).
        return "crm.activity.update", {"id": p["activity_id"], "fields": {"COMPLETED": "Y"}}
    # crm.lead.update (api-reference/crm/leads/crm-lead-update.md), like crm.lead.get for reads.
    return "crm.lead.update", {"id": req.lead_id, "fields": {"STATUS_ID": p["status_id"]},
                               "params": {"REGISTER_SONET_EVENT": "Y"}}


def result_of(req: ActionRequest, answer: Any) -> dict[str, Any]:
    """The `result` the page gets: what was made, by id."""
    if req.action == "comment":
        return {"comment_id": _int_or_none(answer)}
    if req.action == "todo":
        made = answer.get("id") if isinstance(answer, dict) else answer
        return {"activity_id": _int_or_none(made)}
    if req.action == "todo_done":
        return {"activity_id": req.params["activity_id"], "completed": True}
    return {"status_id": req.params["status_id"]}


def _read_back(svc: Services, session: PortalSession, req: ActionRequest,
               portal: PortalRoute) -> LeadView | None:
    """The lead after the write, for the card to update in place; None if it cannot be read
    now (the write stands; the page keeps its card and asks the host to reload)."""
    reader = LeadReader(svc.cache, svc.settings.reference_ttl)
    try:
        lead, reference = reader.read(session, lead_id=req.lead_id, lang=req.lang or "en")
    except errors.LeadCardError as exc:
        log.info("action %s: lead %s not read back: %s", req.action, req.lead_id,
                 type(exc).__name__)
        return None
    return LeadView(portal=portal, lead=lead, reference=reference)


def _settle(req: ActionRequest, record: Callable[[], None]) -> None:
    """Record the key's outcome; a database failure here is logged, not the user's problem
    (a pending key goes stale after STALE_PENDING and is then treated as unknown)."""
    try:
        record()
    except errors.LeadCardError as exc:
        log.error("action key of %s not recorded: %s", req.member_id, type(exc).__name__)


# --- duplicates ---------------------------------------------------------------------------

def _duplicate(svc: Services, req: ActionRequest, claim: Claim, portal: PortalRoute,
               session: PortalSession) -> ActionOutcome:
    """Another request holds the key: its answer, once it has one — never a second write."""
    if not claim.same_request:
        metrics.observe_action(req.action, "invalid")
        return refused(ActionRefused("key_reused", 422, field="key"))
    polls = 0
    while claim.state == PENDING:
        if claim.age > STALE_PENDING:
            metrics.observe_action(req.action, "unknown")
            return ActionOutcome(status=504, body=_outcome_unknown(), replayed=True)
        pause = _POLL[min(polls, len(_POLL) - 1)]
        if session.deadline.remaining() < pause + 0.5:
            metrics.observe_action(req.action, "in_progress")
            return refused(ActionRefused("in_progress", 409, retry_after=1.0))
        time.sleep(pause)
        polls += 1
        try:
            found = svc.action_keys.lookup(req.member_id, req.key)
        except errors.LeadCardError as exc:
            return _refusal_from(req, exc)
        if found is None:  # the first attempt was refused and released the key: ours now
            return run(svc, req)
        claim = found
    metrics.observe_action(req.action, "replayed")
    status = claim.status or (200 if claim.state == DONE else 504)
    body = claim.answer or {"ok": claim.state == DONE}
    # The card after the first attempt's write, read again for this page (a read, not a write).
    view = _read_back(svc, session, req, portal) if claim.state == DONE and body.get("ok") else None
    return ActionOutcome(status=status, body=body, replayed=True, view=view)


# --- stages and refusals ------------------------------------------------------------------

def _check_stage(svc: Services, session: PortalSession, req: ActionRequest) -> None:
    """The stage must be one of the portal's lead stages: from the cache the card's views
    fill (no upstream request), or read once when it is not there."""
    reader = LeadReader(svc.cache, svc.settings.reference_ttl)
    stages = reader.dictionary(session, "status.STATUS", req.lang or "en")
    known = {str(s.get("STATUS_ID")) for s in stages or [] if isinstance(s, dict)}
    if req.params["status_id"] not in known:
        raise ActionRefused("unknown_stage", field="status_id")


def _refusal_from(req: ActionRequest, exc: errors.LeadCardError) -> ActionOutcome:
    """Nothing was written: the answer for a refusal by Bitrix24 or by this app's limits."""
    code, description, _ = exc.upstream or ("", "", 0)
    detail = description or None
    if isinstance(exc, (errors.ExpiredToken, errors.SessionExpired)):
        outcome, answer = "expired_token", ActionRefused("expired_token", 401)
    elif isinstance(exc, errors.InvalidToken):
        outcome, answer = "denied", ActionRefused("invalid_token", 401)
    elif isinstance(exc, (errors.NotInstalled, errors.AppNotInstalled)):
        outcome, answer = "not_installed", ActionRefused("not_installed", 403)
    elif isinstance(exc, (errors.AccessDenied, errors.UserAccessDenied,
                          errors.InsufficientScope)):
        outcome, answer = "denied", ActionRefused("access_denied", 403, detail=detail)
    elif (code.lower() in _NOT_FOUND_CODES or isinstance(exc, errors.LeadNotFound)
          or description.strip().rstrip(".").lower() in _NOT_FOUND_TEXTS):
        outcome, answer = "refused", ActionRefused("not_found", 404, detail=detail)
    elif code.upper() == "WRONG_DATETIME_FORMAT":
        outcome, answer = "invalid", ActionRefused("deadline_invalid", 400, field="deadline",
                                                   detail=detail)
    elif isinstance(exc, (errors.RateLimited, errors.OperationTimeLimit, errors.Busy)):
        outcome, answer = "rate_limited", ActionRefused(
            "rate_limited", 503, retry_after=max(1.0, exc.retry_after or 1.0))
    elif isinstance(exc, (errors.DatabaseUnavailable,)):
        outcome, answer = "error", ActionRefused("unavailable", 503, retry_after=5.0)
    elif exc.upstream is not None:
        # Bitrix24's own refusal (a field the stage requires, a value it does not take):
        # shown as Bitrix24 worded it.
        outcome, answer = "refused", ActionRefused("refused", 422, detail=detail)
    else:
        outcome, answer = "error", ActionRefused("portal_error", 502)
    metrics.observe_action(req.action, outcome)
    return refused(answer)


def _outcome_unknown() -> dict[str, Any]:
    """The answer for a write that may or may not have happened."""
    return {"ok": False, "error": {"code": "outcome_unknown"}}


def _int_or_none(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None
