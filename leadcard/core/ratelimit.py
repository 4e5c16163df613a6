"""Client-side per-portal leaky bucket shared by every worker and host: stay under Bitrix24's limit.

Bitrix24 counts every HTTP request per portal; the counter drains at 2 requests/s (Enterprise: 5/s)
and a request that would push it over 50 (Enterprise: 250) gets HTTP 503 ``QUERY_LIMIT_EXCEEDED``
(settings/performance/limits.md; a batch of up to 50 commands counts once). The limit is per portal *and* per
source IP, so all our workers and hosts must draw from one bucket per portal.

Algorithm: GCRA, the leaky bucket written as one number per key, the "theoretical arrival time"
(TAT) at which the bucket would be empty again. A request is allowed to go at
``max(TAT, now) + interval - burst * interval`` and moves TAT forward by ``interval = 1 / rate``.
So ``burst`` requests pass at once, then one every ``interval``. Every backend keeps TAT in
integer microseconds: float seconds at epoch scale lose ~0.1 us per step, and after a burst of
250 that drift turns "exactly on time" into "refused by a hair".

Public API
----------
``Bucket``                 protocol: ``acquire(key, max_wait) -> float``, ``wait(key, max_wait)``,
                           ``pause(key, seconds)``, ``paused(key) -> float``, ``probe()``
``MemoryBucket``           one process, thread-safe (tests, single-worker dev server)
Shared backends (SQL, Redis, and Redis with the database as fallback) are in
``leadcard.storage.buckets``; this module is the contract and the arithmetic every layer uses.

Pause: when Bitrix24 answers ``QUERY_LIMIT_EXCEEDED`` anyway (our configured rate is above the
portal's real one, or a backend switch lost the state), ``pause(key, seconds)`` tells every
worker and host: no slot on this portal until ``seconds`` from now, and the bucket counts as
full then. It moves TAT to ``pause end + (burst - 1) * interval`` (so ``acquire`` hands out the
next slot at the pause end, then one per interval, or refuses when that is beyond ``max_wait``) and records the
pause end under a key of its own, which ``paused(key)`` reads: a caller that reserved a slot
*before* the pause and slept into it must not send (bitrix.py checks after sleeping).

Exceptions
----------
``RateLimited(retry_after)``  the wait would exceed ``max_wait``; nothing was reserved.
``ValueError``                bad rate, burst, ``max_wait`` or pause.
Backend errors (``sqlalchemy.exc.*``, ``redis.RedisError``) propagate unchanged, except through
``FailoverBucket``, which answers from its fallback while the primary (Redis) fails.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from typing import Protocol

# settings/performance/limits.md
DEFAULT_RATE, DEFAULT_BURST = 2.0, 50
ENTERPRISE_RATE, ENTERPRISE_BURST = 5.0, 250


class RateLimited(Exception):
    """Sending now would need a wait longer than the caller's ``max_wait``; no slot was taken.

    ``retry_after`` is the number of seconds until a request on this key would pass with no
    wait at all (suitable for an HTTP ``Retry-After``).
    """

    def __init__(self, retry_after: float) -> None:
        super().__init__(f"client-side rate limit: retry in {retry_after:.3f}s")
        self.retry_after = retry_after


class Bucket(Protocol):
    """A shared leaky bucket keyed by portal (``member_id``)."""

    def acquire(self, key: str, max_wait: float) -> float:
        """Reserve a slot; return the seconds to sleep before sending, or raise ``RateLimited``."""
        ...

    def wait(self, key: str, max_wait: float) -> float:
        """Reserve a slot and sleep until it is due; return the seconds slept."""
        delay = self.acquire(key, max_wait)
        if delay > 0:
            time.sleep(delay)
        return delay

    def pause(self, key: str, seconds: float) -> None:
        """No slot on ``key`` for ``seconds`` from now; afterwards the bucket is full."""
        ...

    def paused(self, key: str) -> float:
        """Seconds left of a pause on ``key`` (0.0 when none)."""
        ...

    def probe(self) -> None:
        """Raise the backend's error unless it can take a write now (for /healthz)."""
        ...


