"""db.py bounds every PostgreSQL round trip through psycopg's `Connection.wait(timeout=…)`
and its internal `_WaitTimeout`: fail here, not in production, if a psycopg upgrade moves them.
What the deadline does under a silent database is shown in tests/concurrency/test_chaos.py."""

from __future__ import annotations

import inspect

import psycopg

from leadcard.storage import db


def test_psycopg_still_has_the_hooks_db_py_relies_on():
    assert issubclass(psycopg.errors._WaitTimeout, Exception)
    assert "timeout" in inspect.signature(psycopg.Connection.wait).parameters
    assert issubclass(db._bounded_connection_class(), psycopg.Connection)
