"""Shared leaky bucket: burst then drain, no reservation on refusal, and the limit holds under
threads and processes on every backend (memory, SQLite file, PostgreSQL, Redis).

PostgreSQL and Redis tests use TEST_POSTGRES_URL (or a PostgreSQL TEST_DATABASE_URL) and
TEST_REDIS_URL, defaulting to the local servers, and skip with the reason when unreachable.
Each run uses its own table and key prefix and removes them afterwards.
"""

import math
import multiprocessing
import os
import threading
import time
import uuid

import pytest
import sqlalchemy as sa
from sqlalchemy import event

from leadcard.core.ratelimit import MemoryBucket, RateLimited
from leadcard.storage import buckets as ratelimit
from leadcard.storage.buckets import RedisBucket, SqlBucket, rate_bucket_table
from tests.conftest import redis_or_skip


def _postgres_url():
    """TEST_POSTGRES_URL, else a PostgreSQL TEST_DATABASE_URL (bin/test sets it), else local."""
    url = os.environ.get("TEST_POSTGRES_URL") or os.environ.get("TEST_DATABASE_URL") or ""
    if not url.startswith(("postgres://", "postgresql")):
        url = "postgresql://postgres@127.0.0.1:5432/test"
    # psycopg 3 is the driver we ship; a bare postgresql:// would ask for psycopg2.
    for bare in ("postgres://", "postgresql://"):
        if url.startswith(bare):
            url = "postgresql+psycopg://" + url[len(bare) :]
    return url


PG_URL = _postgres_url()
REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
RUN = uuid.uuid4().hex[:12]
PG_TABLE = f"rate_buckets_test_{RUN}"
REDIS_PREFIX = f"leadcard-test:{RUN}:rl:"


# --- backends ---


def sqlite_engine(path):
    """The lead's SQLite recipe: we issue BEGIN IMMEDIATE ourselves, WAL, 15 s busy timeout."""
    engine = sa.create_engine(f"sqlite:///{path}", connect_args={"timeout": 15})

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection, _record):
        dbapi_connection.isolation_level = None  # stop pysqlite's own BEGIN handling
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn):
        conn.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


def build_bucket(spec, rate, burst, clock=None):
    """(bucket, close) from a picklable spec, so child processes can build their own."""
    kind = spec[0]
    if kind == "memory":
        return MemoryBucket(rate, burst, clock=clock or time.time), lambda: None
    if kind in ("sqlite", "postgres"):
        engine = sqlite_engine(spec[1]) if kind == "sqlite" else sa.create_engine(spec[1])
        bucket = SqlBucket(engine, spec[2], rate=rate, burst=burst, clock=clock)
        return bucket, engine.dispose
    if kind == "redis":
        import redis

        client = redis.Redis.from_url(spec[1])
        return RedisBucket(client, spec[2], rate=rate, burst=burst), client.close
    raise AssertionError(kind)


@pytest.fixture(scope="module")
def sqlite_spec(tmp_path_factory):
    path = tmp_path_factory.mktemp("ratelimit") / "buckets.sqlite"
    engine = sqlite_engine(path)
    metadata = sa.MetaData()
    rate_bucket_table(metadata)
    metadata.create_all(engine)
    engine.dispose()
    return ("sqlite", str(path), "rate_buckets")


@pytest.fixture(scope="module")
def postgres_spec():
    engine = sa.create_engine(PG_URL, connect_args={"connect_timeout": 3})
    try:
        with engine.connect():
            pass
    except sa.exc.OperationalError as exc:
        engine.dispose()
        pytest.skip(f"PostgreSQL not reachable at {PG_URL} ({type(exc.orig).__name__})")
    metadata = sa.MetaData()
    table = rate_bucket_table(metadata, PG_TABLE)
    metadata.create_all(engine)
    yield ("postgres", PG_URL, PG_TABLE)
    table.drop(engine)
    engine.dispose()


@pytest.fixture(scope="module")
def redis_spec():
    with redis_or_skip(REDIS_URL, REDIS_PREFIX):
        yield ("redis", REDIS_URL, REDIS_PREFIX)


