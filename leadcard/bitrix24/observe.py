"""What every outbound call to Bitrix24 reports once it is over: the seam for the REST log
and the metrics.

`RestClient` (portal REST) and `OAuthClient` (token endpoint, `app.info`) hand one
`UpstreamCall` per HTTP attempt to each observer they were built with. Observers run on
the caller's thread right after the answer (or the failure) and must be cheap and must
not raise: a failing observer is logged and ignored, never the view's failure.

`UpstreamCall.params` and `.response` are the raw request parameters and answer bytes,
secrets included (the access token as `auth`, the client secret, refresh tokens in a
token answer): an observer that keeps them redacts them first.

The portal of an OAuth call is not always known to the OAuth client (a refresh spends a
token, the answer names the portal): `portal(member_id)` binds it for the calls made
inside, and an answer that names a `member_id` fills it in too.
"""

from __future__ import annotations

import contextlib
import contextvars
import logging
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

log = logging.getLogger(__name__)

# Outcome of an attempt that got no HTTP answer (UpstreamCall.error_code).
READ_TIMEOUT = "read_timeout"
UNREACHABLE = "unreachable"
TRANSPORT_FAILED = "transport_failed"


@dataclass(frozen=True)
class UpstreamCall:
    """One HTTP attempt to Bitrix24.

    service: "rest" (a portal's REST) or "oauth" (the OAuth server).
    method: the REST method ("crm.lead.get", "batch", "app.info") or, for the token
        endpoint, "oauth.refresh_token" / "oauth.authorization_code".
    http_status: None when no answer came (see `error_code`).
    error_code: Bitrix24's error code as sent ("ACCESS_DENIED", "expired_token"), one of
        the transport outcomes above, or "" for a success.
    started_at: wall-clock start (epoch seconds); duration: seconds, monotonic.
    """

    service: str
    member_id: str | None
    method: str
    params: Mapping[str, Any]
    http_status: int | None
    error_code: str
    started_at: float
    duration: float
    response: bytes


Observer = Callable[[UpstreamCall], None]

_portal: contextvars.ContextVar[str | None] = contextvars.ContextVar("leadcard_portal",
                                                                    default=None)


@contextlib.contextmanager
def portal(member_id: str | None) -> Iterator[None]:
    """Calls made inside belong to `member_id` (for OAuth calls, which do not name it)."""
    token = _portal.set(member_id)
    try:
        yield
    finally:
        _portal.reset(token)


def current_portal() -> str | None:
    return _portal.get()


def notify(observers: Sequence[Observer], call: UpstreamCall) -> None:
    """Hand `call` to every observer; one that fails is logged, never raised."""
    for observer in observers:
        try:
            observer(call)
        except Exception:  # noqa: BLE001 - an observer must never fail a view
            log.exception("upstream-call observer %r failed", observer)


def error_code_of(body: Any) -> str:
    """The error code of a parsed Bitrix24 answer, "" when it is not an error envelope."""
    if isinstance(body, Mapping) and body.get("error") is not None:
        return str(body.get("error") or "")
    return ""
