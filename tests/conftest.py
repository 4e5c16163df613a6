"""Shared fixtures: payload files, database URLs for SQLite and PostgreSQL."""

from __future__ import annotations

import json
import os
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

PAYLOADS = Path(__file__).parent / "fixtures" / "payloads"

# PostgreSQL cases run when TEST_DATABASE_URL points at a server (.ci/run sets it);
# elsewhere they are skipped with this reason.
PG_URL = os.environ.get("TEST_DATABASE_URL", "")
PG_SKIP_REASON = "PostgreSQL cases need TEST_DATABASE_URL=postgresql://… (set by .ci/run)"


def load_payload(name: str) -> dict:
    return json.loads((PAYLOADS / name).read_text())


@contextmanager
def throwaway_pg_schema() -> Iterator[str]:
    """A URL on TEST_DATABASE_URL's server whose search_path is a fresh, empty schema
    (to PostgreSQL an empty database as far as the app can tell); dropped afterwards.

    The admin engine pools nothing and the drop is retried for a while, so the schema also
    goes after a test that restarted or cut the server."""
    import sqlalchemy as sa

    from leadcard.core.config import normalise_database_url

    base = normalise_database_url(PG_URL)
    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(base, poolclass=sa.pool.NullPool)
    with admin.begin() as conn:
        conn.exec_driver_sql(f"CREATE SCHEMA {schema}")
    sep = "&" if "?" in base else "?"
    try:
        yield f"{base}{sep}options=-csearch_path%3D{schema}"
    finally:
        deadline = time.monotonic() + 30
        while True:
            try:
                with admin.begin() as conn:
                    conn.exec_driver_sql(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
                break
            except sa.exc.OperationalError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.5)
        admin.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request, tmp_path):
    """A fresh, empty database of each kind (PostgreSQL: a throwaway schema)."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path}/leadcard.sqlite3"
        return
    if not PG_URL:
        pytest.skip(PG_SKIP_REASON)
    with throwaway_pg_schema() as url:
        yield url


@pytest.fixture
def pg_database_url():
    """A fresh, empty PostgreSQL database (throwaway schema), for PostgreSQL-only cases."""
    if not PG_URL:
        pytest.skip(PG_SKIP_REASON)
    with throwaway_pg_schema() as url:
        yield url


@pytest.fixture
def migrated_engine(database_url):
    """An engine on a fresh database of each kind with the Alembic history applied."""
    from leadcard.storage import db

    engine = db.make_engine(database_url)
    db.upgrade(engine)
    yield engine
    engine.dispose()


@contextmanager
def redis_or_skip(url: str, prefix: str) -> Iterator:
    """A client for the Redis at ``url``, or skip the test when it does not answer; afterwards
    the keys under ``prefix`` (this run's) are deleted."""
    import redis

    client = redis.Redis.from_url(url, socket_connect_timeout=2)
    try:
        client.ping()
    except redis.RedisError as exc:
        client.close()
        pytest.skip(f"Redis not reachable at {url} ({type(exc).__name__})")
    try:
        yield client
    finally:
        for name in client.scan_iter(match=prefix + "*"):
            client.delete(name)
        client.close()


@pytest.fixture(scope="session")
def browser():
    """One Debian Chromium for the whole run, shared by the browser suite and the simulator's
    browser tests: two sync Playwright instances cannot run in the same thread, so a second
    one would fail (or, as it used to, skip) whichever suite came second."""
    from tests.browser.browser_helpers import CHROMIUM, CHROMIUM_ARGS

    if not os.path.exists(CHROMIUM):
        pytest.skip(f"{CHROMIUM} is not installed (Debian package 'chromium'; bin/test installs it)")
    from playwright.sync_api import sync_playwright

    pw = sync_playwright().start()
    b = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
    yield b
    b.close()
    pw.stop()
