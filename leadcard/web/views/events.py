"""POST /events — Bitrix24 app events (ONAPPINSTALL, ONAPPUNINSTALL), JSON answers."""

import hashlib
import logging

from flask import Blueprint, jsonify, request
from flask.typing import ResponseReturnValue

from leadcard.bitrix24.payloads import parse_event
from leadcard.core import errors
from leadcard.flows import lifecycle, services

bp = Blueprint("events", __name__)
log = logging.getLogger(__name__)


@bp.post("/events")
def receive() -> ResponseReturnValue:
    # The exact body, for the repeat filter (event_log.py); read before the form is parsed.
    body_sha256 = hashlib.sha256(request.get_data(cache=True)).hexdigest()
    try:
        event = parse_event(request.form)
        outcome = lifecycle.handle_event(services.current(), event, body_sha256,
                                         request.remote_addr or "")
    except errors.TooManyAttempts as exc:
        log.warning("event refused: %s", exc)
        return (jsonify(status="error", error=exc.code), exc.status,
                {"Retry-After": str(int(exc.retry_after or 1))})
    except errors.BadPayload as exc:
        log.warning("event refused: %s", exc)
        return jsonify(status="error", error="bad_request", detail=str(exc)), 400
    except errors.VerificationFailed as exc:
        log.warning("event refused: %s", exc)
        # threats.md F22: reject, no side effects, no detail for the caller.
        return jsonify(status="error", error="invalid_application_token"), 401
    log.info("event %s for %s: %s", event.name, event.member_id, outcome)
    return jsonify(status="ok", result=outcome), 200
