"""Bitrix24 REST for one portal: `call`, `batch`, errors, limits, retries.

The only module that builds portal REST URLs. Every request:
- goes to the `client_endpoint` the caller got from the token store (never a posted DOMAIN);
- carries the token as `auth` in a JSON POST body, never in the URL (threats.md §2.2);
- waits for a slot in the portal's shared leaky bucket first (settings/performance/limits.md:
  2 req/s with a burst of 50 per portal, shared by every caller from our IP);
- has explicit connect/read timeouts bounded by the caller's deadline;
- does not follow redirects (a moved portal answers 302 — see `PortalRedirect`).

Errors become the family in `errors.py`. Retries are for reads only: a 5xx or connection
failure gets one retry; a read timeout none. Requests go through the injected
`http.Transport` (the real one is urllib3; tests use a fake), so this policy is tested
without sockets (tests/unit/test_flow_rest.py).

`RestClient` knows nothing of tokens' lives or portal moves: `session.PortalSession` binds
it to one portal and one credential and owns that policy.

Limits (issue 10, defect 6):
- one deadline (one view) spends at most `MAX_SLOT_WAIT` in total waiting for bucket slots,
  over all its requests. A view that slept most of its budget there held a gunicorn thread
  while the queue behind it grew (views took 20 s on a host under a spent limit); past that
  bound the view answers the designed busy page at once (`errors.RateLimited`: 503 with
  `Retry-After` = when a slot is free);
- a `QUERY_LIMIT_EXCEEDED` from Bitrix24 pauses the portal in the shared bucket for every
  worker and host (`Bucket.pause`: 0.5 s, then 1 s, or the answer's `Retry-After`): the
  views that follow wait for the pause when it fits their slot allowance, else get the busy
  page, with no upstream request. The refused request itself (never executed, so safe even
  for writes) is retried in its turn after the pause, at most 3 attempts (threats.md F3).
  Before, every view backed off on its own while all the others kept sending, 3 requests
  per refused view (992 refusals in 30 s with the app's rate above the portal's);
- a request that reserved its slot before such a pause and slept into it does not go either.
"""

from __future__ import annotations

import json
import logging
import random
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, urljoin, urlsplit

from leadcard.bitrix24 import observe
from leadcard.bitrix24.http import (
    ConnectFailed,
    ReadTimedOut,
    Reply,
    Transport,
    TransportFailed,
)
from leadcard.core import errors, metrics
from leadcard.core.ratelimit import RateLimited as BucketFull

log = logging.getLogger(__name__)

# The longest one view (one Deadline) waits for bucket slots, all its requests together. At
# the documented 2 req/s that is four requests queued ahead; a view needs one or two, so a
# slot further away means the limit is spent for longer than a user should stare at a
# spinner: busy page now, well inside the 10 s view budget, instead of a sleeping thread
# while gunicorn's queue fills.
MAX_SLOT_WAIT = 2.0
# The portal's pause after its first QUERY_LIMIT_EXCEEDED when the answer names none
# (Bitrix24 sends no Retry-After), doubled for the request's next refusal: its counter is
# full, and at the slowest documented drain (2 req/s; settings/performance/limits.md) 0.5 s
# frees one request. 0.5 s + 1 s fit MAX_SLOT_WAIT, so the refused request and the views of
# that moment wait for it rather than fail. A Retry-After is honoured up to MAX_PAUSE.
LIMIT_PAUSE = 0.5
MAX_PAUSE = 60.0
# A request that slept for its slot still goes when a pause ends within this much: clocks of
# the app host and the bucket's backend (Redis TIME, database clock) disagree by milliseconds.
PAUSE_TOLERANCE = 0.05


class PortalRedirect(errors.LeadCardError):
    """The portal answered 3xx: it moved. `location` is NOT trusted until the OAuth server
    confirms the new endpoint (threats.md R17; how-to-call-rest-api/change-domen.md)."""

    code = "portal_redirect"
    status = 409

    def __init__(self, location: str) -> None:
        super().__init__("portal answered a redirect")
        self.location = location


