"""The database engine, the one translation of its failures, and the schema lifecycle (one
code path for SQLite and PostgreSQL).

SQLite is the embedded default (a file under `instance/`); PostgreSQL (psycopg 3) is for
several hosts. Tables are declared on `metadata` by the modules that own them (`tables.py`,
`event_log.py`, `buckets.py`); the schema itself is created and changed only by the Alembic
history in `leadcard/storage/migrations/`.

Failures: every store that answers a view (`portals.py` and its parts, `event_log.py`) runs
its connections through `guarded`, so a lock wait past LOCK_WAIT_SECONDS is `errors.Busy`
and any other lost database is `errors.DatabaseUnavailable` (both designed 503 pages). The
rate-limit buckets are the exception: their contract (`core/ratelimit.py`) is to let backend
errors through unchanged, because `FailoverBucket` and /healthz tell the backends apart by them.
"""

from __future__ import annotations

import contextvars
import fcntl
import functools
import os
import sqlite3
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import OperationalError
from sqlalchemy.sql.compiler import SQLCompiler

from leadcard.core import errors

metadata = sa.MetaData()

MIGRATIONS_DIR = os.path.join(os.path.dirname(__file__), "migrations")


# How long a statement waits for a lock held by another connection (a refresh in progress
# holds the token row for at most one token-endpoint call: connect 3.05 s + read 6 s).
# Past this the request gets the designed "busy" page instead of outliving its 10 s budget
# (threats.md F20).
LOCK_WAIT_SECONDS = 9

# PostgreSQL, client side: how long one round trip to the server may take (a query, a
# commit, the pool's pre-ping) before the connection is given up. A server that silently
# stops answering (a partition; a proxy or NAT that keeps the socket open) is noticed by
# nothing else: the peer's kernel keeps ACKing, so neither TCP keepalives nor
# tcp_user_timeout fire, and the server-side statement_timeout never sees the query. A view
# then pays at most a failed pre-ping plus a failed reconnect (connect_timeout):
# 2 x 3 s, inside its 10 s budget.
QUERY_SECONDS = 3.0
# The same for a statement of a write transaction, which may wait for a row lock: longer
# than the server's own limits below, so a lock wait ends as the server's "lock timeout"
# (the designed "busy" page), not as a cut connection.
LOCKING_QUERY_SECONDS = LOCK_WAIT_SECONDS + 1.0
# PostgreSQL, server side: a slow statement is cancelled (a lock wait counts, so this is
# longer than lock_timeout); a session idle inside a transaction for longer than any OAuth
# call made under the row lock (3.05 s connect + 6 s read) is ended, so a client cut off
# mid-refresh by a silent partition does not hold the token row until the partition ends.
STATEMENT_TIMEOUT_MS = LOCK_WAIT_SECONDS * 1000 + 500
IDLE_IN_TRANSACTION_TIMEOUT_MS = 20_000
CONNECT_TIMEOUT_SECONDS = 3
MIGRATION_SECONDS = 300.0

# The client-side deadline of the current thread's round trips (see QUERY_SECONDS).
_round_trip_seconds: contextvars.ContextVar[float] = contextvars.ContextVar(
    "leadcard_db_round_trip_seconds", default=QUERY_SECONDS
)


class SchemaOutOfDate(RuntimeError):
    """The database is not at the newest migration; the message says what to run."""


def is_sqlite(engine: Engine) -> bool:
    return engine.dialect.name == "sqlite"


def upsert_insert(engine: Engine):
    """The engine's dialect ``insert``, the one with ``on_conflict_do_nothing/update``."""
    name = engine.dialect.name
    if name == "postgresql":
        return postgresql.insert
    if name == "sqlite":
        return sqlite.insert
    raise ValueError(f"Lead Card stores in sqlite and postgresql, not {name}")


def _sqlite_pool_args(url: str) -> dict[str, int]:
    """A file database gets a sized pool like PostgreSQL's (DB_POOL_SIZE/DB_POOL_OVERFLOW,
    default 10+10) so `portals check --concurrency N` can fit it; :memory: keeps its
    single-connection pool."""
    if url in ("sqlite://", "sqlite:///:memory:") or ":memory:" in url:
        return {}
    return {"pool_size": int(os.environ.get("DB_POOL_SIZE", "10")),
            "max_overflow": int(os.environ.get("DB_POOL_OVERFLOW", "10"))}


def pool_capacity(engine: Engine) -> int | None:
    """How many connections the engine's pool hands out at once (size + overflow), or None
    when it is not a bounded queue pool (SQLite :memory:, a test's StaticPool)."""
    pool = engine.pool
    if isinstance(pool, sa.pool.QueuePool):
        return pool.size() + max(pool._max_overflow, 0)  # noqa: SLF001 - no public getter
    return None


