"""TTL cache for per-portal reference data (lead fields, statuses, currencies, users).

Public API
----------
``Cache``                      protocol: get, get_many, set, set_many, delete, delete_prefix
``MemoryCache(max_entries)``   one process, thread-safe, LRU + TTL
``RedisCache(client, prefix)`` shared by every worker and host; JSON values with ``SET PX``
``FailOpenCache(inner, breaker, errors)`` a Redis outage becomes a miss / a skipped write
``make_cache(redis_client, breaker)`` fail-open Redis when the app has a client, memory otherwise

Conventions: keys are ``str`` and start with the portal's ``member_id`` (``"<member_id>:fields"``)
so that ``delete_prefix("<member_id>:")`` forgets a portal on uninstall. Values must be
JSON-serialisable and go through JSON on both backends, so a value reads back the same
everywhere (tuples come back as lists, dict keys as strings). Values read back are
**read-only**: ``MemoryCache`` hands every reader the same decoded object (decoding the lead
fields dictionary on every view was ~8 % of a view's CPU), so a caller that changed one would
change it for everyone. ``None`` cannot be stored: ``get`` returns ``None`` for "miss", so cache
an empty ``{}`` or ``[]`` to remember "nothing there".

Exceptions: ``ValueError`` for ``None`` values, bad TTLs and non-JSON values (``TypeError``
from ``json`` for unsupported types). ``RedisCache`` lets Redis errors (``redis.RedisError``)
propagate; the app never uses it bare: ``make_cache`` wraps it in ``FailOpenCache``, because
everything cached here can be read from Bitrix24 again, so a cache outage means "fetch from
Bitrix24", never "fail the view" (issue 10, defect 2).
"""

from __future__ import annotations

import json
import math
import re
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Protocol

from leadcard.core.outage import Breaker


class Cache(Protocol):
    """A TTL cache of JSON-serialisable values keyed by str."""

    def get(self, key: str) -> Any | None:
        """The value, or None when missing or expired."""
        ...

    def get_many(self, keys: Iterable[str]) -> dict[str, Any]:
        """Values of the keys that are present; missing and expired keys are left out."""
        ...

    def set(self, key: str, value: Any, ttl: float) -> None:
        """Store ``value`` for ``ttl`` seconds."""
        ...

    def set_many(self, mapping: Mapping[str, Any], ttl: float) -> None:
        """Store every item for ``ttl`` seconds."""
        ...

    def delete(self, key: str) -> None:
        """Forget one key (no error when missing)."""
        ...

    def delete_prefix(self, prefix: str) -> int:
        """Forget every key starting with ``prefix``; return how many were removed."""
        ...


def _encode(value: Any) -> str:
    """The stored form of a value; refuses what would not read back the same."""
    if value is None:
        raise ValueError("None cannot be cached (it means 'miss'); cache {} or [] instead")
    # allow_nan=False: NaN/Infinity are not JSON and other readers of Redis would choke.
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False)


def _check_ttl(ttl: float) -> float:
    if not (ttl > 0 and math.isfinite(ttl)):
        raise ValueError("ttl must be a positive number of seconds")
    return float(ttl)


