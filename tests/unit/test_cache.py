"""TTL cache: expiry, LRU eviction, get_many, prefix delete, JSON semantics, thread safety.

Redis tests use TEST_REDIS_URL (default redis://127.0.0.1:6379/15), skip when it is
unreachable, and only touch keys under this run's own prefix.
"""

import os
import random
import sys
import threading
import time
import uuid

import pytest

from leadcard.core.outage import Breaker
from leadcard.storage.cache import FailOpenCache, MemoryCache, RedisCache, make_cache
from tests.conftest import redis_or_skip

REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
RUN_PREFIX = f"leadcard-test:{uuid.uuid4().hex[:12]}:"


class FakeClock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now

    def advance(self, seconds):
        self.now += seconds


@pytest.fixture(scope="module")
def redis_client():
    with redis_or_skip(REDIS_URL, RUN_PREFIX) as client:
        yield client


@pytest.fixture(params=["memory", "redis"])
def cache(request):
    """A fresh cache on each backend (Redis: a prefix of its own inside this run's prefix)."""
    if request.param == "memory":
        return MemoryCache()
    client = request.getfixturevalue("redis_client")
    return RedisCache(client, prefix=f"{RUN_PREFIX}c{uuid.uuid4().hex[:8]}:")


FIELDS = {
    "TITLE": {"type": "string", "isRequired": False, "title": "Название"},
    "OPPORTUNITY": {"type": "double"},
    "UF_CRM_1": {"type": "enumeration", "items": [{"ID": "44", "VALUE": "A"}]},
}


# --- both backends ---


def test_round_trip_json_values(cache):
    values = {
        "m1:fields": FIELDS,
        "m1:statuses": [{"STATUS_ID": "NEW", "NAME": "Новый"}],
        "m1:currency": "EUR",
        "m1:count": 3,
        "m1:rate": 1.5,
        "m1:flag": False,
        "m1:empty": {},
    }
    for key, value in values.items():
        cache.set(key, value, ttl=60)
    assert {key: cache.get(key) for key in values} == values
    assert cache.get("m1:missing") is None


def test_values_read_back_as_json(cache):
    value = {"pair": (1, 2), 7: "seven"}
    cache.set("m1:t", value, ttl=60)
    value["pair"] = "changed after set"  # the cache kept its own JSON form, not this object
    assert cache.get("m1:t") == {"pair": [1, 2], "7": "seven"}  # same on every backend
    assert cache.get_many(["m1:t"]) == {"m1:t": {"pair": [1, 2], "7": "seven"}}


def test_memory_values_are_shared_read_only():
    # The documented trade: no decoding per read, so every reader gets the same object.
    cache = MemoryCache()
    cache.set("m1:t", {"items": [1]}, ttl=60)
    assert cache.get("m1:t") is cache.get_many(["m1:t"])["m1:t"]


@pytest.mark.parametrize("bad", [None, {1, 2}, object(), float("nan")])
def test_unstorable_values_are_refused_and_nothing_is_stored(cache, bad):
    with pytest.raises((ValueError, TypeError)):
        cache.set("m1:bad", bad, ttl=60)
    with pytest.raises((ValueError, TypeError)):
        cache.set_many({"m1:ok": 1, "m1:bad": bad}, ttl=60)
    assert cache.get_many(["m1:bad", "m1:ok"]) == {}


@pytest.mark.parametrize("ttl", [0, -1, float("inf"), float("nan")])
def test_bad_ttl_is_refused(cache, ttl):
    with pytest.raises(ValueError):
        cache.set("m1:x", 1, ttl=ttl)


def test_get_many_returns_only_present_keys(cache):
    cache.set_many({"m1:a": 1, "m1:b": [2], "m2:a": {"c": 3}}, ttl=60)
    assert cache.get_many(["m1:a", "m1:b", "m1:zzz", "m2:a"]) == {
        "m1:a": 1,
        "m1:b": [2],
        "m2:a": {"c": 3},
    }
    assert cache.get_many([]) == {}
    assert cache.get_many(iter(["m1:a"])) == {"m1:a": 1}  # any iterable