def make_engine(url: str) -> Engine:
    """Create the pooled engine; on SQLite, enable WAL and opt-in `BEGIN IMMEDIATE`."""
    if url.startswith("sqlite"):
        path = url.split("///", 1)[1] if "///" in url else ""
        if path and path != ":memory:":
            os.makedirs(os.path.dirname(os.path.abspath(path)) or ".", exist_ok=True)
        engine = sa.create_engine(
            url, connect_args={"timeout": LOCK_WAIT_SECONDS, "check_same_thread": False},
            **_sqlite_pool_args(url),
        )
        _install_sqlite_transactions(engine)
        return engine
    # pool_timeout bounds how long a request waits for a connection when the database is
    # down or saturated (threats.md F19: checkout <= 2 s, then a designed 503).
    engine = sa.create_engine(
        url,
        pool_pre_ping=True,
        pool_size=int(os.environ.get("DB_POOL_SIZE", "10")),
        max_overflow=int(os.environ.get("DB_POOL_OVERFLOW", "10")),
        pool_timeout=2,
        connect_args={
            # psycopg bounds the whole start-up (TCP, TLS, authentication) by this.
            "connect_timeout": CONNECT_TIMEOUT_SECONDS,
            # A peer that is gone (host down, cable pulled) rather than silent: the kernel
            # notices within ~25 s on an idle pooled socket, ~10 s on one with unacked data.
            "keepalives": 1,
            "keepalives_idle": 10,
            "keepalives_interval": 5,
            "keepalives_count": 3,
            "tcp_user_timeout": 10_000,
        },
    )

    @sa.event.listens_for(engine, "do_connect")
    def _connect(_dialect, _record, cargs, cparams):
        return _bounded_connection_class().connect(*cargs, **cparams)

    @sa.event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection, _record):
        with dbapi_connection.cursor() as cursor:
            cursor.execute(
                "SELECT set_config('lock_timeout', %s, false),"
                " set_config('statement_timeout', %s, false),"
                " set_config('idle_in_transaction_session_timeout', %s, false)",
                (f"{LOCK_WAIT_SECONDS}s", f"{STATEMENT_TIMEOUT_MS}ms",
                 f"{IDLE_IN_TRANSACTION_TIMEOUT_MS}ms"),
            )
        dbapi_connection.commit()

    return engine


@functools.cache
def _bounded_connection_class() -> Any:
    """psycopg's Connection whose every round trip ends within the thread's deadline.

    psycopg 3.3 has no client-side bound on a blocked execute (statement_timeout is the
    server's; cancel() needs the server to answer). Every network wait of a connection —
    execute, fetch, commit, rollback, the pool's pre-ping — goes through
    ``Connection.wait``, whose ``timeout`` ends the wait with psycopg's internal
    ``_WaitTimeout``. The protocol is then mid-message, so the connection is closed and a
    public ``OperationalError`` raised: SQLAlchemy sees a closed connection (its
    disconnect test) and invalidates it instead of returning it to the pool.
    """
    import psycopg  # here: SQLite deployments need no PostgreSQL driver

    class BoundedConnection(psycopg.Connection):
        def wait(self, gen, interval=0.1, timeout=None):
            seconds = _round_trip_seconds.get() if timeout is None else timeout
            try:
                return super().wait(gen, interval=interval, timeout=seconds)
            except psycopg.errors._WaitTimeout:
                if timeout is not None:  # the caller asked for its own limit (notifies)
                    raise
                self.close()
                raise psycopg.OperationalError(
                    f"the database did not answer within {seconds:g} s"
                ) from None

    return BoundedConnection


@contextmanager
def round_trip_deadline(seconds: float) -> Iterator[None]:
    """Allow this thread's PostgreSQL round trips ``seconds`` each (see QUERY_SECONDS)."""
    token = _round_trip_seconds.set(seconds)
    try:
        yield
    finally:
        _round_trip_seconds.reset(token)


