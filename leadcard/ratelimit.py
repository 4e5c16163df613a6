"""Client-side per-portal leaky bucket shared by every worker and host: stay under Bitrix24's limit.

Bitrix24 counts every HTTP request per portal; the counter drains at 2 requests/s (Enterprise: 5/s)
and a request that would push it over 50 (Enterprise: 250) gets HTTP 503 ``QUERY_LIMIT_EXCEEDED``
(protocol.md d.1; a batch of up to 50 commands counts once). The limit is per portal *and* per
source IP, so all our workers and hosts must draw from one bucket per portal.

Algorithm: GCRA, the leaky bucket written as one number per key, the "theoretical arrival time"
(TAT) at which the bucket would be empty again. A request is allowed to go at
``max(TAT, now) + interval - burst * interval`` and moves TAT forward by ``interval = 1 / rate``.
So ``burst`` requests pass at once, then one every ``interval``. Every backend keeps TAT in
integer microseconds: float seconds at epoch scale lose ~0.1 us per step, and after a burst of
250 that drift turns "exactly on time" into "refused by a hair".

Public API
----------
``Bucket``                 protocol: ``acquire(key, max_wait) -> float`` and ``wait(key, max_wait)``
``MemoryBucket``           one process, thread-safe (tests, single-worker dev server)
``SqlBucket(engine, ...)`` SQLite or PostgreSQL through SQLAlchemy Core; one row per key
``RedisBucket(client, ...)`` one Lua script per call, using the Redis server clock
``rate_bucket_table(metadata, name)`` the SQL table, for migrations

Exceptions
----------
``RateLimited(retry_after)``  the wait would exceed ``max_wait``; nothing was reserved.
``ValueError``                bad rate, burst or ``max_wait``.
Backend errors (``sqlalchemy.exc.*``, ``redis.RedisError``) propagate unchanged.
"""

from __future__ import annotations

import contextlib
import math
import sqlite3
import threading
import time
from collections.abc import Callable
from typing import Any, Protocol

import sqlalchemy as sa

from .db import HotStatement, upsert_insert

# protocol.md d.1
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

    def _prune(self, now: int) -> None:
        """Forget drained buckets (TAT in the past means "empty", the same as absent)."""
        for stale in [k for k, tat in self._tat.items() if tat <= now]:
            del self._tat[stale]
        # Amortised O(1): the next sweep waits until the dict has doubled again.
        self._prune_at = max(1024, 2 * len(self._tat))


def rate_bucket_table(metadata: sa.MetaData, name: str = "rate_buckets") -> sa.Table:
    """The bucket table on ``metadata`` (reused if already defined there): key -> TAT."""
    existing = metadata.tables.get(name)
    if existing is not None:
        return existing
    return sa.Table(
        name,
        metadata,
        sa.Column("key", sa.String(255), primary_key=True),
        # Theoretical arrival time in epoch microseconds.
        sa.Column("tat_us", sa.BigInteger(), nullable=False),
    )