def _check_config(rate: float, burst: int) -> tuple[float, int]:
    if not (rate > 0 and math.isfinite(rate)):
        raise ValueError("rate must be a positive number of requests per second")
    if int(burst) != burst or burst < 1:
        raise ValueError("burst must be a whole number >= 1")
    return float(rate), int(burst)


def _check_max_wait(max_wait: float) -> float:
    if not max_wait >= 0:  # also rejects NaN
        raise ValueError("max_wait must be >= 0 seconds")
    return float(max_wait)


_MAX_WAIT_US = 2**52  # "wait as long as it takes", still exact in a double (and in Lua)


def _us(seconds: float) -> int:
    """Seconds to whole microseconds, rounding down (a clock reading or a caller's max_wait)."""
    return (
        min(_MAX_WAIT_US, math.floor(seconds * 1_000_000))
        if math.isfinite(seconds)
        else _MAX_WAIT_US
    )


def _interval_us(rate: float) -> int:
    """Microseconds per request, rounded up so rounding never makes us faster than ``rate``."""
    return max(1, math.ceil(1_000_000 / rate))


def _check_pause(seconds: float) -> int:
    if not (seconds > 0 and math.isfinite(seconds)):
        raise ValueError("a pause must be a positive number of seconds")
    return max(1, math.ceil(seconds * 1_000_000))


def _pause_key(key: str) -> str:
    """Where a key's pause end is kept, beside its TAT (member_ids never contain a colon)."""
    return "pause:" + key


def _gcra(tat: int, now: int, interval: int, burst: int, max_wait: int) -> tuple[int, int | None]:
    """One GCRA step in microseconds: ``(wait, new_tat)``; ``new_tat`` None = over ``max_wait``."""
    new_tat = max(tat, now) + interval
    wait = max(0, new_tat - burst * interval - now)
    if wait > max_wait:
        return wait, None
    return wait, new_tat


class MemoryBucket(Bucket):
    """GCRA state in a dict guarded by a lock: correct within one process only."""

    def __init__(
        self,
        rate: float = DEFAULT_RATE,
        burst: int = DEFAULT_BURST,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """``clock`` is injectable for tests; monotonic by default so clock steps do not matter."""
        self.rate, self.burst = _check_config(rate, burst)
        self._interval = _interval_us(self.rate)
        self._clock = clock
        self._lock = threading.Lock()
        self._tat: dict[str, int] = {}
        self._paused: dict[str, int] = {}
        self._prune_at = 1024

    def acquire(self, key: str, max_wait: float) -> float:
        """Reserve a slot on ``key`` in this process's memory."""
        max_wait_us = _us(_check_max_wait(max_wait))
        with self._lock:
            now = _us(self._clock())
            wait, new_tat = _gcra(
                self._tat.get(key, now), now, self._interval, self.burst, max_wait_us
            )
            if new_tat is None:
                raise RateLimited(wait / 1_000_000)
            self._tat[key] = new_tat
            if len(self._tat) >= self._prune_at:
                self._prune(now)
        return wait / 1_000_000

    def pause(self, key: str, seconds: float) -> None:
        """Pause ``key`` in this process's memory."""
        pause_us = _check_pause(seconds)
        with self._lock:
            now = _us(self._clock())
            until = now + pause_us
            self._tat[key] = max(self._tat.get(key, 0), until + (self.burst - 1) * self._interval)
            self._paused[key] = max(self._paused.get(key, 0), until)

    def paused(self, key: str) -> float:
        """Seconds left of ``key``'s pause."""
        with self._lock:
            return max(0, self._paused.get(key, 0) - _us(self._clock())) / 1_000_000

    def probe(self) -> None:
        """Memory always takes a write."""

    def _prune(self, now: int) -> None:
        """Forget drained buckets (TAT in the past means "empty", the same as absent)."""
        for stale in [k for k, tat in self._tat.items() if tat <= now]:
            del self._tat[stale]
        for stale in [k for k, until in self._paused.items() if until <= now]:
            del self._paused[stale]
        # Amortised O(1): the next sweep waits until the dict has doubled again.
        self._prune_at = max(1024, 2 * len(self._tat))