def _install_sqlite_transactions(engine: Engine) -> None:
    """SQLAlchemy's documented recipe for real SQLite transactions.

    pysqlite's own BEGIN handling is disabled; we emit BEGIN ourselves, and BEGIN IMMEDIATE
    (take the write lock up front) when a connection asks for it with
    `execution_options(sqlite_immediate=True)`. That is SQLite's stand-in for
    `SELECT ... FOR UPDATE`: two processes cannot both read-then-write the same token row.
    https://docs.sqlalchemy.org/en/21/dialects/sqlite.html#sqlite-transactions
    """

    @sa.event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection, _record):
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA busy_timeout={LOCK_WAIT_SECONDS * 1000}")
        _enable_wal(cursor)
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @sa.event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        immediate = conn.get_execution_options().get("sqlite_immediate", False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


def _enable_wal(cursor) -> None:
    """Switch a SQLite file to WAL, retrying while another connection holds it.

    The switch needs the file to itself and SQLite answers "database is locked" at once
    instead of waiting (the busy handler does not apply). Two gunicorn workers opening a
    fresh file at boot hit exactly that and one failed to boot (bench/run.py, 2026-11-28);
    once the file is in WAL the pragma is a no-op.
    """
    deadline = time.monotonic() + LOCK_WAIT_SECONDS
    while True:
        try:
            cursor.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.02)


@contextmanager
def write_transaction(engine: Engine, *, waits_for_locks: bool = True) -> Iterator[Connection]:
    """A transaction that will write: SQLite takes the write lock at BEGIN.

    Its statements may wait for row locks (up to LOCK_WAIT_SECONDS), so on PostgreSQL they
    get LOCKING_QUERY_SECONDS; the checkout's pre-ping before it keeps QUERY_SECONDS. A
    writer of rows nobody holds (`waits_for_locks=False`: a health probe) keeps the
    caller's round-trip deadline instead, so a silent database cannot hold it 10 s.
    """
    with engine.connect() as conn:
        conn = conn.execution_options(sqlite_immediate=True)
        deadline = LOCKING_QUERY_SECONDS if waits_for_locks else _round_trip_seconds.get()
        with round_trip_deadline(deadline), conn.begin():
            yield conn


class HotStatement:
    """One statement compiled once for the engine's dialect and run on a raw pooled DBAPI
    connection: for the few statements every view runs (the portal lookup, the SQLite bucket).

    Through a SQLAlchemy `Connection` a one-row read cost ~200 us of CPU on a slow core (the
    BEGIN of db.py's recipe, cache-key generation, result metadata, ROLLBACK); this costs ~30.
    A lone statement needs no explicit transaction: it sees one consistent snapshot, and in
    SQLite's autocommit mode a lone write is atomic under the file's write lock. Results are
    plain tuples with no type processing, so use it only for columns the driver already
    returns as wanted (strings, integers). DBAPI errors come out as SQLAlchemy's own
    (`OperationalError` …), as from any other statement, so callers map them the same way.
    """

    def __init__(self, engine: Engine, statement: sa.ClauseElement | str) -> None:
        """``statement``: a Core construct with named bind parameters, or SQL text written
        for this engine's driver (named ``:param`` style, SQLite only)."""
        self._engine = engine
        self._dbapi_error = engine.dialect.loaded_dbapi.Error
        if isinstance(statement, str):
            self.sql, self._order = statement, None
        else:
            compiled = statement.compile(dialect=engine.dialect)
            if not isinstance(compiled, SQLCompiler):
                raise TypeError(f"HotStatement needs a SQL statement, got {type(statement)}")
            self.sql = str(compiled)
            self._order = tuple(compiled.positiontup or ()) if compiled.positional else None

    def fetchone(self, **params: object) -> tuple | None:
        """Run the statement with ``params``; the first row, or None."""
        args = tuple(params[name] for name in self._order) if self._order is not None else params
        try:
            # The pool hands out the driver's own errors when it cannot connect.
            raw = self._engine.raw_connection()
        except self._dbapi_error as exc:
            raise self._wrapped(exc) from None
        try:
            cursor = raw.cursor()
            try:
                cursor.execute(self.sql, args)
                row = cursor.fetchone()
            finally:
                cursor.close()
        except self._dbapi_error as exc:
            if self._engine.dialect.is_disconnect(exc, raw.dbapi_connection, None):
                raw.invalidate(exc)  # a dead connection must not go back to the pool
            raise self._wrapped(exc) from None
        finally:
            raw.close()  # back to the pool (which rolls back anything left open)
        return tuple(row) if row is not None else None

    def _wrapped(self, exc: Exception) -> sa.exc.StatementError:
        return sa.exc.DBAPIError.instance(
            self.sql, None, exc, self._dbapi_error, hide_parameters=True,
            dialect=self._engine.dialect,
        )


# --- failures -------------------------------------------------------------------------


def _is_lock_timeout(exc: OperationalError) -> bool:
    # SQLite: "database is locked"; PostgreSQL: "canceling statement due to lock timeout".
    text = str(exc.orig).lower() if exc.orig else ""
    return "locked" in text or "lock timeout" in text or "lock_timeout" in text


