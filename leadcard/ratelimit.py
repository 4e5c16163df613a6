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
``Bucket``                 protocol: ``acquire(key, max_wait) -> float``, ``wait(key, max_wait)``,
                           ``pause(key, seconds)``, ``paused(key) -> float``, ``probe()``
``MemoryBucket``           one process, thread-safe (tests, single-worker dev server)
``SqlBucket(engine, ...)`` SQLite or PostgreSQL through SQLAlchemy Core; one row per key
``RedisBucket(client, ...)`` one Lua script per call, using the Redis server clock
``FailoverBucket(primary, fallback, breaker, errors)`` Redis, and the database while Redis is down
``rate_bucket_table(metadata, name)`` the SQL table, for migrations

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

import contextlib
import math
import sqlite3
import threading
import time
from collections.abc import Callable
from typing import Any, Protocol

import sqlalchemy as sa

from . import db
from .db import HotStatement, upsert_insert
from .outage import Breaker

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

    def sibling(self, *, rate: float, burst: int) -> "SqlBucket":
        """Another bucket on the same engine and table with an allowance of its own (for
        other kinds of limit, attempts.py); keep its keys apart from this one's."""
        return SqlBucket(self._engine, self.table.name, metadata=self.table.metadata,
                         rate=rate, burst=burst, clock=self._clock)

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

    def _raise_to(self, conn: sa.Connection, key: str, value: int) -> None:
        """Set ``key``'s stored number to ``value`` unless it is already higher."""
        t = self.table
        insert = self._insert(t).values(key=key, tat_us=value)
        conn.execute(insert.on_conflict_do_update(
            index_elements=[t.c.key],
            set_={"tat_us": sa.case((t.c.tat_us > insert.excluded.tat_us, t.c.tat_us),
                                    else_=insert.excluded.tat_us)},
        ))

    def pause(self, key: str, seconds: float) -> None:
        """Pause ``key`` for every process: TAT and the pause end, in one transaction.

        Rare (once per QUERY_LIMIT_EXCEEDED), so plain SQLAlchemy, not a hot statement.
        """
        pause_us = _check_pause(seconds)
        with self._serial, db.write_transaction(self._engine) as conn:
            until = self._now(conn) + pause_us
            self._raise_to(conn, key, until + (self.burst - 1) * self._interval)
            self._raise_to(conn, _pause_key(key), until)

    def paused(self, key: str) -> float:
        """Seconds left of ``key``'s pause (one read; run only by a caller that slept)."""
        t = self.table
        with self._engine.connect() as conn:
            until = conn.execute(
                sa.select(t.c.tat_us).where(t.c.key == _pause_key(key))
            ).scalar_one_or_none()
            if until is None:
                return 0.0
            return max(0, int(until) - self._now(conn)) / 1_000_000

    def probe(self) -> None:
        """One small write to the bucket's table: a read-only file, a full disk or a lost
        database raises here as it would on the next view's ``acquire``."""
        with self._serial, db.write_transaction(self._engine) as conn:
            self._raise_to(conn, "probe:healthz", self._now(conn))


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


# Pause: KEYS[1] bucket, KEYS[2] its pause key; ARGV pause_us, (burst - 1) * interval_us.
# TAT goes to max(TAT, pause end + that): the next slot is at the pause end, then one per
# interval. The pause key lives exactly until the pause end.
_PAUSE_LUA = """
if redis.replicate_commands then pcall(redis.replicate_commands) end
local pause = tonumber(ARGV[1])
local span = tonumber(ARGV[2])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local tat = tonumber(redis.call('GET', KEYS[1])) or 0
local new_tat = math.max(tat, now + pause + span)
redis.call('SET', KEYS[1], string.format('%.0f', new_tat), 'PX',
           math.floor((new_tat - now) / 1000) + 1)
local pause_ms = math.ceil(pause / 1000)
if redis.call('PTTL', KEYS[2]) < pause_ms then
  redis.call('SET', KEYS[2], '1', 'PX', pause_ms)
end
return 1
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
        self._redis = redis_client
        self._script = redis_client.register_script(_GCRA_LUA)
        self._pause_script = redis_client.register_script(_PAUSE_LUA)

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

    def pause(self, key: str, seconds: float) -> None:
        """Pause ``key`` for every host with one script (Redis server clock)."""
        pause_us = _check_pause(seconds)
        self._pause_script(
            keys=[self._prefix + key, self._prefix + _pause_key(key)],
            args=[pause_us, (self.burst - 1) * self._interval_us],
        )

    def paused(self, key: str) -> float:
        """Seconds left of ``key``'s pause: the PTTL of its pause key."""
        left = int(self._redis.pttl(self._prefix + _pause_key(key)))
        return max(0, left) / 1000

    def probe(self) -> None:
        """One PING (the client's short timeouts bound it)."""
        self._redis.ping()


class FailoverBucket(Bucket):
    """The shared Redis bucket, and ``fallback`` (the database's ``SqlBucket``) while it fails.

    Why the database and not a per-process ``MemoryBucket``: the SQL bucket is shared by every
    worker and host, exactly like Redis, so the portal's limit still holds across hosts during
    the outage; a memory bucket would need "rate / number of processes", a number no process
    knows. The database is up whenever views can work at all (they read the token row), and
    on SQLite the bucket has a file of its own (services._bucket_engine). The price: the two
    backends do not share state, so at each switch the other one starts from what it last
    knew (usually "empty") and may let a burst through that Bitrix24 then refuses; that
    ``QUERY_LIMIT_EXCEEDED`` pauses the portal (bitrix.py), which puts the buckets back in line.

    ``breaker`` (shared with the cache of the same Redis client) decides when to try Redis: a
    failure sends calls to the fallback for a few seconds, then one trial call goes to Redis
    and its success brings every call back. A view is never refused because Redis is gone.
    ``RateLimited`` from Redis is an answer, not a failure.
    """

    def __init__(self, primary: Bucket, fallback: Bucket, breaker: Breaker,
                 errors: tuple[type[BaseException], ...]) -> None:
        self.primary = primary
        self.fallback = fallback
        self.breaker = breaker
        self._errors = errors

    def _call(self, what: str, name: str, *args: Any) -> Any:
        if self.breaker.allow():
            try:
                result = getattr(self.primary, name)(*args)
            except RateLimited:
                self.breaker.success()
                raise
            except self._errors as exc:
                self.breaker.failure(exc, f"rate-limit bucket {what}")
            else:
                self.breaker.success()
                return result
        return getattr(self.fallback, name)(*args)

    def acquire(self, key: str, max_wait: float) -> float:
        """A slot from Redis, or from the fallback while Redis fails."""
        return float(self._call("acquire", "acquire", key, max_wait))

    def pause(self, key: str, seconds: float) -> None:
        """Pause on whichever backend answers now."""
        self._call("pause", "pause", key, seconds)

    def paused(self, key: str) -> float:
        """The pause left on whichever backend answers now."""
        return float(self._call("paused", "paused", key))

    def probe(self) -> None:
        """Views need a bucket that takes a slot: the fallback when Redis is down (the
        caller reports Redis on its own, from the breaker)."""
        self._call("probe", "probe")