@pytest.fixture(params=["memory", "sqlite", "postgres", "redis"])
def spec(request):
    if request.param == "memory":
        return ("memory",)
    return request.getfixturevalue(f"{request.param}_spec")


@pytest.fixture
def make(spec):
    """make(rate, burst, clock=None) -> bucket on the parametrised backend; closed afterwards."""
    closers = []

    def _make(rate=2.0, burst=50, clock=None):
        bucket, close = build_bucket(spec, rate, burst, clock)
        closers.append(close)
        return bucket

    yield _make
    for close in closers:
        close()


@pytest.fixture
def key():
    return f"portal-{uuid.uuid4().hex}"


class FakeClock:
    def __init__(self, start=1_700_000_000.0):
        self.now = start

    def __call__(self):
        return self.now

    def advance(self, seconds):
        self.now += seconds


# --- the bound every backend must respect ---


def assert_within_limit(grants, rate, burst):
    """No interval [A, B] may hold more than burst + rate * (B - A) grants.

    A grant is (lo, hi): the caller's clock before the call plus the returned wait, and after
    the call plus the wait. The true send time lies in between, so counting only grants wholly
    inside [lo_i, hi_j] and allowing for the full width of that window is sound: a correct
    limiter never fails this, and a limiter that hands one slot to two callers does as soon as
    call latency is small next to 1 / rate.
    """
    worst = -math.inf
    for lo_i, _ in grants:
        for _, hi_j in grants:
            if hi_j < lo_i:
                continue
            inside = sum(1 for lo, hi in grants if lo >= lo_i and hi <= hi_j)
            excess = inside - (burst + rate * (hi_j - lo_i))
            worst = max(worst, excess)
    assert worst <= 1e-6, f"{worst:.3f} grants over the limit"


def _take(bucket, key, count, out, sleep):
    """Acquire ``count`` slots; ``sleep``: wait for each slot like a real client, or reserve
    back to back (many callers at once: the most contention a shared bucket can see)."""
    for _ in range(count):
        lo = time.time()
        wait = bucket.acquire(key, max_wait=30)
        hi = time.time()
        out.append((lo + wait, hi + wait))
        if sleep:
            time.sleep(wait)


def _slow_decisions():
    """Make the GCRA step (run while the row lock is held) take 2 ms.

    A correct backend does not care; a read-modify-write that is not atomic now overlaps
    with its neighbours nearly every time instead of once in a while (SQLite's busy handler
    otherwise lets one process re-take the lock before the sleepers wake up).
    """
    real = ratelimit._gcra

    def slow(*args):
        time.sleep(0.002)
        return real(*args)

    return slow


# --- semantics on every backend ---


def test_burst_passes_then_51st_waits_half_a_second(make, key):
    bucket = make(rate=2.0, burst=50)
    started = time.time()
    waits = [bucket.acquire(key, max_wait=0) for _ in range(50)]
    wait_51 = bucket.acquire(key, max_wait=5)
    elapsed = time.time() - started
    assert waits == [0.0] * 50
    # 0.5 s after the first request, minus the time the 51 calls themselves took.
    assert 0.5 - elapsed - 1e-3 <= wait_51 <= 0.5 + 1e-6
    assert bucket.acquire(f"{key}-other", max_wait=0) == 0.0  # buckets are per key


def test_refusal_reserves_nothing(make, key):
    # A slow drain (one request per 10 s) keeps the assertions far from call latency, even on
    # an overloaded machine; nothing here sleeps.
    bucket = make(rate=0.1, burst=50)
    started = time.time()
    for _ in range(50):
        bucket.acquire(key, max_wait=0)
    for _ in range(5):
        with pytest.raises(RateLimited) as info:
            bucket.acquire(key, max_wait=1.0)
        # Had a refused call reserved a slot, retry_after would grow by 10 s each time.
        assert 10.0 - (time.time() - started) - 1e-3 <= info.value.retry_after <= 10.0 + 1e-6
    with pytest.raises(RateLimited):
        bucket.acquire(key, max_wait=0)
    wait = bucket.acquire(key, max_wait=15.0)
    assert 10.0 - (time.time() - started) - 1e-3 <= wait <= 10.0 + 1e-6
    with pytest.raises(RateLimited) as info:
        bucket.acquire(key, max_wait=15.0)  # the slot after that one is 20 s away
    assert 20.0 - (time.time() - started) - 1e-3 <= info.value.retry_after <= 20.0 + 1e-6


