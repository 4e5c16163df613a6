"""register_error_handlers(app): every failure becomes an in-frame page with the right status.

Never a framework error page, never a trace (marketplace rule:
market/preparing-to-publish/common-requirements.md; threats.md §4.1). Unexpected exceptions
are logged (redacted) with the request id, which the page shows as a support code.
"""

from __future__ import annotations

import logging

from flask import Flask, g, render_template, request
from sqlalchemy.exc import SQLAlchemyError
from werkzeug.exceptions import HTTPException

from leadcard.core import errors
from leadcard.flows import services
from leadcard.web import security
from leadcard.web.problems import problem_for

log = logging.getLogger(__name__)

_HTTP_CODES = {404: "not_found", 405: "method_not_allowed", 413: "too_large"}


def _render(exc: errors.LeadCardError | None, *, code: str | None = None,
            status: int | None = None):
    if getattr(g, "frame_origin", None) is None:
        security.set_frame_origin(security.claimed_origin())
    g.lang = getattr(g, "lang", None) or request.args.get("LANG") or "en"
    reconnect = None
    member_id = security.posted_value("member_id")
    if member_id.isalnum():
        reconnect = services.current().settings.url_for_handler(f"/reconnect?member_id={member_id}")
    problem = problem_for(exc, code=code, status=status,
                          request_id=getattr(g, "request_id", ""), reconnect_url=reconnect)
    g.problem_code = problem.code  # the view's outcome for the metrics (views/placement.py)
    if request.path == "/events":
        return {"status": "error", "error": problem.code}, problem.status
    response = render_template("error.html", problem=problem), problem.status
    if exc is not None and exc.retry_after:
        return response[0], problem.status, {"Retry-After": str(int(max(1, exc.retry_after)))}
    return response


def register_error_handlers(app: Flask) -> None:
    @app.errorhandler(errors.LeadCardError)
    def _family(exc: errors.LeadCardError):
        level = logging.WARNING if exc.status >= 500 else logging.INFO
        log.log(level, "%s %s: %s", request.method, request.path, exc)
        return _render(exc)

    @app.errorhandler(HTTPException)
    def _http(exc: HTTPException):
        status = exc.code or 500
        code = _HTTP_CODES.get(status, "bad_request" if 400 <= status < 500 else "internal")
        return _render(None, code=code, status=status)

    @app.errorhandler(SQLAlchemyError)
    def _database(exc: SQLAlchemyError):
        log.error("database error on %s: %s", request.path, type(exc).__name__)
        return _render(errors.DatabaseUnavailable())

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception):
        log.exception("unexpected error on %s %s", request.method, request.path)
        return _render(None, code="internal", status=500)