def test_delete(cache):
    cache.set_many({"m1:a": 1, "m1:b": 2}, ttl=60)
    cache.delete("m1:a")
    cache.delete("m1:never-set")
    assert cache.get_many(["m1:a", "m1:b"]) == {"m1:b": 2}


def test_delete_prefix_forgets_one_portal_only(cache):
    cache.set_many(
        {
            "p1:fields": 1,
            "p1:users": 2,
            "p10:fields": 3,  # shares the characters "p1" but not the prefix "p1:"
            "p2:fields": 4,
        },
        ttl=60,
    )
    assert cache.delete_prefix("p1:") == 2
    assert cache.get_many(["p1:fields", "p1:users", "p10:fields", "p2:fields"]) == {
        "p10:fields": 3,
        "p2:fields": 4,
    }
    assert cache.delete_prefix("nobody:") == 0


def test_delete_prefix_treats_glob_characters_literally(cache):
    cache.set_many({"a*[b]?\\:x": 1, "aXbY:x": 2, "a[b]Z:x": 3, "ab:x": 4}, ttl=60)
    assert cache.delete_prefix("a*[b]?\\:") == 1
    assert cache.get_many(["aXbY:x", "a[b]Z:x", "ab:x"]) == {"aXbY:x": 2, "a[b]Z:x": 3, "ab:x": 4}


@pytest.fixture
def fast_switching():
    """Switch threads every few microseconds so unguarded check-then-act races show up."""
    previous = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    yield
    sys.setswitchinterval(previous)


def test_threads_smoke(cache, fast_switching):
    keys = [f"m{i % 5}:k{i}" for i in range(40)]
    rounds = 3000 if isinstance(cache, MemoryCache) else 300
    errors = []
    barrier = threading.Barrier(8)

    def hammer(seed):
        rnd = random.Random(seed)
        barrier.wait()
        try:
            for n in range(rounds):
                key = rnd.choice(keys)
                op = rnd.random()
                if op < 0.4:
                    cache.set(key, {"k": key, "n": n}, ttl=60)
                elif op < 0.7:
                    value = cache.get(key)
                    assert value is None or value["k"] == key
                elif op < 0.85:
                    got = cache.get_many(rnd.sample(keys, 5))
                    assert all(v["k"] == k for k, v in got.items())
                elif op < 0.95:
                    cache.delete(key)
                else:
                    cache.delete_prefix(f"m{rnd.randrange(5)}:")
        except Exception as exc:  # collected: an exception in a thread would otherwise vanish
            errors.append(exc)

    threads = [threading.Thread(target=hammer, args=(seed,)) for seed in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == []


# --- memory backend ---


def test_memory_expiry_on_injected_clock():
    clock = FakeClock()
    cache = MemoryCache(clock=clock)
    cache.set("m1:fields", FIELDS, ttl=300)
    cache.set("m1:users", [1], ttl=10)
    clock.advance(9.999)
    assert cache.get_many(["m1:fields", "m1:users"]) == {"m1:fields": FIELDS, "m1:users": [1]}
    clock.advance(0.001)  # exactly at the expiry instant the entry is gone
    assert cache.get("m1:users") is None
    assert cache.get_many(["m1:fields", "m1:users"]) == {"m1:fields": FIELDS}
    assert len(cache) == 1  # expired entries are dropped, not just hidden
    cache.set("m1:users", [2], ttl=10)  # re-set restarts the clock
    clock.advance(5)
    assert cache.get("m1:users") == [2]
    clock.advance(300)
    assert cache.get("m1:fields") is None


def test_memory_lru_eviction():
    cache = MemoryCache(max_entries=3)
    cache.set_many({"a": 1, "b": 2, "c": 3}, ttl=60)
    assert cache.get("a") == 1  # a is now the most recently used
    cache.set("d", 4, ttl=60)  # evicts b, the least recently used
    assert cache.get_many(["a", "b", "c", "d"]) == {"a": 1, "c": 3, "d": 4}
    cache.get_many(["c"])  # get_many counts as use too
    cache.set("a", 10, ttl=60)  # overwriting refreshes, never grows past the limit
    cache.set("e", 5, ttl=60)  # evicts d
    assert cache.get_many(["a", "c", "d", "e"]) == {"a": 10, "c": 3, "e": 5}
    assert len(cache) == 3


def test_memory_threads_respect_max_entries(fast_switching):
    cache = MemoryCache(max_entries=20)
    barrier = threading.Barrier(8)
    errors = []

    def writer(seed):
        rnd = random.Random(seed)
        barrier.wait()
        try:
            for _ in range(3000):
                key = f"k{rnd.randrange(200)}"
                cache.set(key, key, ttl=60)
                value = cache.get(key)
                assert value is None or value == key
                assert len(cache) <= 20
        except Exception as exc:
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(seed,)) for seed in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == []
    assert len(cache) == 20