@pytest.mark.parametrize("sleep", [True, False], ids=["sleeping", "reserving"])
def test_threads_share_one_bucket(make, key, sleep, monkeypatch):
    rate, burst, threads, each = 60.0, 5, 6, 7
    if not sleep:
        monkeypatch.setattr(ratelimit, "_gcra", _slow_decisions())
    bucket = make(rate=rate, burst=burst)
    grants = []
    barrier = threading.Barrier(threads)

    def run():
        mine = []
        barrier.wait()
        _take(bucket, key, each, mine, sleep)
        grants.extend(mine)

    workers = [threading.Thread(target=run) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=30)
    assert len(grants) == threads * each
    assert_within_limit(grants, rate, burst)
    _assert_not_too_slow(grants, rate, burst, threads)


def _assert_not_too_slow(grants, rate, burst, callers):
    """The limiter must also let traffic through at the full rate, not just hold it back.

    Slack: 0.5 s, plus the wall time the callers spent inside ``acquire`` (on an overloaded
    machine the calls themselves, not the schedule, can be what takes the time).
    """
    span = max(hi for _, hi in grants) - min(lo for lo, _ in grants)
    ideal = (len(grants) - burst) / rate
    in_calls = sum(hi - lo for lo, hi in grants) / callers
    assert span <= ideal + 0.5 + in_calls, (
        f"{len(grants)} grants took {span:.2f}s, ideal {ideal:.2f}s, in calls {in_calls:.2f}s"
    )


# --- exact arithmetic on an injected clock ---


@pytest.fixture(params=["memory", "sqlite"])
def clocked(request, sqlite_spec):
    """A bucket on a fake clock (the SQL path too: SqlBucket takes a clock override)."""
    clock = FakeClock()
    spec = ("memory",) if request.param == "memory" else sqlite_spec
    bucket, close = build_bucket(spec, 2.0, 50, clock)
    yield bucket, clock
    close()


def test_rate_over_time_is_two_per_second(clocked, key):
    bucket, clock = clocked
    start, sent = clock.now, 0
    while True:
        wait = bucket.acquire(key, max_wait=math.inf)
        clock.advance(wait)
        if clock.now - start > 100:
            break
        sent += 1
    # 50 at t=0, then one every 0.5 s up to and including t=100.
    assert sent == 50 + 200


def test_bucket_drains_while_idle(clocked, key):
    bucket, clock = clocked
    for _ in range(50):
        assert bucket.acquire(key, max_wait=0) == 0.0
    clock.advance(5.0)  # drains 10 requests' worth
    for _ in range(10):
        assert bucket.acquire(key, max_wait=0) == 0.0
    with pytest.raises(RateLimited) as info:
        bucket.acquire(key, max_wait=0)
    assert info.value.retry_after == pytest.approx(0.5)
    clock.advance(1000.0)  # a long pause never banks more than the burst
    assert [bucket.acquire(key, max_wait=0) for _ in range(50)] == [0.0] * 50
    assert bucket.acquire(key, max_wait=1) == pytest.approx(0.5)


def test_enterprise_numbers():
    clock = FakeClock()
    bucket = MemoryBucket(5.0, 250, clock=clock)
    assert [bucket.acquire("p", 0) for _ in range(250)] == [0.0] * 250
    assert bucket.acquire("p", 1) == pytest.approx(0.2)


def test_wait_sleeps_for_the_slot(key):
    bucket = MemoryBucket(20.0, 1)
    assert bucket.wait(key, max_wait=1) == 0.0
    started = time.monotonic()
    slept = bucket.wait(key, max_wait=1)
    assert 0.04 < slept <= 0.05
    assert time.monotonic() - started >= slept
    with pytest.raises(RateLimited):
        bucket.wait(key, max_wait=0.01)


# --- multi-process: the bucket is shared by gunicorn workers and hosts ---