# Error codes, compared case-insensitively (settings/how-to-call-rest-api/index.md: mixed case on the wire).
_CODES: dict[str, type[errors.LeadCardError]] = {
    "expired_token": errors.ExpiredToken,
    "invalid_token": errors.InvalidToken,
    "no_auth_found": errors.InvalidToken,
    "query_limit_exceeded": errors.RateLimited,
    "overload_limit": errors.RateLimited,
    "operation_time_limit": errors.OperationTimeLimit,
    "payment_required": errors.PaymentRequired,
    "insufficient_scope": errors.InsufficientScope,
    "method_confirm_waiting": errors.InsufficientScope,
    "user_access_error": errors.UserAccessDenied,
    "authorization_error": errors.UserAccessDenied,
    "access_denied": errors.AccessDenied,
    "invalid_credentials": errors.AccessDenied,
    "portal_deleted": errors.PortalClosed,
    "application_not_found": errors.AppNotInstalled,
    "error_oauth": errors.AppNotInstalled,
    "not_installed": errors.AppNotInstalled,
    "invalid_client": errors.AppNotInstalled,
    "not_found": errors.LeadNotFound,
    "internal_server_error": errors.PortalError,
    "error_unexpected_answer": errors.PortalError,
}

# Legacy CRM methods answer an empty code and put the meaning in the text
# (api-reference/crm/leads/crm-lead-get.md, "Error Handling").
_DESCRIPTIONS: dict[str, type[errors.LeadCardError]] = {
    "not found": errors.LeadNotFound,
    "access denied": errors.AccessDenied,
    "id is not defined or invalid": errors.LeadNotFound,
}


def error_from(code: str, description: str, http_status: int) -> errors.LeadCardError:
    """Map one Bitrix24 error envelope to our error family."""
    cls = _CODES.get(code.strip().lower())
    if cls is None and not code.strip():
        cls = _DESCRIPTIONS.get(description.strip().rstrip(".!").lower())
    if cls is None:
        # Unknown codes: never shown raw to the user; logged by code for the operator.
        cls = errors.PortalError
    failure = cls(f"Bitrix24 error {code or '(empty)'}: {description[:120]}")
    failure.upstream = (code.strip(), description.strip()[:500], http_status)
    return failure


def php_query(params: Mapping[str, Any]) -> str:
    """Encode nested params the way PHP's http_build_query does (`a[b][0]=c`).

    Batch commands are `method?query` strings (settings/how-to-call-rest-api/batch.md);
    `$result[...]` back-references are kept readable, the rest is percent-encoded.
    """
    pairs: list[tuple[str, str]] = []

    def walk(prefix: str, value: Any) -> None:
        if isinstance(value, Mapping):
            for k, v in value.items():
                walk(f"{prefix}[{k}]" if prefix else str(k), v)
        elif isinstance(value, (list, tuple)):
            for i, v in enumerate(value):
                walk(f"{prefix}[{i}]", v)
        elif value is not None:
            pairs.append((prefix, str(value)))

    walk("", params)
    safe = "[]$"
    return "&".join(f"{quote(k, safe=safe)}={quote(v, safe=safe)}" for k, v in pairs)


@dataclass
class BatchResult:
    """Per-command results and errors of one `batch` call, keyed by command name."""

    results: dict[str, Any] = field(default_factory=dict)
    errors: dict[str, errors.LeadCardError] = field(default_factory=dict)

    def get(self, key: str) -> Any:
        """The command's result, or raise its error."""
        if key in self.errors:
            raise self.errors[key]
        return self.results.get(key)


@dataclass
class Deadline:
    """Absolute end of the time budget of one user request (monotonic clock)."""

    at: float
    slot_waited: float = 0.0  # seconds spent waiting for bucket slots (MAX_SLOT_WAIT caps it)

    @classmethod
    def after(cls, seconds: float) -> Deadline:
        return cls(time.monotonic() + seconds)

    def remaining(self) -> float:
        return self.at - time.monotonic()


