"""Response envelopes and the error catalogue of the simulated Bitrix24.

Owns the exact JSON shapes: the REST success envelope ``{"result", "time"}`` with
the "Time Object", the REST error body ``{"error", "error_description"}`` and the
default HTTP status / description for every error code the simulator can emit
(api-reference/data-types.md-c.6, b.6; payloads/rest_error_*.json, token_error_*.json).
"""

from __future__ import annotations

import json
import time
from datetime import datetime, timedelta, timezone
from typing import Any

from flask import Response

# REST errors: code -> (HTTP status, description).  Statuses follow the docs
# (_includes/system-errors.md, settings/oauth/error-codes.md) where they state one,
# otherwise what the official SDKs' fixtures show.  Where the
# sources conflict the choice is noted.
REST_ERRORS: dict[str, tuple[int, str]] = {
    "expired_token": (401, "The access token provided has expired."),
    "invalid_token": (401, "Unable to get application by token"),
    "NO_AUTH_FOUND": (401, "Wrong authorization data"),
    # RD says 403, PYSDK's integration tests observed 401 for a real webhook call.
    "insufficient_scope": (401, "The request requires higher privileges than provided by the access token"),
    "INVALID_CREDENTIALS": (401, "Invalid request credentials"),
    "ACCESS_DENIED": (403, "Access denied!"),
    "user_access_error": (403, "The user does not have access to the application."),
    "WRONG_AUTH_TYPE": (403, "Current authorization type is denied for this method Application context required"),
    "QUERY_LIMIT_EXCEEDED": (503, "Too many requests"),
    "OVERLOAD_LIMIT": (503, "REST API is blocked due to overload."),
    "OPERATION_TIME_LIMIT": (429, "Method is blocked due to operation time limit."),
    "INTERNAL_SERVER_ERROR": (500, "Internal server error"),
    "ERROR_UNEXPECTED_ANSWER": (500, "Server returned an unexpected response."),
    # RD system-errors.md says 500; PYSDK's class says 410.  We follow RD.
    "PORTAL_DELETED": (500, "Portal was deleted"),
    "ERROR_METHOD_NOT_FOUND": (404, "Method not found!"),
    "ERROR_BATCH_LENGTH_EXCEEDED": (400, "Max batch length exceeded"),
    "ERROR_BATCH_METHOD_NOT_ALLOWED": (405, "Method is not allowed for batch usage"),
    "APPLICATION_NOT_FOUND": (401, "Application not found"),
    "ERROR_OAUTH": (401, "Application not installed"),
    "authorization_error": (401, "Unable to authorize user"),
    "PAYMENT_REQUIRED": (401, "Subscription has been ended"),
    "METHOD_CONFIRM_WAITING": (401, "Waiting for confirmation"),
    "ERROR_EVENT_NOT_FOUND": (400, "Event not found"),
    "ERROR_HANDLER_ALREADY_EXIST": (400, "Handler already exists!"),
    "ERROR_PLACEMENT_NOT_FOUND": (400, "Placement not found"),
    "ERROR_ARGUMENT": (200, "Argument is null or empty"),
}

# Token-endpoint errors.  Statuses are UNCONFIRMED in the docs (settings/oauth/error-codes.md / i.2).
# We follow the PYSDK classes, whose integration tests assert the status a real
# oauth.bitrix24.tech returned: wrong client_id -> 200 "wrong_client", wrong secret
# -> 400 "invalid_client", bad refresh token -> 400 "invalid_grant".
# PAYMENT_REQUIRED has no evidence at all; we answer 400 like the other OAuth
# grant errors (the app must key on the code, never on the status).
# Bodies without error_description mirror payloads/token_error_*.pysdk_docstring.json.
OAUTH_ERRORS: dict[str, tuple[int, str | None]] = {
    "invalid_grant": (400, None),
    "invalid_client": (400, None),
    "wrong_client": (200, None),
    "invalid_request": (400, 'No "refresh_token" parameter found'),
    "unsupported_grant_type": (400, "The grant type is not supported"),
    "PAYMENT_REQUIRED": (400, "Payment required"),
    "NOT_INSTALLED": (401, "Application not installed"),
    "NO_AUTH_FOUND": (401, "Wrong authorization data"),
    "INVALID_SCOPE": (400, "Given scope exceeds permissions associated with given grant"),
    "insufficient_scope": (400, "The request requires higher privileges than provided by the access token"),
    "INTERNAL_SERVER_ERROR": (500, "Internal server error"),
}


class RestError(Exception):
    """A Bitrix24 REST error; rendered as ``{"error", "error_description"}``."""

    def __init__(self, code: str, description: str | None = None, status: int | None = None,
                 extra: dict | None = None):
        default_status, default_desc = REST_ERRORS.get(code, (400, ""))
        self.code = code
        self.description = default_desc if description is None else description
        self.status = default_status if status is None else status
        self.extra = extra or {}
        super().__init__(f"{code}: {self.description}")

    def body(self) -> dict:
        out = {"error": self.code, "error_description": self.description}
        out.update(self.extra)
        return out


def crm_error(description: str) -> RestError:
    """Legacy CRM methods answer with an empty code (api-reference/crm/leads/crm-lead-get.md), HTTP 400."""
    return RestError("", description, 400)


def json_response(payload: Any, status: int = 200, headers: dict | None = None) -> Response:
    # Bitrix24 escapes "/" as "\/" (PHP json_encode default); we do not, JSON-wise
    # both are the same string.
    body = json.dumps(payload, ensure_ascii=False)
    resp = Response(body, status=status, mimetype="application/json")
    resp.headers["Content-Type"] = "application/json; charset=utf-8"
    for k, v in (headers or {}).items():
        resp.headers[k] = v
    return resp


def tz(offset_hours: int) -> timezone:
    return timezone(timedelta(hours=offset_hours))


def iso(ts: float, offset_hours: int = 0) -> str:
    """ISO-8601 with a numeric offset, no fractions: ``2024-05-23T18:18:25+02:00``."""
    return datetime.fromtimestamp(int(ts), tz(offset_hours)).isoformat()


def time_object(start: float, finish: float | None = None, offset_hours: int = 0,
                operating: float | None = None, operating_reset_at: int | None = None) -> dict:
    """The REST "Time Object" (RD api-reference/data-types.md; payloads/time_object_with_operating.docs.json)."""
    finish = time.time() if finish is None else finish
    out: dict[str, Any] = {
        "start": start,
        "finish": finish,
        "duration": finish - start,
        "processing": max(0.0, (finish - start) * 0.8),
        "date_start": iso(start, offset_hours),
        "date_finish": iso(finish, offset_hours),
    }
    if operating_reset_at is not None:
        out["operating_reset_at"] = operating_reset_at
    if operating is not None:
        out["operating"] = operating
    return out
