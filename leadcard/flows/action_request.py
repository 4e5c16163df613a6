"""Parse and validate one `POST /actions` body, before anything is claimed or sent upstream.

The page's script sends (issue 13's contract):

    {"member_id", "auth", "placement": "CRM_LEAD_DETAIL_TAB", "id": <lead id>,
     "action": "comment" | "todo" | "todo_done" | "stage", "params": {...}, "key", "lang"?}

Everything is checked here and refused with an `ActionRefused` (a code the web layer words in
the viewer's language, and its HTTP status) — an empty or over-long comment, a to-do without a
deadline, a key of the wrong shape — so a bad request never costs an upstream request or a
ledger row. Whether a stage is one of the portal's needs the portal's list: `flows/actions.py`
checks that against the cached stage dictionary.

Pure: no Flask, no I/O.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from leadcard.bitrix24.payloads import (
    LANG_PATTERN,
    LEAD_TAB,
    MAX_LEAD_ID,
    MEMBER_ID_PATTERN,
    TOKEN_PATTERN,
)

ACTIONS = ("comment", "todo", "todo_done", "stage")
KEY_PATTERN = re.compile(r"^[A-Za-z0-9_-]{16,64}$")
MAX_COMMENT = 5000  # characters after trimming (issue 13)
MAX_TITLE = 255  # crm.activity.todo.add `title` (api-reference/crm/timeline/activities/todo/crm-activity-todo-add.md)
MAX_DESCRIPTION = 5000
_STATUS_ID = re.compile(r"^[A-Za-z0-9_:.-]{1,50}$")
# Deadlines a person could mean; anything else is a typo or a forged value.
_EARLIEST_YEAR, _LATEST_YEAR = 2000, 2100


class ActionRefused(Exception):
    """A request refused by the app itself. `code` names the text the user reads;
    `field` the parameter at fault (for the page to point at), `detail` a portal's own words."""

    def __init__(self, code: str, status: int = 400, *, field: str | None = None,
                 detail: str | None = None, retry_after: float | None = None) -> None:
        super().__init__(code)
        self.code = code
        self.status = status
        self.field = field
        self.detail = detail
        self.retry_after = retry_after


@dataclass(frozen=True)
class ActionRequest:
    """One validated action: who asks (portal, token), on which lead, what, under which key."""

    member_id: str
    auth: str = field(repr=False)
    lead_id: int
    action: str
    params: dict[str, Any]
    key: str
    lang: str | None

    @property
    def fingerprint(self) -> str:
        """SHA-256 of what the request asks for — not who asks (the retry after refreshAuth
        carries a new token) and never stored in clear (the ledger keeps only this)."""
        canonical = json.dumps({"action": self.action, "lead": self.lead_id,
                                "params": self.params}, sort_keys=True, ensure_ascii=False)
        return hashlib.sha256(canonical.encode()).hexdigest()


def parse_action(body: Any) -> ActionRequest:
    """The validated request, or ActionRefused (400) naming what is wrong."""
    if not isinstance(body, dict):
        raise ActionRefused("invalid_json")
    member_id = _text(body, "member_id")
    if not MEMBER_ID_PATTERN.match(member_id):
        raise ActionRefused("invalid_request", field="member_id")
    auth = _text(body, "auth")
    if not TOKEN_PATTERN.match(auth):
        raise ActionRefused("invalid_request", field="auth")
    if body.get("placement") != LEAD_TAB:
        raise ActionRefused("invalid_request", field="placement")
    lead_id = _positive_int(body.get("id"), "id")
    key = _text(body, "key")
    if not KEY_PATTERN.match(key):
        raise ActionRefused("invalid_key", field="key")
    action = body.get("action")
    if action not in ACTIONS:
        raise ActionRefused("unknown_action", field="action")
    params = body.get("params")
    if not isinstance(params, dict):
        raise ActionRefused("invalid_request", field="params")
    lang = body.get("lang")
    lang = lang.strip().lower() if isinstance(lang, str) and LANG_PATTERN.match(lang.strip().lower()) else None
    return ActionRequest(member_id=member_id, auth=auth, lead_id=lead_id, action=action,
                         params=_PARAMS[action](params), key=key, lang=lang)


# --- per action ---------------------------------------------------------------------------

def _comment(params: dict[str, Any]) -> dict[str, Any]:
    text = params.get("text")
    if not isinstance(text, str) or not text.strip():
        raise ActionRefused("comment_empty", field="text")
    text = text.strip()
    if len(text) > MAX_COMMENT:
        raise ActionRefused("comment_too_long", field="text")
    return {"text": text}


def _todo(params: dict[str, Any]) -> dict[str, Any]:
    title = params.get("title")
    if not isinstance(title, str) or not title.strip():
        raise ActionRefused("title_empty", field="title")
    title = " ".join(title.split())
    if len(title) > MAX_TITLE:
        raise ActionRefused("title_too_long", field="title")
    deadline = params.get("deadline")
    if deadline is None or deadline == "":
        raise ActionRefused("deadline_missing", field="deadline")
    out: dict[str, Any] = {"title": title, "deadline": _deadline(deadline)}
    description = params.get("description")
    if description not in (None, ""):
        if not isinstance(description, str):
            raise ActionRefused("invalid_request", field="description")
        description = description.strip()
        if len(description) > MAX_DESCRIPTION:
            raise ActionRefused("description_too_long", field="description")
        if description:
            out["description"] = description
    responsible = params.get("responsible_id")
    if responsible not in (None, ""):
        out["responsible_id"] = _positive_int(responsible, "responsible_id")
    return out


def _todo_done(params: dict[str, Any]) -> dict[str, Any]:
    return {"activity_id": _positive_int(params.get("activity_id"), "activity_id")}


def _stage(params: dict[str, Any]) -> dict[str, Any]:
    status_id = params.get("status_id")
    if not isinstance(status_id, str) or not _STATUS_ID.match(status_id):
        raise ActionRefused("unknown_stage", field="status_id")
    return {"status_id": status_id}


_PARAMS = {"comment": _comment, "todo": _todo, "todo_done": _todo_done, "stage": _stage}


# --- values -------------------------------------------------------------------------------

def _text(body: dict[str, Any], name: str) -> str:
    value = body.get(name)
    return value.strip() if isinstance(value, str) else ""


def _positive_int(value: Any, name: str) -> int:
    if isinstance(value, bool):
        raise ActionRefused("invalid_request", field=name)
    if isinstance(value, str) and value.isdigit():
        value = int(value)
    if not isinstance(value, int) or not 0 < value < MAX_LEAD_ID:
        raise ActionRefused("invalid_request", field=name)
    return value


def _deadline(value: Any) -> str:
    """An ISO 8601 date-time with its UTC offset, as Bitrix24 takes it (ATOM); normalized."""
    if not isinstance(value, str) or len(value) > 40:
        raise ActionRefused("deadline_invalid", field="deadline")
    try:
        parsed = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        raise ActionRefused("deadline_invalid", field="deadline") from None
    # A time without an offset would be read in the portal's zone, not the viewer's.
    if parsed.tzinfo is None or parsed.utcoffset() is None:
        raise ActionRefused("deadline_invalid", field="deadline")
    if not _EARLIEST_YEAR <= parsed.year <= _LATEST_YEAR:
        raise ActionRefused("deadline_invalid", field="deadline")
    return parsed.replace(microsecond=0).isoformat()