def _process_worker(spec, rate, burst, key, count, sleep, barrier, results):
    if not sleep:
        ratelimit._gcra = _slow_decisions()  # this child process only
    bucket, close = build_bucket(spec, rate, burst)
    grants = []
    barrier.wait()
    _take(bucket, key, count, grants, sleep)
    close()
    results.put(grants)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork()")
@pytest.mark.parametrize("sleep", [True, False], ids=["sleeping", "reserving"])
@pytest.mark.parametrize("backend", ["sqlite", "postgres", "redis"])
def test_processes_share_one_bucket(request, backend, key, sleep):
    spec = request.getfixturevalue(f"{backend}_spec")
    # fork: the children need no import of this test module (works with any pytest import mode).
    ctx = multiprocessing.get_context("fork")
    rate, burst, processes, each = 40.0, 5, 4, 10
    barrier, results = ctx.Barrier(processes), ctx.Queue()
    workers = [
        ctx.Process(
            target=_process_worker, args=(spec, rate, burst, key, each, sleep, barrier, results)
        )
        for _ in range(processes)
    ]
    for worker in workers:
        worker.start()
    grants = []
    for _ in workers:
        grants.extend(results.get(timeout=30))
    for worker in workers:
        worker.join(timeout=10)
    assert [w.exitcode for w in workers] == [0] * processes
    assert len(grants) == processes * each
    assert_within_limit(grants, rate, burst)
    _assert_not_too_slow(grants, rate, burst, processes)


# --- backend specifics ---


def test_sql_table_lives_on_the_given_metadata():
    metadata = sa.MetaData()
    engine = sa.create_engine("sqlite://")
    bucket = SqlBucket(engine, "my_buckets", metadata=metadata)
    assert metadata.tables["my_buckets"] is bucket.table
    assert {c.name for c in bucket.table.columns} == {"key", "tat_us"}
    # A second bucket (or the migration env) reuses the same Table instead of failing.
    assert SqlBucket(engine, "my_buckets", metadata=metadata).table is bucket.table
    assert rate_bucket_table(metadata, "my_buckets") is bucket.table
    engine.dispose()


def test_sql_rejects_unsupported_dialect():
    engine = sa.create_mock_engine("mysql://", executor=lambda *a, **k: None)
    with pytest.raises(ValueError, match="sqlite and postgresql"):
        SqlBucket(engine)


def test_sql_uses_database_clock_on_postgres(postgres_spec, key, monkeypatch):
    # A host whose clock is an hour fast must not hand out early slots on a shared PostgreSQL.
    bucket, close = build_bucket(postgres_spec, 2.0, 1)
    try:
        assert bucket.acquire(key, max_wait=0) == 0.0
        real_time = time.time
        monkeypatch.setattr(time, "time", lambda: real_time() + 3600)
        with pytest.raises(RateLimited) as info:
            bucket.acquire(key, max_wait=0)
        assert 0.3 < info.value.retry_after <= 0.5 + 1e-6
    finally:
        close()


def test_redis_key_expires_when_drained(redis_spec, key):
    import redis

    bucket, close = build_bucket(redis_spec, 2.0, 50)
    client = redis.Redis.from_url(REDIS_URL)
    try:
        bucket.acquire(key, max_wait=0)
        bucket.acquire(key, max_wait=0)
        ttl_ms = client.pttl(REDIS_PREFIX + key)
        assert 500 <= ttl_ms <= 1001  # two requests = 1.0 s until the bucket is empty
    finally:
        client.close()
        close()


@pytest.mark.parametrize(("rate", "burst"), [(0, 50), (-1, 50), (math.nan, 50), (2, 0), (2, 1.5)])
def test_bad_configuration(rate, burst):
    with pytest.raises(ValueError):
        MemoryBucket(rate, burst)


@pytest.mark.parametrize("max_wait", [-0.1, math.nan])
def test_bad_max_wait(make, key, max_wait):
    with pytest.raises(ValueError):
        make().acquire(key, max_wait)


# --- pause after QUERY_LIMIT_EXCEEDED, probe, failover (issue 10, defects 2, 6, 9) ---


