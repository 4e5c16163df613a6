"""The shared rate-limit buckets: SQL (SQLite or PostgreSQL) and Redis, and Redis with the
database as its fallback — the backends of the per-portal leaky bucket whose contract and GCRA
arithmetic are in ``leadcard.core.ratelimit`` (read that module's docstring first).

Public API
----------
``SqlBucket(engine, ...)`` SQLite or PostgreSQL through SQLAlchemy Core; one row per key
``RedisBucket(client, ...)`` one Lua script per call, using the Redis server clock
``FailoverBucket(primary, fallback, breaker, errors)`` Redis, and the database while Redis is down
``rate_bucket_table(metadata, name)`` the SQL table, for migrations

Backend errors (``sqlalchemy.exc.*``, ``redis.RedisError``) propagate unchanged, except through
``FailoverBucket``, which answers from its fallback while the primary (Redis) fails.
"""

from __future__ import annotations

import contextlib
import sqlite3
import threading
import time
from collections.abc import Callable
from typing import Any

import sqlalchemy as sa

from leadcard.core.outage import Breaker
from leadcard.core.ratelimit import (
    DEFAULT_BURST,
    DEFAULT_RATE,
    Bucket,
    RateLimited,
    _check_config,
    _check_max_wait,
    _check_pause,
    _gcra,
    _interval_us,
    _pause_key,
    _us,
)
from leadcard.storage import db
from leadcard.storage.db import HotStatement, upsert_insert


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

    def sibling(self, *, rate: float, burst: int) -> SqlBucket:
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
        if self._upsert is None:  # acquire() calls this only when it exists
            raise RuntimeError("no SQLite upsert statement on this bucket")
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
        with self._serial, db.write_transaction(self._engine, waits_for_locks=False) as conn:
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