def database_error(exc: BaseException | None) -> errors.LeadCardError | None:
    """Our error for a database failure: Busy for a lock wait, DatabaseUnavailable for any
    other lost database or exhausted pool; None for anything else (a bug stays a bug)."""
    if isinstance(exc, OperationalError):
        if _is_lock_timeout(exc):
            return errors.Busy("database locked")
        return errors.DatabaseUnavailable(type(exc).__name__)
    if isinstance(exc, sa.exc.TimeoutError):
        return errors.DatabaseUnavailable("pool timeout")
    return None


class guarded:  # lower case: used like a function, `with guarded(engine.connect()) as conn`
    """Wrap a connection or transaction context manager so that database failures on the way
    in, inside and on the way out (the commit) surface as the error family (`database_error`).
    The driver's message is not carried over: it may quote statement parameters."""

    def __init__(self, cm: Any) -> None:
        self._cm = cm

    def __enter__(self) -> Connection:
        try:
            return self._cm.__enter__()
        except (OperationalError, sa.exc.TimeoutError) as exc:
            raise database_error(exc) from None  # type: ignore[misc]

    def __exit__(self, exc_type, exc, tb) -> bool | None:
        try:
            suppressed = self._cm.__exit__(exc_type, exc, tb)
        except OperationalError as inner:
            raise errors.DatabaseUnavailable(type(inner).__name__) from None
        mapped = database_error(exc)
        if mapped is not None:
            raise mapped from None
        return suppressed


def reading(engine: Engine) -> guarded:
    """A guarded connection for reads (no explicit transaction)."""
    # Connected on entering, inside the guard: `engine.connect()` itself dials the database.
    return guarded(_connection(engine))


@contextmanager
def _connection(engine: Engine) -> Iterator[Connection]:
    with engine.connect() as conn:
        yield conn


def writing(engine: Engine) -> guarded:
    """A guarded `write_transaction`."""
    return guarded(write_transaction(engine))


# --- schema lifecycle -----------------------------------------------------------------


def _alembic_config(engine: Engine, connection: Connection | None = None):
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", MIGRATIONS_DIR)
    # configparser treats % as interpolation: escape it (URLs carry %-encoded options).
    url = engine.url.render_as_string(hide_password=False).replace("%", "%%")
    cfg.set_main_option("sqlalchemy.url", url)
    cfg.attributes["connection"] = connection
    return cfg


def head_revision(engine: Engine) -> str | None:
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(_alembic_config(engine)).get_current_head()


def current_revision(engine: Engine) -> str | None:
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


@contextmanager
def _migration_lock(engine: Engine) -> Iterator[None]:
    """Serialise concurrent upgrades (several workers starting at once)."""
    if is_sqlite(engine):
        db_path = engine.url.database or ""
        base = os.path.abspath(db_path) if db_path else os.path.join(tempfile.gettempdir(), "leadcard")
        lock_path = base + ".migrate.lock"
        with open(lock_path, "a+") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)
        return
    with engine.connect() as conn, round_trip_deadline(LOCKING_QUERY_SECONDS):
        conn.exec_driver_sql("SELECT pg_advisory_lock(7418231)")
        conn.commit()
        try:
            yield
        finally:
            conn.exec_driver_sql("SELECT pg_advisory_unlock(7418231)")
            conn.commit()


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Apply the Alembic history up to `revision` (the `flask db upgrade` command)."""
    from alembic import command

    with _migration_lock(engine):
        # A migration may rewrite a large table: neither the per-view round-trip deadline
        # nor the session's statement_timeout applies to it (SET LOCAL ends with it).
        with round_trip_deadline(MIGRATION_SECONDS), engine.begin() as conn:
            if not is_sqlite(engine):
                conn.exec_driver_sql(f"SET LOCAL statement_timeout = '{int(MIGRATION_SECONDS)}s'")
            command.upgrade(_alembic_config(engine, conn), revision)


def ensure_schema(engine: Engine, auto_migrate: bool) -> None:
    """At start-up: migrate (embedded default) or refuse to run on an old schema."""
    if auto_migrate:
        upgrade(engine)
        return
    current, head = current_revision(engine), head_revision(engine)
    if current != head:
        raise SchemaOutOfDate(
            f"Database schema is at {current or 'nothing'}, the code needs {head}. "
            "Run `flask --app app db upgrade` (or set DB_AUTO_MIGRATE=1)."
        )


def ping(engine: Engine) -> None:
    """Raise if the database cannot answer a trivial query (used by /healthz)."""
    with engine.connect() as conn:
        conn.exec_driver_sql("SELECT 1")
