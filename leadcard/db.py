"""The database engine and schema lifecycle (one code path for SQLite and PostgreSQL).

SQLite is the embedded default (a file under `instance/`); PostgreSQL (psycopg 3) is for
several hosts. Tables are declared on `metadata` by the modules that own them
(`tokens.py`, `ratelimit.py`); the schema itself is created and changed only by the Alembic
history in `leadcard/migrations/`.
"""

from __future__ import annotations

import fcntl
import os
import sqlite3
import time
from contextlib import contextmanager
from typing import Iterator

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Engine

metadata = sa.MetaData()

MIGRATIONS_DIR = os.path.join(os.path.dirname(__file__), "migrations")


# How long a statement waits for a lock held by another connection (a refresh in progress
# holds the token row for at most one token-endpoint call: connect 3.05 s + read 6 s).
# Past this the request gets the designed "busy" page instead of outliving its 10 s budget
# (security.md F20).
LOCK_WAIT_SECONDS = 9


class SchemaOutOfDate(RuntimeError):
    """The database is not at the newest migration; the message says what to run."""


def is_sqlite(engine: Engine) -> bool:
    return engine.dialect.name == "sqlite"


def upsert_insert(engine: Engine):  # type: ignore[no-untyped-def]
    """The engine's dialect ``insert``, the one with ``on_conflict_do_nothing/update``."""
    name = engine.dialect.name
    if name == "postgresql":
        return postgresql.insert
    if name == "sqlite":
        return sqlite.insert
    raise ValueError(f"Lead Card stores in sqlite and postgresql, not {name}")


def make_engine(url: str) -> Engine:
    """Create the pooled engine; on SQLite, enable WAL and opt-in `BEGIN IMMEDIATE`."""
    if url.startswith("sqlite"):
        path = url.split("///", 1)[1] if "///" in url else ""
        if path and path != ":memory:":
            os.makedirs(os.path.dirname(os.path.abspath(path)) or ".", exist_ok=True)
        engine = sa.create_engine(
            url, connect_args={"timeout": LOCK_WAIT_SECONDS, "check_same_thread": False}
        )
        _install_sqlite_transactions(engine)
        return engine
    # pool_timeout bounds how long a request waits for a connection when the database is
    # down or saturated (security.md F19: checkout <= 2 s, then a designed 503).
    engine = sa.create_engine(
        url,
        pool_pre_ping=True,
        pool_size=int(os.environ.get("DB_POOL_SIZE", "10")),
        max_overflow=int(os.environ.get("DB_POOL_OVERFLOW", "10")),
        pool_timeout=2,
        connect_args={"connect_timeout": 3},
    )

    @sa.event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection, _record):  # type: ignore[no-untyped-def]
        with dbapi_connection.cursor() as cursor:
            cursor.execute(f"SET lock_timeout = '{LOCK_WAIT_SECONDS}s'")
        dbapi_connection.commit()

    return engine


def _install_sqlite_transactions(engine: Engine) -> None:
    """SQLAlchemy's documented recipe for real SQLite transactions.

    pysqlite's own BEGIN handling is disabled; we emit BEGIN ourselves, and BEGIN IMMEDIATE
    (take the write lock up front) when a connection asks for it with
    `execution_options(sqlite_immediate=True)`. That is SQLite's stand-in for
    `SELECT ... FOR UPDATE`: two processes cannot both read-then-write the same token row.
    https://docs.sqlalchemy.org/en/21/dialects/sqlite.html#sqlite-transactions
    """

    @sa.event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection, _record):  # type: ignore[no-untyped-def]
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


def _enable_wal(cursor) -> None:  # type: ignore[no-untyped-def]
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
def write_transaction(engine: Engine) -> Iterator[Connection]:
    """A transaction that will write: SQLite takes the write lock at BEGIN."""
    with engine.connect() as conn:
        conn = conn.execution_options(sqlite_immediate=True)
        with conn.begin():
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

    def __init__(self, engine: Engine, statement: sa.Executable | str) -> None:
        """``statement``: a Core construct with named bind parameters, or SQL text written
        for this engine's driver (named ``:param`` style, SQLite only)."""
        self._engine = engine
        self._dbapi_error = engine.dialect.loaded_dbapi.Error
        if isinstance(statement, str):
            self.sql, self._order = statement, None
        else:
            compiled = statement.compile(dialect=engine.dialect)
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

    def _wrapped(self, exc: Exception) -> sa.exc.DBAPIError:
        return sa.exc.DBAPIError.instance(
            self.sql, None, exc, self._dbapi_error, hide_parameters=True,
            dialect=self._engine.dialect,
        )


# --- schema lifecycle -----------------------------------------------------------------


def _alembic_config(engine: Engine, connection: Connection | None = None):  # type: ignore[no-untyped-def]
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
        lock_path = (os.path.abspath(db_path) if db_path else "/tmp/leadcard") + ".migrate.lock"
        with open(lock_path, "a+") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)
        return
    with engine.connect() as conn:
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
        with engine.begin() as conn:
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