def test_memory_rejects_bad_size():
    with pytest.raises(ValueError):
        MemoryCache(max_entries=0)


# --- redis backend ---


def test_redis_expiry_is_set_on_every_key(redis_client):
    cache = RedisCache(redis_client, prefix=f"{RUN_PREFIX}exp:")
    cache.set("m1:fields", FIELDS, ttl=30)
    cache.set_many({"m1:a": 1, "m1:b": 2}, ttl=0.0004)  # rounds up to 1 ms, never "forever"
    assert 29_000 < redis_client.pttl(f"{RUN_PREFIX}exp:m1:fields") <= 30_000
    cache.set("m1:short", 1, ttl=0.05)
    assert cache.get("m1:short") == 1
    time.sleep(0.12)
    assert cache.get_many(["m1:short", "m1:a", "m1:b", "m1:fields"]) == {"m1:fields": FIELDS}


def test_redis_stores_plain_json_under_its_prefix(redis_client):
    cache = RedisCache(redis_client, prefix=f"{RUN_PREFIX}raw:")
    cache.set("m1:currency", {"CURRENCY": "EUR", "name": "Евро"}, ttl=30)
    raw = redis_client.get(f"{RUN_PREFIX}raw:m1:currency")
    assert raw.decode("utf-8") == '{"CURRENCY":"EUR","name":"Евро"}'


def test_redis_delete_prefix_leaves_other_prefixes_alone(redis_client):
    ours = RedisCache(redis_client, prefix=f"{RUN_PREFIX}ours:")
    theirs = RedisCache(redis_client, prefix=f"{RUN_PREFIX}theirs:")
    ours.set("p1:x", 1, ttl=30)
    theirs.set("p1:x", 2, ttl=30)
    redis_client.set(f"{RUN_PREFIX}ours-but-not-cache:p1:x", "3", px=30_000)
    assert ours.delete_prefix("") == 1
    assert theirs.get("p1:x") == 2
    assert redis_client.get(f"{RUN_PREFIX}ours-but-not-cache:p1:x") == b"3"


def test_redis_delete_prefix_many_keys(redis_client):
    cache = RedisCache(redis_client, prefix=f"{RUN_PREFIX}bulk:")
    cache.set_many({f"p1:k{i}": i for i in range(1200)}, ttl=30)  # more than one UNLINK batch
    cache.set("p2:k", 1, ttl=30)
    assert cache.delete_prefix("p1:") == 1200
    assert cache.get_many([f"p1:k{i}" for i in range(1200)]) == {}
    assert cache.get("p2:k") == 1


def test_redis_with_decode_responses_client(redis_client):
    import redis

    client = redis.Redis.from_url(REDIS_URL, decode_responses=True)
    try:
        cache = RedisCache(client, prefix=f"{RUN_PREFIX}dec:")
        cache.set_many({"p1:a": {"x": 1}, "p1:b": [1]}, ttl=30)
        assert cache.get_many(["p1:a", "p1:b"]) == {"p1:a": {"x": 1}, "p1:b": [1]}
        assert cache.delete_prefix("p1:") == 2
    finally:
        client.close()


# --- factory ---


def test_make_cache_without_redis_is_memory():
    assert isinstance(make_cache(None), MemoryCache)
    assert isinstance(make_cache(), MemoryCache)


def test_make_cache_with_redis_client_fails_open(redis_client):
    cache = make_cache(redis_client)
    assert isinstance(cache, FailOpenCache) and isinstance(cache.inner, RedisCache)
    try:
        cache.set(f"{RUN_PREFIX}factory", [1], ttl=5)
        assert cache.get(f"{RUN_PREFIX}factory") == [1]
        # Default prefix, so the key lives at "leadcard:c:<key>": clean that one key up.
        assert redis_client.exists(f"leadcard:c:{RUN_PREFIX}factory") == 1
    finally:
        cache.delete(f"{RUN_PREFIX}factory")


