"""The long-lived objects one app instance needs, built once in `create_app`.

Nothing here is global: `create_app` stores a `Services` in `app.extensions["leadcard"]` and
views reach it through `current()`. Tests build their own with overrides.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from flask import current_app
from sqlalchemy.engine import Engine

from leadcard.bitrix24.http import Transport, Urllib3Transport
from leadcard.bitrix24.oauth import OAuthClient
from leadcard.bitrix24.observe import Observer
from leadcard.bitrix24.rest import RestClient
from leadcard.card.rendered import RenderedCards
from leadcard.core import metrics
from leadcard.core.config import Settings
from leadcard.core.outage import Breaker
from leadcard.core.ratelimit import Bucket
from leadcard.flows.attempts import AttemptLimits
from leadcard.flows.metrics_observer import observe_call
from leadcard.flows.portal_api import PortalApi
from leadcard.flows.rest_log_writer import RestLogWriter
from leadcard.storage import db
from leadcard.storage.action_keys import ActionKeys
from leadcard.storage.buckets import FailoverBucket, RedisBucket, SqlBucket
from leadcard.storage.cache import Cache, CountedCache, make_cache
from leadcard.storage.event_log import ProcessedEvents
from leadcard.storage.grant_journal import GrantJournal
from leadcard.storage.keyring import KeyRing
from leadcard.storage.portals import PortalStore
from leadcard.storage.rest_log import RestLog


@dataclass
class Services:
    settings: Settings
    engine: Engine
    keyring: KeyRing
    store: PortalStore
    oauth: OAuthClient
    rest: RestClient
    portal_api: PortalApi
    cache: Cache
    bucket: Bucket
    redis: Breaker | None  # the Redis client's breaker (health, counters); None without Redis
    rendered: RenderedCards
    events: ProcessedEvents
    attempts: AttemptLimits
    action_keys: ActionKeys  # the idempotency ledger of writes from the card
    rest_log: RestLogWriter | None = None  # every upstream attempt, written in the background


# Redis timeouts: a view has 10 s and Redis is only a shortcut (cache, bucket), so a hung or
# unreachable Redis may cost a view at most a couple of these (the breaker then skips Redis
# for a few seconds: outage.py). A healthy Redis answers in well under a millisecond.
REDIS_TIMEOUT = 0.25


def _redis(url: str):
    """The app instance's one Redis client, shared by the cache and the bucket.

    redis-py's defaults would retry 3 times with back-off on timeouts too (a hung Redis cost
    a view 4 x 5 s). Here: one immediate retry on a connection error only (a pooled socket
    Redis closed when it restarted: the retry reconnects), none on a timeout; PING before
    using a connection idle for 30 s, so a socket dropped by a proxy is found before a
    command is lost on it. ``from_url`` keeps these unless the URL overrides them.
    """
    import redis
    from redis.backoff import NoBackoff
    from redis.retry import Retry

    return redis.Redis.from_url(
        url,
        socket_timeout=REDIS_TIMEOUT,
        socket_connect_timeout=REDIS_TIMEOUT,
        retry=Retry(NoBackoff(), 1, supported_errors=(redis.ConnectionError,)),
        health_check_interval=30,
    )


def _bucket_engine(database_url: str):
    """On SQLite the bucket lives in a file of its own, beside the main database.

    SQLite has one write lock per file, and a token refresh holds it (BEGIN IMMEDIATE)
    for the length of the OAuth call; the bucket is written before every upstream request,
    so sharing the file would stall every card view behind any refresh (bench/run.py
    measured 1 s views during a 1 s refresh). Bucket state is disposable: no migration.
    """
    path = database_url.split("///", 1)[1] if "///" in database_url else ""
    if not path or path == ":memory:":
        return db.make_engine("sqlite://")
    root, _ext = os.path.splitext(path)
    return db.make_engine(f"sqlite:///{root}-ratelimit.sqlite3")


def build_services(settings: Settings, transport: Transport | None = None) -> Services:
    """Everything one app instance needs. `transport` is the one outbound HTTP stack of
    both the portal REST client and the OAuth server client (the real urllib3 one unless
    a test hands in a fake Bitrix24)."""
    transport = transport or Urllib3Transport()
    engine = db.make_engine(settings.database_url)
    keyring = KeyRing.from_settings(settings.token_keys, settings.instance_path)
    # Renewed grants not yet committed survive a crash here (storage/refresh.py, grant_journal.py).
    journal = GrantJournal(os.path.join(settings.instance_path, "grant-journal"), keyring)
    store = PortalStore(engine, keyring, settings.secret_key, journal=journal)
    # The REST log (Market rule: always on) observes both clients (rest_log_writer.py).
    rest_log = RestLogWriter(RestLog(engine, keyring), settings.rest_log_days)
    # Beside it, the metrics count and time each attempt (metrics_observer.py).
    observers: list[Observer] = [rest_log, observe_call]
    oauth = OAuthClient(settings, transport, observers=observers)
    # The per-portal bucket must be shared by every worker and host (limits are per portal
    # and per source IP — settings/performance/limits.md): Redis when configured, else the
    # database, which every worker of this deployment shares. With Redis, the database
    # bucket is also the fallback while Redis fails (FailoverBucket explains why).
    sql_bucket = _sql_bucket(settings, engine)
    redis_client, breaker = None, None
    bucket: Bucket = sql_bucket
    if settings.redis_url:
        import redis

        redis_client, breaker = _redis(settings.redis_url), Breaker("Redis")
        bucket = FailoverBucket(
            RedisBucket(redis_client, rate=settings.rate_per_second,
                        burst=int(settings.rate_burst)),
            sql_bucket, breaker, (redis.RedisError,),
        )
    rest = RestClient(
        transport,
        bucket,
        connect_timeout=settings.connect_timeout,
        read_timeout=settings.read_timeout,
        allow_http=settings.allow_http,
        observers=observers,
    )
    return Services(
        settings=settings,
        engine=engine,
        keyring=keyring,
        store=store,
        oauth=oauth,
        rest=rest,
        portal_api=PortalApi(store, rest, oauth),
        cache=CountedCache(make_cache(redis_client, breaker), metrics.observe_cache),
        bucket=bucket,
        redis=breaker,
        # Saves ~1.1 ms CPU per warm view: ~0.6 % at 200 ms upstream, ~2 % at 50 ms (rendered.py).
        rendered=RenderedCards(settings.card_cache_entries, ttl=settings.reference_ttl),
        events=ProcessedEvents(engine),
        action_keys=ActionKeys(engine),
        # Always the database bucket: these limits are few and rare, must hold across hosts,
        # and must not open up while Redis is away.
        attempts=AttemptLimits(
            lambda rate, burst: sql_bucket.sibling(rate=rate, burst=int(burst)),
            settings.secret_key,
        ),
        rest_log=rest_log,
    )


def _sql_bucket(settings: Settings, engine: Engine) -> SqlBucket:
    """The database bucket: its own SQLite file beside the database, or the shared database."""
    if db.is_sqlite(engine):
        bucket_engine = _bucket_engine(settings.database_url)
        bucket = SqlBucket(bucket_engine, rate=settings.rate_per_second,
                           burst=int(settings.rate_burst))
        # Every worker does this at boot, on a fresh file at the same moment: take the write
        # lock first so the others wait, then find the table (a plain check-then-create in
        # WAL mode fails at once with "database is locked" and the worker never boots).
        with db.write_transaction(bucket_engine) as conn:
            bucket.table.create(conn, checkfirst=True)
        return bucket
    return SqlBucket(
        engine, metadata=db.metadata, rate=settings.rate_per_second, burst=int(settings.rate_burst)
    )


def current() -> Services:
    return current_app.extensions["leadcard"]
