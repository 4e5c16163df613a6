"""Fault injection, latency and the leaky-bucket rate limit.

Owns the mechanics that make the simulator misbehave on purpose:

* ``Fault``: one injected failure for a target ("*", a portal name or "oauth") and
  a method ("*", a REST method, "token", "app.info"), of kind ``error`` (JSON
  error body with a status), ``html`` (an HTML error page, as a proxy in front of
  a portal would send), ``drop`` (close the connection without answering) or
  ``hang`` (sleep N seconds, then answer normally) or ``hang_after`` (run the method, so a
  write is applied and logged, then sleep N seconds before answering: the client's timeout
  fires although the write happened), limited to the next ``count``
  matching requests and/or firing with ``probability``;
* ``LeakyBucket``: the cloud request-rate limit, 2 req/s drain and burst 50 for
  non-Enterprise plans (RD settings/performance/limits.md; settings/performance/limits.md);
* socket helpers: detect that the client went away while we were "slow", and
  drop a connection on purpose.
"""

from __future__ import annotations

import itertools
import random
import socket
import threading
import time
from dataclasses import asdict, dataclass, field
from typing import Any

from .envelope import OAUTH_ERRORS, REST_ERRORS

FAULT_KINDS = ("error", "html", "drop", "hang", "hang_after")

DEFAULT_HTML = (
    "<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n"
    "<center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>nginx</center>\r\n"
    "</body>\r\n</html>\r\n"
)

_ids = itertools.count(1)


@dataclass
class Fault:
    target: str = "*"            # "*" = every portal, a portal name, or "oauth"
    method: str = "*"            # REST method, "batch", "token", "app.info" or "*"
    kind: str = "error"          # error | html | drop | hang | hang_after
    status: int | None = None    # default from the error catalogue (error) / 502 (html)
    error: str | None = None     # error code for kind=error
    error_description: str | None = None
    body: str | None = None      # html body for kind=html
    seconds: float = 0.0         # sleep for kind=hang (before the method) / hang_after (after it)
    count: int | None = 1        # fire for the next N matching requests; None = unlimited
    probability: float = 1.0     # chance to fire on a matching request
    in_batch: bool = True        # kind=error (and hang/hang_after on a named method) also hits batch sub-commands
    id: int = field(default_factory=lambda: next(_ids))
    fired: int = 0

    def __post_init__(self) -> None:
        if self.kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault kind {self.kind!r}; use one of {FAULT_KINDS}")
        if self.kind == "error" and not self.error:
            raise ValueError("a fault of kind 'error' needs an error code")
        if self.count is not None and self.count < 0:
            raise ValueError("count must be >= 0 or None")
        if not 0.0 <= float(self.probability) <= 1.0:
            raise ValueError("probability must be within [0, 1]")

    def matches(self, target: str, method: str) -> bool:
        if self.count is not None and self.fired >= self.count:
            return False
        if self.target not in ("*", target):
            return False
        if target == "oauth" and self.target == "*":
            return False  # "*" means every portal; the OAuth server is addressed explicitly
        return self.method in ("*", method) or self.method.lower() == method.lower()

    def resolved(self, oauth: bool = False) -> dict:
        """Status and body for kind=error/html, filled from the catalogue."""
        if self.kind == "html":
            return {"status": self.status or 502, "body": self.body or DEFAULT_HTML}
        table = OAUTH_ERRORS if oauth else REST_ERRORS
        default_status, default_desc = table.get(self.error or "", (500 if not oauth else 400, ""))
        status = self.status if self.status is not None else default_status
        desc = self.error_description if self.error_description is not None else default_desc
        body: dict[str, Any] = {"error": self.error}
        if desc is not None:
            body["error_description"] = desc
        return {"status": status, "body": body}

    def to_dict(self) -> dict:
        return asdict(self)


class FaultBook:
    """Thread-safe list of active faults; ``take`` consumes one firing."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._faults: list[Fault] = []
        self._rng = random.Random()

    def add(self, fault: Fault) -> Fault:
        with self._lock:
            self._faults.append(fault)
        return fault

    def clear(self, target: str | None = None) -> int:
        with self._lock:
            before = len(self._faults)
            if target is None:
                self._faults = []
            else:
                self._faults = [f for f in self._faults if f.target != target]
            return before - len(self._faults)

    def remove(self, fault_id: int) -> bool:
        with self._lock:
            before = len(self._faults)
            self._faults = [f for f in self._faults if f.id != fault_id]
            return len(self._faults) != before

    def list(self) -> list[dict]:
        with self._lock:
            return [f.to_dict() for f in self._faults]

    def take(self, target: str, method: str, kinds: tuple[str, ...] = FAULT_KINDS,
             batch_sub: bool = False, named_only: bool = False) -> Fault | None:
        """First matching fault of the given kinds that fires now (consumes one use);
        ``named_only`` skips faults on method "*" (a batch sub-command hangs only when its
        own method was named, so a "*" hang keeps delaying just the HTTP request)."""
        with self._lock:
            for f in self._faults:
                if f.kind not in kinds or not f.matches(target, method):
                    continue
                if named_only and f.method == "*":
                    continue
                if batch_sub and not f.in_batch:
                    continue
                if f.probability < 1.0 and self._rng.random() >= f.probability:
                    continue
                f.fired += 1
                return f
        return None


class LeakyBucket:
    """Per-portal request counter draining ``drain`` per second, refusing above ``burst``.

    RD limits.md: "each request increments the counter, the counter drains by Y per
    second; when it exceeds X the next request gets 503 QUERY_LIMIT_EXCEEDED".
    Refused requests are not added to the bucket.
    """

    def __init__(self) -> None:
        self.level = 0.0
        self.stamp = time.monotonic()
        self._lock = threading.Lock()

    def admit(self, drain: float, burst: float) -> bool:
        with self._lock:
            now = time.monotonic()
            self.level = max(0.0, self.level - (now - self.stamp) * drain)
            self.stamp = now
            if self.level + 1 > burst:
                return False
            self.level += 1
            return True

    def reset(self) -> None:
        with self._lock:
            self.level = 0.0
            self.stamp = time.monotonic()


# --- sockets -------------------------------------------------------------------------------

def client_gone(environ: dict) -> bool:
    """True when the peer has closed its side of the connection.

    werkzeug's dev server exposes the raw socket as ``environ["werkzeug.socket"]``
    and always answers with ``Connection: close``, so after the request body was
    read nothing more should arrive: a non-blocking MSG_PEEK returning b"" means
    the client hung up (EOF); EAGAIN means it is still waiting for us.
    """
    sock = environ.get("werkzeug.socket")
    if sock is None:
        return False
    try:
        data = sock.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT)
    except BlockingIOError:
        return False
    except (ConnectionError, OSError):
        return True
    return data == b""


def wait_unless_gone(seconds: float, environ: dict, step: float = 0.05) -> bool:
    """Sleep ``seconds``; return False as soon as the client goes away."""
    deadline = time.monotonic() + max(0.0, seconds)
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            break
        time.sleep(min(step, remaining))
        if client_gone(environ):
            return False
    return not client_gone(environ)


def drop_connection(environ: dict) -> None:
    """Mark the request to be answered by closing the connection (a "connection drop").

    The socket is shut down by ``servers.RecordingMiddleware`` right after the
    request was recorded, so counters are up to date when the client notices.
    """
    environ["devportal.dropped"] = True


def shutdown_socket(environ: dict) -> None:
    sock = environ.get("werkzeug.socket")
    if sock is None:
        return
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