# --- fail open (issue 10, defect 2) ---


class BrokenRedis:
    """A redis.Redis stand-in whose every command raises ``exc``; counts the calls."""

    def __init__(self, exc):
        self.exc = exc
        self.calls = 0

    def _fail(self, *args, **kwargs):
        self.calls += 1
        raise self.exc

    get = mget = set = delete = unlink = scan_iter = _fail

    def pipeline(self, transaction=True):
        outer = self

        class Pipe:
            def set(self, *a, **k):
                return self

            def execute(self):
                outer._fail()

        return Pipe()


def _fail_open(client, clock):
    import redis

    breaker = Breaker("Redis", open_seconds=2.0, log_every=60.0, clock=clock)
    return FailOpenCache(RedisCache(client, prefix="p:"), breaker, (redis.RedisError,)), breaker


@pytest.mark.parametrize("exc_name", ["ConnectionError", "TimeoutError"])
def test_every_operation_survives_a_redis_outage(exc_name, caplog):
    import redis

    clock = FakeClock()
    client = BrokenRedis(getattr(redis, exc_name)("Redis is gone"))
    cache, breaker = _fail_open(client, clock)
    for _ in range(3):
        clock.advance(2.5)  # past the open interval each time: every operation reaches Redis
        assert cache.get("m1:fields") is None
        clock.advance(2.5)
        assert cache.get_many(["m1:a", "m1:b"]) == {}
        clock.advance(2.5)
        cache.set("m1:fields", {"A": 1}, ttl=60)
        clock.advance(2.5)
        cache.set_many({"m1:x": 1, "m1:y": [2]}, ttl=60)
        clock.advance(2.5)
        cache.delete("m1:x")
        clock.advance(2.5)
        assert cache.delete_prefix("m1:") == 0
    assert client.calls == 18 and breaker.errors == 18 and not breaker.healthy
    # Logged, throttled, without a traceback: one line for 18 failures within a minute.
    lines = [r for r in caplog.records if r.name == "leadcard.core.outage"]
    assert len(lines) == 1 and lines[0].exc_info is None
    assert exc_name in lines[0].getMessage()


def test_open_breaker_skips_redis_then_one_trial_and_recovery():
    import redis

    clock = FakeClock()
    client = BrokenRedis(redis.TimeoutError("Timeout reading from socket"))
    cache, breaker = _fail_open(client, clock)
    assert cache.get("m1:fields") is None and client.calls == 1
    # A hung Redis costs one timeout per interval, not one per call.
    for _ in range(50):
        assert cache.get_many(["m1:fields"]) == {}
        cache.set("m1:fields", {"A": 1}, ttl=60)
    assert client.calls == 1 and breaker.skipped == 100
    clock.advance(2.1)
    assert cache.get("m1:fields") is None and client.calls == 2  # the trial, failed again
    assert cache.get("m1:fields") is None and client.calls == 2  # open again
    # Redis returns: the next trial succeeds and every call goes to Redis again.
    working = MemoryBackedRedis()
    cache.inner = RedisCache(working, prefix="p:")
    clock.advance(2.1)
    cache.set("m1:fields", {"A": 1}, ttl=60)
    assert breaker.healthy
    assert cache.get("m1:fields") == {"A": 1} and cache.get_many(["m1:fields"]) == {
        "m1:fields": {"A": 1}}


def test_values_that_cannot_be_stored_still_raise_through_the_wrapper():
    cache, _ = _fail_open(MemoryBackedRedis(), FakeClock())
    with pytest.raises(ValueError):
        cache.set("m1:x", None, ttl=60)
    with pytest.raises(ValueError):
        cache.set("m1:x", 1, ttl=0)


class MemoryBackedRedis:
    """Just enough of redis.Redis (get/mget/set) for RedisCache, in a dict."""

    def __init__(self):
        self.data = {}

    def get(self, name):
        return self.data.get(name)

    def mget(self, names):
        return [self.data.get(n) for n in names]

    def set(self, name, value, px=None):
        self.data[name] = value
