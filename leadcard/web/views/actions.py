"""POST /actions — what the card's script sends to comment, plan or finish a to-do, or move
the stage (issue 13). JSON in, JSON out, never an HTML page, a 5xx or a trace.

- `application/json` only (415 otherwise), at most MAX_ACTION_BYTES (413), POST only (405
  with `Allow`); a body that is not an object of the contract is 400 before anything else
  (flows/action_request.py). No cookies: each request carries its own credential, the
  viewer's current token from the frame library, and it is sent only to the stored
  `client_endpoint` of `member_id` (flows/actions.py).
- Answers: 200 `{"ok": true, "result": {…, "message", "html"}}`, where `html` is the card's
  content read after the write, for the page to put in place; every refusal 4xx/5xx
  `{"ok": false, "error": {"code", "message", ["field"], ["detail"]}}`, `message` in the
  viewer's language (`lang`, the Bitrix24 LANG the page was opened with), `detail` a
  refusal in Bitrix24's own words.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from flask import Blueprint, Response, g, jsonify, request
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from werkzeug.exceptions import RequestEntityTooLarge

from leadcard.flows import actions as action_flow
from leadcard.flows import services
from leadcard.flows.action_request import ActionRefused, parse_action
from leadcard.flows.lead_tab import LeadView
from leadcard.web.views import placement

log = logging.getLogger(__name__)

bp = Blueprint("actions", __name__)

# A comment of 5,000 characters is at most 20 KB of UTF-8, JSON-escaped a little more.
MAX_ACTION_BYTES = 32 * 1024

# error code → what the viewer reads.
MESSAGES = {
    "invalid_json": _l("The request was not understood. Reload the tab and try again."),
    "invalid_request": _l("The request was not understood. Reload the tab and try again."),
    "invalid_key": _l("The request was not understood. Reload the tab and try again."),
    "unknown_action": _l("The request was not understood. Reload the tab and try again."),
    "method_not_allowed": _l("The request was not understood. Reload the tab and try again."),
    "unsupported_media_type": _l("The request was not understood. Reload the tab and try again."),
    "too_large": _l("That is too long to send."),
    "comment_empty": _l("Write a comment first."),
    "comment_too_long": _l("A comment can be at most 5,000 characters long."),
    "title_empty": _l("Say what is to be done."),
    "title_too_long": _l("The to-do's title can be at most 255 characters long."),
    "description_too_long": _l("The details can be at most 5,000 characters long."),
    "deadline_missing": _l("Choose a deadline."),
    "deadline_invalid": _l("Choose a valid date and time for the deadline."),
    "unknown_stage": _l("That stage does not exist on this Bitrix24. Reload the tab to see the current stages."),
    "not_installed": _l("Lead Card is not installed on this Bitrix24"),
    "expired_token": _l("Your session in this tab expired. Close the lead and open it again."),
    "invalid_token": _l("We couldn't verify your Bitrix24 session"),
    "access_denied": _l("Your Bitrix24 access rights let you see this lead but not change it. Nothing was saved."),
    "not_found": _l("Bitrix24 could not find what this change is about; it may have been deleted. Nothing was saved."),
    "refused": _l("Bitrix24 did not save this change."),
    "key_reused": _l("The request was not understood. Reload the tab and try again."),
    "in_progress": _l("This change is still being saved. Wait a moment."),
    "outcome_unknown": _l("Bitrix24 did not answer in time. The change may have been saved: check the lead's timeline before you send it again."),
    "rate_limited": _l("Bitrix24 is busy right now. Try again in a few seconds."),
    "unavailable": _l("Lead Card is temporarily unavailable. Try again in a few seconds."),
    "portal_error": _l("Bitrix24 could not save this change right now. Nothing was saved; try again later."),
}
DONE_MESSAGES = {
    "comment": _l("Comment added."),
    "todo": _l("To-do planned."),
    "todo_done": _l("To-do marked as done."),
    "stage": _l("Stage changed."),
}


@bp.route("/actions", methods=["GET", "PUT", "PATCH", "DELETE"])
def wrong_method() -> Response:
    response = _error_response(ActionRefused("method_not_allowed", 405))
    response.headers["Allow"] = "POST"
    return response


@bp.post("/actions")
def act() -> Response:
    g.lang = request.args.get("LANG") or "en"
    if request.mimetype != "application/json":
        return _error_response(ActionRefused("unsupported_media_type", 415))
    if request.content_length is not None and request.content_length > MAX_ACTION_BYTES:
        return _error_response(ActionRefused("too_large", 413))
    try:
        raw = request.get_data(cache=False)
    except RequestEntityTooLarge:
        return _error_response(ActionRefused("too_large", 413))
    if len(raw) > MAX_ACTION_BYTES:
        return _error_response(ActionRefused("too_large", 413))
    try:
        body = json.loads(raw)
    except ValueError:
        return _error_response(ActionRefused("invalid_json"))
    if isinstance(body, dict) and isinstance(body.get("lang"), str):
        g.lang = body["lang"][:8]
    try:
        req = parse_action(body)
    except ActionRefused as exc:
        return _error_response(exc)
    g.member_id = req.member_id  # the JSON log's portal (never the token)
    outcome = action_flow.run(services.current(), req)
    return _answer(req.action, outcome)


def _answer(action: str, outcome: action_flow.ActionOutcome) -> Response:
    # The flow's answer is codes and ids; what the viewer reads is added here.
    body: dict[str, Any] = dict(outcome.body)
    if body.get("ok"):
        body["result"] = {
            **(body.get("result") or {}),
            "message": str(DONE_MESSAGES.get(action, "")),
            "replayed": outcome.replayed,
            "html": _card_html(outcome.view) if outcome.view is not None else None,
        }
    else:
        body["error"] = _worded(body.get("error") or {"code": "portal_error"})
    response = jsonify(body)
    response.status_code = outcome.status
    if outcome.retry_after:
        response.headers["Retry-After"] = str(int(max(1, outcome.retry_after)))
    return response


def _error_response(exc: ActionRefused) -> Response:
    return _answer("", action_flow.refused(exc))


def _worded(error: dict[str, Any]) -> dict[str, Any]:
    """``error`` with the viewer's text for its code; a refusal worded by Bitrix24 keeps its
    words."""
    code = str(error.get("code") or "portal_error")
    message = str(MESSAGES.get(code, MESSAGES["portal_error"]))
    detail = error.get("detail")
    if detail and code in ("refused", "access_denied", "not_found"):
        message = _("%(message)s Bitrix24 says: %(reason)s", message=message, reason=detail)
    return {**error, "message": message}


def _card_html(view: LeadView) -> str | None:
    """The card's content after the write, as the placement view renders it (no nonce'd
    elements: it goes into the live page). None if it cannot be rendered."""
    try:
        return placement.render_card_body(placement.card_inputs(view))
    except Exception:  # the write stands; the page keeps its card and asks the host to reload
        log.exception("card not rendered after an action")
        return None