class SqlBucket(Bucket):
    """GCRA state in one SQL row per key; atomic across processes on SQLite and PostgreSQL.

    PostgreSQL: ``INSERT ... ON CONFLICT DO NOTHING`` creates the row, ``SELECT ... FOR UPDATE``
    locks it for the read-modify-write, and "now" is the database server's clock, so app hosts
    with skewed clocks still agree. Runs at READ COMMITTED (set per connection) because the
    locking read must see rows committed by others after the transaction started.
    SQLite: the engine is expected to start transactions with ``BEGIN IMMEDIATE`` (db.py's
    recipe), which serialises writers; even without it, the first statement here is an
    INSERT, which takes SQLite's write lock before the row is read. "now" is ``time.time()``:
    an SQLite file lives on one host. On SQLite the whole step is one statement (an UPSERT with
    ``RETURNING``, SQLite >= 3.35) run by ``db.HotStatement``: a lone statement is atomic under
    the file's write lock, and this is the hot path (one per upstream request), where the
    four-statement transaction through SQLAlchemy cost ~0.6 ms of CPU on a slow core.
    """

    def __init__(
        self,
        engine: sa.Engine,
        table_name: str = "rate_buckets",
        *,
        metadata: sa.MetaData | None = None,
        rate: float = DEFAULT_RATE,
        burst: int = DEFAULT_BURST,
        clock: Callable[[], float] | None = None,
    ) -> None:
        """Bucket on ``engine``; the table goes on ``metadata`` (pass the app's, for migrations).

        ``clock`` (epoch seconds) replaces the default "now"; tests use it for exact arithmetic.
        """
        self.rate, self.burst = _check_config(rate, burst)
        self._interval = _interval_us(self.rate)
        self._engine = engine
        self.table = rate_bucket_table(
            metadata if metadata is not None else sa.MetaData(), table_name
        )
        dialect = engine.dialect.name
        self._insert = upsert_insert(engine)  # ValueError for any other dialect
        self._is_postgres = dialect == "postgresql"
        self._clock = clock
        # SQLite has one write lock per file, and a writer that finds it taken sleeps in
        # SQLite's busy handler (1, 2, 5 … 100 ms steps): with many threads of one worker
        # contending, views picked up tails of hundreds of ms (bench/run.py p95). Threads of
        # one process therefore queue on a Python lock first; only processes meet in SQLite.
        self._serial = threading.Lock() if not self._is_postgres else contextlib.nullcontext()
        self._upsert: HotStatement | None = None
        if dialect == "sqlite" and sqlite3.sqlite_version_info >= (3, 35):
            self._upsert = HotStatement(engine, _SQLITE_GCRA_UPSERT.format(table=self.table.name))
            self._read_tat = HotStatement(
                engine, sa.select(self.table.c.tat_us).where(self.table.c.key == sa.bindparam("key"))
            )

    def _now(self, conn: sa.Connection) -> int:
        """Current time in epoch microseconds, read after the row lock is held."""
        if self._clock is not None:
            return _us(self._clock())
        if self._is_postgres:
            # clock_timestamp(), not now(): now() is frozen at transaction start, before the
            # lock wait, and would hand out slots that are already in the past.
            epoch = sa.func.extract("epoch", sa.func.clock_timestamp())
            return _us(float(conn.execute(sa.select(epoch)).scalar_one()))
        return _us(time.time())

    def acquire(self, key: str, max_wait: float) -> float:
        """Reserve a slot on ``key`` in one short transaction."""
        max_wait_us = _us(_check_max_wait(max_wait))
        if self._upsert is not None:
            return self._acquire_sqlite(key, max_wait_us)
        t = self.table
        with self._serial, self._engine.connect() as conn:
            if self._is_postgres:
                conn = conn.execution_options(isolation_level="READ COMMITTED")
            with conn.begin():
                # TAT 0 = "drained long ago"; DO NOTHING keeps a concurrent creator's row.
                conn.execute(self._insert(t).values(key=key, tat_us=0).on_conflict_do_nothing())
                tat = conn.execute(
                    sa.select(t.c.tat_us).where(t.c.key == key).with_for_update()
                ).scalar_one()
                now = self._now(conn)
                wait, new_tat = _gcra(tat, now, self._interval, self.burst, max_wait_us)
                if new_tat is not None:
                    conn.execute(sa.update(t).where(t.c.key == key).values(tat_us=new_tat))
        if new_tat is None:
            raise RateLimited(wait / 1_000_000)
        return wait / 1_000_000

    def _acquire_sqlite(self, key: str, max_wait_us: int) -> float:
        """The GCRA step as one UPSERT: no row back means "over max_wait", nothing reserved.

        "now" is read before the statement waits for the write lock, so it can only be early:
        an early "now" gives a later slot and a longer wait, never a faster rate.
        """
        interval, span = self._interval, self.burst * self._interval
        with self._serial:
            now = _us(self._clock()) if self._clock is not None else _us(time.time())
            row = self._upsert.fetchone(
                key=key, now=now, interval=interval, span=span, max_wait=max_wait_us
            )
        if row is None:  # refused: read the state once more for retry_after
            found = self._read_tat.fetchone(key=key)
            wait, _ = _gcra(found[0] if found else 0, now, interval, self.burst, max_wait_us)
            raise RateLimited(wait / 1_000_000)
        return max(0, row[0] - span - now) / 1_000_000


# One GCRA step (see _gcra) on SQLite, in a single atomic statement. A new key starts drained
# (TAT = now); an existing one moves only when the wait fits max_wait (the DO UPDATE's WHERE).
_SQLITE_GCRA_UPSERT = """
INSERT INTO "{table}" (key, tat_us) VALUES (:key, :now + :interval)
ON CONFLICT (key) DO UPDATE SET tat_us = max(tat_us, :now) + :interval
WHERE max(tat_us, :now) + :interval - :span - :now <= :max_wait
RETURNING tat_us
"""


# The same GCRA step on the Redis server, in integer microseconds (exact in a Lua double).
# KEYS[1] bucket; ARGV interval_us, burst, max_wait_us. Returns {allowed 0/1, wait_us}.
_GCRA_LUA = """
if redis.replicate_commands then pcall(redis.replicate_commands) end
local interval = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local max_wait = tonumber(ARGV[3])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local tat = tonumber(redis.call('GET', KEYS[1]))
if tat == nil or tat < now then tat = now end
local new_tat = tat + interval
local wait = new_tat - burst * interval - now
if wait < 0 then wait = 0 end
if wait > max_wait then return {0, wait} end
-- The key expires when the bucket has drained: an absent key means an empty bucket.
local ttl_ms = math.floor((new_tat - now) / 1000) + 1
redis.call('SET', KEYS[1], string.format('%.0f', new_tat), 'PX', ttl_ms)
return {1, wait}
"""


class RedisBucket(Bucket):
    """GCRA state in one Redis key per portal, updated atomically by a Lua script.

    The script reads ``TIME`` on the Redis server, so every host uses the same clock.
    """

    def __init__(
        self,
        redis_client: Any,
        prefix: str = "leadcard:rl:",
        *,
        rate: float = DEFAULT_RATE,
        burst: int = DEFAULT_BURST,
    ) -> None:
        """``redis_client`` is a ``redis.Redis``; the script is sent once, then run by SHA."""
        self.rate, self.burst = _check_config(rate, burst)
        self._interval_us = _interval_us(self.rate)
        self._prefix = prefix
        self._script = redis_client.register_script(_GCRA_LUA)

    def acquire(self, key: str, max_wait: float) -> float:
        """Reserve a slot on ``key`` with one EVALSHA round trip."""
        max_wait_us = _us(_check_max_wait(max_wait))
        allowed, wait_us = self._script(
            keys=[self._prefix + key], args=[self._interval_us, self.burst, max_wait_us]
        )
        wait = int(wait_us) / 1_000_000
        if not int(allowed):
            raise RateLimited(wait)
        return wait