class RestClient:
    """Calls Bitrix24 REST methods for any portal, through the shared bucket."""

    def __init__(
        self,
        transport: Transport,
        bucket: Any | None,
        *,
        connect_timeout: float,
        read_timeout: float,
        allow_http: bool,
        sleep: Callable[[float], None] = time.sleep,
        observers: Sequence[observe.Observer] = (),
    ) -> None:
        self._transport = transport
        self.observers = list(observers)  # told of every attempt (observe.py: REST log, metrics)
        self._bucket = bucket
        self._sleep = sleep  # injectable so the retry policy is tested without waiting
        self._connect_timeout = connect_timeout
        self._read_timeout = read_timeout
        self._schemes = ("https", "http") if allow_http else ("https",)

    def call(
        self,
        endpoint: str,
        method: str,
        params: Mapping[str, Any] | None,
        access_token: str,
        *,
        bucket_key: str,
        deadline: Deadline,
        idempotent: bool = True,
    ) -> Any:
        """POST one method; return its `result` or raise from the error family."""
        body = self._send(endpoint, method, dict(params or {}), access_token,
                          bucket_key=bucket_key, deadline=deadline, idempotent=idempotent)
        return body.get("result")

    def batch(
        self,
        endpoint: str,
        commands: Mapping[str, tuple[str, Mapping[str, Any]] | str],
        access_token: str,
        *,
        bucket_key: str,
        deadline: Deadline,
    ) -> BatchResult:
        """Run up to 50 read commands in one request (halt=0: collect per-command errors)."""
        if len(commands) > 50:
            raise ValueError("a batch holds at most 50 commands")
        cmd = {
            key: value if isinstance(value, str) else f"{value[0]}?{php_query(value[1])}"
            for key, value in commands.items()
        }
        body = self._send(endpoint, "batch", {"halt": 0, "cmd": cmd}, access_token,
                          bucket_key=bucket_key, deadline=deadline, idempotent=True)
        outer = body.get("result") or {}
        results = _as_map(outer.get("result"))
        failures = _as_map(outer.get("result_error"))
        out = BatchResult(results=results)
        for key, err in failures.items():
            if isinstance(err, Mapping):
                out.errors[key] = error_from(
                    str(err.get("error") or ""), str(err.get("error_description") or ""), 400
                )
        return out

    # --- transport ------------------------------------------------------------------

    def _send(
        self,
        endpoint: str,
        method: str,
        params: dict[str, Any],
        access_token: str,
        *,
        bucket_key: str,
        deadline: Deadline,
        idempotent: bool,
    ) -> dict[str, Any]:
        url = self._url(endpoint, method)
        payload = dict(params, auth=access_token)
        attempt, retried_failure = 0, False
        while True:
            attempt += 1
            self._wait_for_slot(bucket_key, deadline)
            try:
                return self._post_once(url, method, payload, bucket_key, deadline)
            except errors.RateLimited as exc:
                # Bitrix24's counter for this portal is full: pause it for every worker and
                # host, 0.5 s then 1 s or what the answer says (threats.md F3). No jitter:
                # the shared bucket, not chance, orders the requests that follow the pause.
                pause = min(exc.retry_after or LIMIT_PAUSE * 2 ** (attempt - 1), MAX_PAUSE)
                exc.retry_after = max(pause, 1.0)
                if self._bucket is not None:
                    self._bucket.pause(bucket_key, pause)
                # Never executed by Bitrix24, so safe to repeat even for writes: at most 3
                # attempts, each in its turn after the pause (_wait_for_slot refuses when
                # that is beyond the view's slot-wait allowance).
                if attempt >= 3 or deadline.remaining() < pause + 0.5:
                    raise
                log.info("QUERY_LIMIT_EXCEEDED on %s: portal paused %.2fs", method, pause)
                if self._bucket is None:
                    self._sleep(pause)
            except (errors.PortalError, _ConnectFailed) as exc:
                pause = random.uniform(0.1, 0.3)  # noqa: S311 - jitter, not a secret
                if not idempotent or retried_failure or deadline.remaining() < pause + 1.0:
                    if isinstance(exc, _ConnectFailed):
                        unreachable = errors.PortalError("portal unreachable")
                        unreachable.maybe_executed = exc.maybe_sent
                        raise unreachable from None
                    raise
                retried_failure = True
                self._sleep(pause)

    def _wait_for_slot(self, key: str, deadline: Deadline) -> None:
        """Take the portal's next slot if the deadline's slot waiting stays within
        MAX_SLOT_WAIT, and sleep till then.

        Raises the busy page's `errors.RateLimited` (with `retry_after`) when it is further,
        or when Bitrix24 paused the portal while this request slept for its slot.
        """
        if self._bucket is None:
            return
        max_wait = max(min(MAX_SLOT_WAIT - deadline.slot_waited, deadline.remaining() - 1.0), 0.0)
        try:
            delay = self._bucket.acquire(key, max_wait=max_wait)
        except BucketFull as exc:
            metrics.observe_slot_refused()
            raise errors.RateLimited("client-side bucket full", retry_after=exc.retry_after) from None
        if delay > 0:
            deadline.slot_waited += delay
            metrics.observe_slot_wait(delay)
            self._sleep(delay)
            # Only a request that slept can have been overtaken by a pause (one extra read,
            # only while the portal's limit is the bottleneck).
            left = self._bucket.paused(key)
            if left > PAUSE_TOLERANCE:
                raise errors.RateLimited("portal paused after QUERY_LIMIT_EXCEEDED",
                                         retry_after=left)

    def _post_once(self, url: str, method: str, payload: dict[str, Any], member_id: str,
                   deadline: Deadline) -> dict[str, Any]:
        remaining = deadline.remaining()
        if remaining <= 0.05:
            raise errors.PortalTimeout("no time left in the budget")
        started, clock = time.time(), time.monotonic()

        def report(status: int | None, code: str, body: bytes = b"") -> None:
            if self.observers:
                observe.notify(self.observers, observe.UpstreamCall(
                    "rest", member_id, method, payload, status, code, started,
                    time.monotonic() - clock, body))

        try:
            reply = self._transport.post(
                url,
                json.dumps(payload).encode(),
                _JSON_HEADERS,
                connect_timeout=min(self._connect_timeout, remaining),
                read_timeout=min(self._read_timeout, remaining),
            )
        except ReadTimedOut:
            # Sent, unanswered: Bitrix24 may still execute it. Never retried.
            report(None, observe.READ_TIMEOUT)
            raise _maybe_executed(errors.PortalTimeout("read timeout")) from None
        except ConnectFailed as exc:
            # Refused, unresolvable, connect timeout, dropped before an answer: retry once.
            report(None, observe.UNREACHABLE)
            raise _ConnectFailed(maybe_sent=exc.maybe_sent) from None
        except TransportFailed as exc:
            report(None, observe.TRANSPORT_FAILED)
            raise _maybe_executed(errors.PortalError(str(exc) or "transport failed")) from None
        try:
            return self._parse(reply)
        except errors.LeadCardError as exc:
            # An unreadable answer or a 5xx is no proof the method did not run; the limit
            # refusals (503 QUERY_LIMIT_EXCEEDED, OPERATION_TIME_LIMIT) are: never executed.
            refused = isinstance(exc, (errors.RateLimited, errors.OperationTimeLimit))
            if not isinstance(exc, PortalRedirect) and not refused and (
                    exc.upstream is None or reply.status >= 500):
                exc.maybe_executed = True
            raise
        finally:
            report(reply.status, _error_code(reply.body), reply.body)

    def _parse(self, reply: Reply) -> dict[str, Any]:
        status = reply.status
        if 300 <= status < 400:
            raise PortalRedirect(reply.headers.get("location", ""))
        try:
            body = json.loads(reply.body)
        except ValueError:
            # An HTML error page, a proxy's 502, a truncated body (_includes/system-errors.md tail):
            # never echo it, never parse it further.
            raise errors.PortalError(f"non-JSON answer, HTTP {status}") from None
        if not isinstance(body, dict):
            raise errors.PortalError(f"unexpected JSON, HTTP {status}")
        if "error" in body and body.get("error") is not None:
            failure = error_from(
                str(body.get("error") or ""),
                str(body.get("error_description") or ""),
                status,
            )
            if isinstance(failure, errors.RateLimited):
                failure.retry_after = _retry_after(reply.headers.get("retry-after", ""))
            raise failure
        if status >= 500:
            raise errors.PortalError(f"HTTP {status}")
        return body

    def _url(self, endpoint: str, method: str) -> str:
        parts = urlsplit(endpoint)
        if parts.scheme not in self._schemes or not parts.hostname:
            raise errors.VerificationFailed("stored endpoint has an unusable scheme")
        if not endpoint.endswith("/"):
            endpoint += "/"
        return urljoin(endpoint, method)


