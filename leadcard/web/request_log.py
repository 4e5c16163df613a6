"""With `LOG_FORMAT=json`, one summary record per request: route, method, status, duration and
the portal's `member_id` (an identifier, never a token), for log pipelines and per-portal
questions without per-portal metrics. In the text format gunicorn's access log says this
already, so nothing is added there."""

from __future__ import annotations

import logging
import time

from flask import Flask, Response, g, request

from leadcard.web import security

log = logging.getLogger("leadcard.web.requests")


def _member_id() -> str | None:
    """The portal the request names, if it names one plainly (form, query or event auth)."""
    candidates = (request.args.get("member_id"), security.posted_value("member_id"),
                  security.posted_value("auth[member_id]"))
    for value in candidates:
        if value and value.isalnum() and len(value) <= 64:
            return value
    return None


def init_app(app: Flask) -> None:
    @app.before_request
    def _started() -> None:
        g.request_started = time.perf_counter()

    @app.after_request
    def _summary(response: Response) -> Response:
        started = getattr(g, "request_started", None)
        duration_ms = round((time.perf_counter() - started) * 1000, 1) if started else None
        rule = request.url_rule.rule if request.url_rule is not None else "(no route)"
        log.info("%s %s %s", request.method, rule, response.status_code, extra={
            "member_id": _member_id(), "route": rule, "method": request.method,
            "status": response.status_code, "duration_ms": duration_ms,
        })
        return response
