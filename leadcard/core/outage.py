"""``Breaker``: how one process treats a shared dependency it can live without (Redis).

Redis holds only disposable state here (the reference-data cache, the rate-limit bucket, each
with a fallback), so a Redis outage must cost a view neither its answer nor much time:

- every failure is **counted** (``errors``, ``skipped``: plain counters the process keeps, for
  ``/healthz`` now and metrics later) and **logged once per** ``log_every`` seconds, one line,
  no traceback — a traceback per view buried the logs during the outage of issue 10;
- after a failure the breaker is **open** for ``open_seconds``: callers skip Redis and take
  their fallback at once, so a hung Redis costs one read timeout per process per interval,
  not one per call;
- then **one trial** call goes through (the others keep skipping until it ends); its success
  closes the breaker, so the app uses Redis again after it returns, without a restart.

One breaker per Redis client: the cache and the bucket share both, so a failure seen by
either sends the other to its fallback too.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

log = logging.getLogger(__name__)

OPEN_SECONDS = 2.0   # how long Redis is skipped after a failure (a trial follows)
LOG_EVERY = 60.0     # at most one "still failing" line per this many seconds


class Breaker:
    """Failure counter, throttled log and open/closed state of one dependency, per process."""

    def __init__(
        self,
        name: str,
        *,
        open_seconds: float = OPEN_SECONDS,
        log_every: float = LOG_EVERY,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.name = name
        self.open_seconds = open_seconds
        self.log_every = log_every
        self._clock = clock
        self._lock = threading.Lock()
        self._tripped = False
        self._open_until = 0.0
        self._next_log = 0.0
        self._unlogged = 0
        self.errors = 0    # failed calls since start
        self.skipped = 0   # calls not made because the breaker was open

    @property
    def healthy(self) -> bool:
        """False from a failure until a call succeeds again."""
        return not self._tripped

    def allow(self) -> bool:
        """Whether to call the dependency now (closed, or this caller is the trial)."""
        with self._lock:
            if not self._tripped:
                return True
            now = self._clock()
            if now < self._open_until:
                self.skipped += 1
                return False
            # The trial: the others keep skipping while it runs; it ends in success()
            # or failure() (a hung Redis ends it by the client's read timeout).
            self._open_until = now + self.open_seconds
            return True

    def success(self) -> None:
        """A call went through: close the breaker (and say so once if it was open)."""
        if not self._tripped:  # the hot path: no lock when nothing changes
            return
        with self._lock:
            if not self._tripped:
                return
            self._tripped = False
            self._open_until = 0.0
            self._next_log = 0.0
        log.warning("%s is answering again (%d errors so far)", self.name, self.errors)

    def failure(self, exc: BaseException, what: str) -> None:
        """A call failed: count it, open the breaker, log at most once per ``log_every``."""
        with self._lock:
            now = self._clock()
            self.errors += 1
            self._tripped = True
            self._open_until = now + self.open_seconds
            if now < self._next_log:
                self._unlogged += 1
                return
            self._next_log = now + self.log_every
            unlogged, self._unlogged = self._unlogged, 0
        # The exception's type and text only: no traceback, nothing from the request.
        log.warning("%s unavailable (%s during %s: %s); using the fallback, retrying every "
                    "%.0fs; %d errors so far, %d since the last line", self.name,
                    type(exc).__name__, what, str(exc)[:200], self.open_seconds, self.errors,
                    unlogged)