class _ConnectFailed(Exception):
    """Connection could not be made (refused, DNS, connect timeout) or dropped before an
    answer: safe to retry once for a read; `maybe_sent` says a write may have run."""

    def __init__(self, *, maybe_sent: bool = False) -> None:
        super().__init__("connect failed")
        self.maybe_sent = maybe_sent


def _maybe_executed(exc: errors.LeadCardError) -> errors.LeadCardError:
    exc.maybe_executed = True
    return exc


def _as_map(value: Any) -> dict[str, Any]:
    # Empty maps arrive as [] and integer-keyed maps as lists (settings/how-to-call-rest-api/batch.md).
    if isinstance(value, Mapping):
        return dict(value)
    if isinstance(value, list):
        return {str(i): v for i, v in enumerate(value)}
    return {}


def _error_code(raw: bytes) -> str:
    """The answer's Bitrix24 error code for the observers ("" for a success). The body is
    parsed a second time only when it mentions `"error"` at all: rare in a success, so a
    warm view pays nothing for it."""
    if b'"error"' not in raw:
        return ""
    try:
        return observe.error_code_of(json.loads(raw))
    except ValueError:
        return ""


def _retry_after(header: str) -> float | None:
    try:
        return float(header)
    except ValueError:
        return None


_JSON_HEADERS = {"Content-Type": "application/json", "Accept": "application/json"}