def test_pause_holds_the_key_then_the_bucket_is_full(make, key):
    bucket = make(rate=10.0, burst=5)
    assert bucket.acquire(key, max_wait=0) == 0.0
    assert bucket.paused(key) == 0.0
    bucket.pause(key, 1.0)
    assert 0.7 < bucket.paused(key) <= 1.0 + 1e-3
    assert bucket.paused(f"{key}-other") == 0.0  # per key
    with pytest.raises(RateLimited) as refused:
        bucket.acquire(key, max_wait=0.5)  # the pause is longer than the caller may wait
    assert 0.7 < refused.value.retry_after <= 1.0 + 1e-3
    # The next slot is at the pause end, then one per interval: the bucket is full, not empty.
    first = bucket.acquire(key, max_wait=3)
    second = bucket.acquire(key, max_wait=3)
    assert 0.7 < first <= 1.0 + 1e-3
    assert second - first == pytest.approx(0.1, abs=0.05)
    # A shorter pause never cuts a longer one short.
    bucket.pause(key, 0.1)
    assert bucket.paused(key) > 0.5
    assert bucket.acquire(f"{key}-other", max_wait=0) == 0.0


def test_probe_answers_on_a_working_backend(make):
    make().probe()


@pytest.mark.parametrize("seconds", [0, -1, float("nan"), float("inf")])
def test_bad_pause(seconds, key):
    with pytest.raises(ValueError):
        MemoryBucket().pause(key, seconds)


def test_sqlite_probe_fails_on_a_read_only_bucket_file(sqlite_spec, key):
    import sqlite3

    path = sqlite_spec[1]
    SqlBucket(sqlite_engine(path), sqlite_spec[2]).acquire(key, max_wait=0)  # file exists
    engine = sa.create_engine("sqlite://", creator=lambda: sqlite3.connect(
        f"file:{path}?mode=ro", uri=True, check_same_thread=False))
    try:
        bucket = SqlBucket(engine, sqlite_spec[2])
        with pytest.raises(sa.exc.OperationalError):
            bucket.probe()
        with pytest.raises(sa.exc.OperationalError):
            bucket.acquire(key, max_wait=0)  # what a view would meet: health agrees
    finally:
        engine.dispose()


class FlakyBucket:
    """A primary bucket that raises ``exc`` while ``down``; otherwise a MemoryBucket."""

    def __init__(self, exc):
        self.exc = exc
        self.down = True
        self.calls = 0
        self.inner = MemoryBucket(2.0, 2)

    def __getattr__(self, name):
        def call(*args):
            self.calls += 1
            if self.down:
                raise self.exc
            return getattr(self.inner, name)(*args)

        return call


@pytest.mark.parametrize("exc_name", ["ConnectionError", "TimeoutError"])
def test_failover_bucket_uses_the_database_while_redis_fails(exc_name, key):
    import redis

    from leadcard.core.outage import Breaker

    now = [1000.0]
    breaker = Breaker("Redis", open_seconds=2.0, clock=lambda: now[0])
    primary = FlakyBucket(getattr(redis, exc_name)("gone"))
    fallback = MemoryBucket(2.0, 3)
    bucket = ratelimit.FailoverBucket(primary, fallback, breaker, (redis.RedisError,))
    # Never refused because Redis is gone: the fallback's own burst and rate apply.
    assert [bucket.acquire(key, max_wait=0) for _ in range(3)] == [0.0, 0.0, 0.0]
    assert primary.calls == 1 and breaker.errors == 1 and not breaker.healthy
    with pytest.raises(RateLimited):
        bucket.acquire(key, max_wait=0)  # the fallback's answer
    bucket.pause(key, 5.0)
    assert bucket.paused(key) > 4.0 and fallback.paused(key) > 4.0
    bucket.probe()
    assert primary.calls == 1  # skipped while the breaker is open
    # Redis is back: after the open interval the trial goes to it, and so does all after.
    primary.down = False
    now[0] += 2.5
    assert bucket.acquire(key, max_wait=0) == 0.0
    assert breaker.healthy and primary.calls == 2
    assert bucket.acquire(key, max_wait=0) == 0.0
    with pytest.raises(RateLimited):  # Redis's own refusal is an answer, not a failure
        bucket.acquire(key, max_wait=0)
    assert breaker.healthy and primary.calls == 4