class MemoryCache(Cache):
    """LRU + TTL in an ordered dict under one lock; per process (one per gunicorn worker)."""

    def __init__(
        self, max_entries: int = 10_000, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        """``clock`` is injectable for tests; monotonic so wall-clock steps do not expire data."""
        if max_entries < 1:
            raise ValueError("max_entries must be >= 1")
        self.max_entries = max_entries
        self._clock = clock
        self._lock = threading.Lock()
        # key -> (expires_at, value decoded from its JSON text); least recently used first.
        # The value went through JSON once, at set time, so it reads back as Redis's would.
        self._data: OrderedDict[str, tuple[float, Any]] = OrderedDict()

    def __len__(self) -> int:
        with self._lock:
            return len(self._data)

    def _lookup(self, key: str, now: float) -> Any | None:
        """The stored value of a live key, marking it recently used; lock must be held."""
        entry = self._data.get(key)
        if entry is None:
            return None
        if entry[0] <= now:
            del self._data[key]  # expired entries go on first touch
            return None
        self._data.move_to_end(key)
        return entry[1]

    def get(self, key: str) -> Any | None:
        """The value of a live key, or None."""
        with self._lock:
            return self._lookup(key, self._clock())

    def get_many(self, keys: Iterable[str]) -> dict[str, Any]:
        """Live values for ``keys`` (shared, read-only)."""
        with self._lock:
            now = self._clock()
            found = {key: self._lookup(key, now) for key in keys}
        return {key: value for key, value in found.items() if value is not None}

    def set(self, key: str, value: Any, ttl: float) -> None:
        """Store one value, evicting the least recently used entries beyond ``max_entries``."""
        self.set_many({key: value}, ttl)

    def set_many(self, mapping: Mapping[str, Any], ttl: float) -> None:
        """Store several values with one expiry; all are encoded before any is stored."""
        ttl = _check_ttl(ttl)
        decoded = {key: json.loads(_encode(value)) for key, value in mapping.items()}
        with self._lock:
            expires_at = self._clock() + ttl
            for key, value in decoded.items():
                self._data[key] = (expires_at, value)
                self._data.move_to_end(key)
            while len(self._data) > self.max_entries:
                self._data.popitem(last=False)

    def delete(self, key: str) -> None:
        """Forget one key."""
        with self._lock:
            self._data.pop(key, None)

    def delete_prefix(self, prefix: str) -> int:
        """Forget every key starting with ``prefix`` (a linear scan; fine at 10k entries)."""
        with self._lock:
            doomed = [key for key in self._data if key.startswith(prefix)]
            for key in doomed:
                del self._data[key]
        return len(doomed)


_GLOB_SPECIAL = re.compile(r"([\\*?\[\]])")


class RedisCache(Cache):
    """JSON values under ``prefix + key`` with a per-key expiry (``SET ... PX``)."""

    def __init__(self, redis_client: Any, prefix: str = "leadcard:c:") -> None:
        """``redis_client`` is a ``redis.Redis`` (``decode_responses`` either way)."""
        self._redis = redis_client
        self._prefix = prefix

    @staticmethod
    def _px(ttl: float) -> int:
        """TTL in whole milliseconds, rounded up so a short TTL never becomes "no expiry"."""
        return max(1, math.ceil(_check_ttl(ttl) * 1000))

    def get(self, key: str) -> Any | None:
        """One GET."""
        raw = self._redis.get(self._prefix + key)
        return None if raw is None else json.loads(raw)

    def get_many(self, keys: Iterable[str]) -> dict[str, Any]:
        """One MGET for all keys."""
        keys = list(keys)
        if not keys:
            return {}
        raws = self._redis.mget([self._prefix + key for key in keys])
        return {
            key: json.loads(raw) for key, raw in zip(keys, raws, strict=True) if raw is not None
        }

    def set(self, key: str, value: Any, ttl: float) -> None:
        """One SET with PX."""
        self._redis.set(self._prefix + key, _encode(value), px=self._px(ttl))

    def set_many(self, mapping: Mapping[str, Any], ttl: float) -> None:
        """SET PX per key in one pipelined round trip (MSET cannot set an expiry)."""
        px = self._px(ttl)
        encoded = {self._prefix + key: _encode(value) for key, value in mapping.items()}
        if not encoded:
            return
        pipe = self._redis.pipeline(transaction=False)
        for name, text in encoded.items():
            pipe.set(name, text, px=px)
        pipe.execute()

    def delete(self, key: str) -> None:
        """One DEL."""
        self._redis.delete(self._prefix + key)

    def delete_prefix(self, prefix: str) -> int:
        """SCAN for ``prefix*`` (glob characters in the prefix escaped) and UNLINK in batches.

        SCAN does not block Redis the way KEYS does; keys written during the scan may survive.
        """
        pattern = _GLOB_SPECIAL.sub(r"\\\1", self._prefix + prefix) + "*"
        removed, batch = 0, []
        for name in self._redis.scan_iter(match=pattern, count=500):
            batch.append(name)
            if len(batch) >= 500:
                removed += self._redis.unlink(*batch)
                batch = []
        if batch:
            removed += self._redis.unlink(*batch)
        return removed


class FailOpenCache(Cache):
    """``inner`` (a ``RedisCache``) with every outage turned into "not cached".

    A failed or skipped read is a miss (``get`` None, ``get_many`` without the keys), a failed
    write is dropped, a failed ``delete_prefix`` removes nothing (returns 0: install and
    uninstall go on; what stays behind expires with its TTL — it is the same portal's
    reference data). ``breaker`` counts, logs (throttled) and, after a failure, skips Redis
    for a while, so a hung Redis costs one read timeout per process per interval. Only
    ``errors`` (the backend's, e.g. ``redis.RedisError``) are absorbed: a value that cannot
    be stored (``ValueError``/``TypeError``) is the caller's bug and still raises when the
    write is attempted (not re-checked while Redis is skipped: encoding the fields
    dictionary twice per cold view is not worth it).
    """

    def __init__(self, inner: Cache, breaker: Breaker,
                 errors: tuple[type[BaseException], ...]) -> None:
        self.inner = inner
        self.breaker = breaker
        self._errors = errors

    def _guard(self, what: str, call: Callable[[], Any], missing: Any) -> Any:
        if not self.breaker.allow():
            return missing
        try:
            result = call()
        except self._errors as exc:
            self.breaker.failure(exc, f"cache {what}")
            return missing
        self.breaker.success()
        return result

    def get(self, key: str) -> Any | None:
        """The value, or None when missing or Redis is unavailable."""
        return self._guard("get", lambda: self.inner.get(key), None)

    def get_many(self, keys: Iterable[str]) -> dict[str, Any]:
        """Present values; none while Redis is unavailable."""
        keys = list(keys)
        if not keys:
            return {}
        return self._guard("get_many", lambda: self.inner.get_many(keys), {})

    def set(self, key: str, value: Any, ttl: float) -> None:
        """Store, or drop the write while Redis is unavailable."""
        self._guard("set", lambda: self.inner.set(key, value, ttl), None)

    def set_many(self, mapping: Mapping[str, Any], ttl: float) -> None:
        """Store all, or drop the writes while Redis is unavailable."""
        if not mapping:
            return
        self._guard("set_many", lambda: self.inner.set_many(mapping, ttl), None)

    def delete(self, key: str) -> None:
        """Forget one key, or nothing while Redis is unavailable."""
        self._guard("delete", lambda: self.inner.delete(key), None)

    def delete_prefix(self, prefix: str) -> int:
        """Forget the prefix's keys; 0 while Redis is unavailable (they expire by TTL)."""
        return int(self._guard("delete_prefix", lambda: self.inner.delete_prefix(prefix), 0))


class CountedCache(Cache):
    """Tells `count(hits, misses)` of every look-up (the operator's metrics), then answers
    as `inner` does; writes pass straight through. `count` must be cheap and not raise."""

    def __init__(self, inner: Cache, count: Callable[[int, int], None]) -> None:
        self.inner = inner
        self._count = count

    def get(self, key: str) -> Any | None:
        """The inner cache's value, counted as a hit or a miss."""
        value = self.inner.get(key)
        self._count(0 if value is None else 1, 1 if value is None else 0)
        return value

    def get_many(self, keys: Iterable[str]) -> dict[str, Any]:
        """The inner cache's values, each asked key counted as a hit or a miss."""
        keys = list(keys)
        found = self.inner.get_many(keys)
        if keys:
            self._count(len(found), len(keys) - len(found))
        return found

    def set(self, key: str, value: Any, ttl: float) -> None:
        self.inner.set(key, value, ttl)

    def set_many(self, mapping: Mapping[str, Any], ttl: float) -> None:
        self.inner.set_many(mapping, ttl)

    def delete(self, key: str) -> None:
        self.inner.delete(key)

    def delete_prefix(self, prefix: str) -> int:
        return self.inner.delete_prefix(prefix)


def make_cache(redis_client: Any | None = None, breaker: Breaker | None = None) -> Cache:
    """Fail-open cache on the app's Redis client (shared by all workers and hosts) when there
    is one, else a per-process ``MemoryCache``. ``breaker``: the client's (services.py builds
    one per client, shared with the bucket); a fresh one when not given."""
    if redis_client is None:
        return MemoryCache()
    import redis  # only deployments with Redis need the client

    return FailOpenCache(RedisCache(redis_client), breaker or Breaker("Redis"),
                         (redis.RedisError,))
