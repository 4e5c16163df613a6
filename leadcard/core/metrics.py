"""The operator's metrics: every Prometheus series Lead Card exports, and the small functions
the layers above call to move them (GET /metrics renders them: web/views/metrics.py).

Correct under several gunicorn workers: gunicorn.conf.py gives each master a fresh
``PROMETHEUS_MULTIPROC_DIR`` before any worker starts, prometheus_client then keeps each
worker's values in files there, and `exposition()` sums them. Without that variable (the
Flask dev server, tests, the CLI) one process registry holds them.

Label values come from fixed sets or from the app's own code (REST method names): never a
portal, a user or an error text, so thousands of portals cost no more series than one
(per-portal figures come from the CLI and the REST log).
"""

from __future__ import annotations

import os
import re

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)
from prometheus_client import multiprocess as _multiprocess

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
CONTENT_TYPE = CONTENT_TYPE_LATEST

# A view is ~1 Bitrix24 round trip (tens to hundreds of ms) and has a 10 s budget.
_VIEW_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.2, 0.35, 0.5, 0.75, 1.0, 2.0, 3.5, 5.0, 10.0)
_UPSTREAM_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.2, 0.35, 0.5, 1.0, 2.0, 4.0, 6.0, 10.0)
_WAIT_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 3.0, 5.0)

VIEWS = Counter("leadcard_views_total", "Lead-tab views by outcome (the page shown).",
                ["outcome"])
VIEW_SECONDS = Histogram("leadcard_view_duration_seconds",
                         "Time to answer a lead-tab view, any outcome.", buckets=_VIEW_BUCKETS)
UPSTREAM = Counter("leadcard_upstream_requests_total",
                   "HTTP attempts to Bitrix24 (service rest|oauth) by method and outcome.",
                   ["service", "method", "outcome"])
UPSTREAM_SECONDS = Histogram("leadcard_upstream_duration_seconds",
                             "Duration of one HTTP attempt to Bitrix24.",
                             ["service", "method"], buckets=_UPSTREAM_BUCKETS)
TOKEN_REFRESHES = Counter("leadcard_token_refreshes_total",
                          "Calls to the OAuth server's refresh_token grant by result.",
                          ["result"])
RATE_LIMIT_WAITS = Counter("leadcard_rate_limit_waits_total",
                           "Requests that had to wait for a slot in the portal's bucket "
                           "(waited) or were refused the wait (refused: the busy page).",
                           ["result"])
RATE_LIMIT_WAIT_SECONDS = Histogram("leadcard_rate_limit_wait_seconds",
                                    "Time slept for a slot in the portal's bucket.",
                                    buckets=_WAIT_BUCKETS)
CACHE = Counter("leadcard_cache_requests_total",
                "Shared cache look-ups (dictionaries, user names) by result, per key.",
                ["result"])
ACTIONS = Counter("leadcard_actions_total", "Actions from the card by kind and outcome.",
                  ["kind", "outcome"])

# --- bounded label values -------------------------------------------------------------

# Bitrix24 error codes (compared case-insensitively, as bitrix24/rest.py does: mixed case on
# the wire, settings/how-to-call-rest-api/index.md) and the transport outcomes of observe.py,
# folded into a fixed set; any other code is "error".
_UPSTREAM_OUTCOMES = {
    "": "ok",
    "read_timeout": "timeout",
    "unreachable": "unreachable",
    "transport_failed": "transport_failed",
    "expired_token": "expired_token",
    "invalid_token": "invalid_token",
    "no_auth_found": "invalid_token",
    "invalid_grant": "invalid_grant",
    "access_denied": "access_denied",
    "user_access_error": "access_denied",
    "insufficient_scope": "insufficient_scope",
    "query_limit_exceeded": "rate_limited",
    "overload_limit": "rate_limited",
    "operation_time_limit": "rate_limited",
    "not_found": "not_found",
    "error_method_not_found": "method_not_found",
    "payment_required": "payment_required",
    "internal_server_error": "server_error",
}
# REST method names come from this app's own code; the pattern keeps anything odd out.
_METHOD = re.compile(r"[a-z][a-z0-9_.]{0,63}", re.IGNORECASE)
ACTION_KINDS = frozenset({"comment", "todo", "todo_done", "stage"})
ACTION_OUTCOMES = frozenset({"ok", "invalid", "denied", "expired_token", "replayed",
                             "refused", "unknown", "in_progress", "rate_limited",
                             "not_installed", "error"})


def upstream_outcome(http_status: int | None, error_code: str) -> str:
    """The fixed-set outcome of one attempt."""
    outcome = _UPSTREAM_OUTCOMES.get(error_code.strip().lower())
    if outcome is not None:
        if outcome == "ok" and http_status is not None and http_status >= 400:
            return "http_5xx" if http_status >= 500 else "http_4xx"
        return outcome
    return "error"


def _method(method: str) -> str:
    return method if _METHOD.fullmatch(method) else "other"


# --- what the layers call -------------------------------------------------------------

def observe_view(outcome: str, seconds: float) -> None:
    """One lead-tab view ended with `outcome` (a fixed-set value: web/views/placement.py)."""
    VIEWS.labels(outcome).inc()
    VIEW_SECONDS.observe(seconds)


def observe_upstream(service: str, method: str, http_status: int | None, error_code: str,
                     seconds: float) -> None:
    """One HTTP attempt to Bitrix24 is over (the UpstreamCall observer calls this)."""
    service = service if service in ("rest", "oauth") else "other"
    name = _method(method)
    outcome = upstream_outcome(http_status, error_code)
    UPSTREAM.labels(service, name, outcome).inc()
    UPSTREAM_SECONDS.labels(service, name).observe(seconds)
    if name == "oauth.refresh_token":
        TOKEN_REFRESHES.labels(outcome).inc()


def observe_slot_wait(seconds: float) -> None:
    """A request slept `seconds` for its slot in the portal's bucket."""
    RATE_LIMIT_WAITS.labels("waited").inc()
    RATE_LIMIT_WAIT_SECONDS.observe(seconds)


def observe_slot_refused() -> None:
    """The slot was further off than the view may wait: the busy page."""
    RATE_LIMIT_WAITS.labels("refused").inc()


def observe_cache(hits: int, misses: int) -> None:
    """Shared-cache look-ups: `hits` keys found, `misses` not (or the cache unavailable)."""
    if hits:
        CACHE.labels("hit").inc(hits)
    if misses:
        CACHE.labels("miss").inc(misses)


def observe_action(kind: str, outcome: str) -> None:
    """One action from the card (POST /actions, issue 13) ended with `outcome`; values
    outside ACTION_KINDS / ACTION_OUTCOMES count as "other" / "error"."""
    ACTIONS.labels(kind if kind in ACTION_KINDS else "other",
                   outcome if outcome in ACTION_OUTCOMES else "error").inc()


def exposition() -> bytes:
    """Every series in Prometheus text format: summed over the workers' files under
    gunicorn (multiprocess mode), this process's registry otherwise."""
    if os.environ.get(MULTIPROC_ENV):
        registry = CollectorRegistry()
        _multiprocess.MultiProcessCollector(registry)
        return generate_latest(registry)
    return generate_latest(REGISTRY)


def mark_process_dead(pid: int) -> None:
    """gunicorn's child_exit: drop a dead worker's live-gauge files (counters stay summed)."""
    if os.environ.get(MULTIPROC_ENV):
        _multiprocess.mark_process_dead(pid)
