"""GET /readyz (alias /healthz) — does this instance have what a card view needs? GET /livez —
does the process answer? (load balancers, supervisors, operators)

A view reads the token row (the database) and takes a slot in the portal's bucket, which is a
*write* (on SQLite to a file of its own: services._bucket_engine), so both are checked: a
database that answers reads but a bucket file that is read-only or on a full disk fails every
view with 503, and health says so. Redis, where configured, is only a shortcut: the cache
fails open and the bucket falls back to the database (cache.FailOpenCache,
ratelimit.FailoverBucket), so a Redis outage is reported as ``"redis": "degraded"`` with 200
— views still work. Read from the shared breaker when it already knows Redis is failing, so
a hung Redis costs this check no time; otherwise the bucket probe (a PING with the client's
0.25 s timeouts) finds out.

Cheap and bounded: one ``SELECT 1``, one one-row upsert (or a PING), each under the engine's
and client's own timeouts.
"""

from flask import Blueprint, jsonify
from flask.typing import ResponseReturnValue
from sqlalchemy.exc import SQLAlchemyError

from leadcard.flows import services
from leadcard.storage import db

bp = Blueprint("health", __name__)


# Each database round trip of a health check may take this long (views allow 3 s): a load
# balancer's probe must get its answer well inside its own timeout even when the database
# went silent; a new connection's start-up is still bounded by connect_timeout (3 s).
HEALTH_ROUND_TRIP_SECONDS = 1.5


@bp.get("/livez")
def livez() -> ResponseReturnValue:
    """The process answers (for a supervisor's restart decision): nothing else is asked."""
    return jsonify(status="ok"), 200


@bp.get("/readyz")
@bp.get("/healthz")
def readyz() -> ResponseReturnValue:
    """What a view needs answers (for a load balancer's routing decision); `/healthz` is the
    same check under its older name."""
    svc = services.current()
    report: dict[str, str] = {}
    with db.round_trip_deadline(HEALTH_ROUND_TRIP_SECONDS):
        try:
            db.ping(svc.engine)
            report["database"] = "ok"
        except SQLAlchemyError:
            report["database"] = "unavailable"
        if report["database"] == "ok":
            try:
                svc.bucket.probe()
                report["bucket"] = "ok"
            except SQLAlchemyError:
                report["bucket"] = "unavailable"
        else:
            # Views fail already; a probe of the bucket would only add its own timeout.
            report["bucket"] = "not checked"
    if svc.redis is not None:
        report["redis"] = "ok" if svc.redis.healthy else "degraded"
    ok = report["database"] == "ok" and report["bucket"] == "ok"
    return jsonify(status="ok" if ok else "error", **report), 200 if ok else 503
