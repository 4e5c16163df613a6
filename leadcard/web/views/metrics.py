"""GET /metrics — the operator's Prometheus scrape (series: core/metrics.py).

Only with ``Authorization: Bearer $METRICS_TOKEN``: without METRICS_TOKEN the route does not
exist (404, the app's own not-found page), a missing or wrong token is 401. The figures are
the deployment's, never a portal's, and never cached on the way.
"""

from __future__ import annotations

import hmac

from flask import Blueprint, Response, abort, request

from leadcard.core import metrics
from leadcard.flows import services

bp = Blueprint("metrics", __name__)


def _bearer() -> str | None:
    """The request's bearer token, or None without a well-formed Authorization header."""
    scheme, _, token = request.headers.get("Authorization", "").strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


@bp.get("/metrics")
def scrape() -> Response:
    expected = services.current().settings.metrics_token
    if not expected:
        abort(404)
    given = _bearer()
    # Constant time: the comparison must not tell a prober how much of a guess was right.
    if given is None or not hmac.compare_digest(given.encode(), expected.encode()):
        return Response("unauthorized\n", status=401, mimetype="text/plain",
                        headers={"WWW-Authenticate": 'Bearer realm="metrics"',
                                 "Cache-Control": "no-store"})
    return Response(metrics.exposition(), status=200,
                    headers={"Content-Type": metrics.CONTENT_TYPE, "Cache-Control": "no-store"})
