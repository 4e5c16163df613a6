"""ProcessedEvents: exact-repeat filter for /events, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from leadcard.core import errors
from leadcard.storage import event_log
from leadcard.storage.event_log import ProcessedEvents, processed_events


@pytest.fixture
def engine(migrated_engine):
    return migrated_engine


def test_recorded_bodies_are_seen_others_are_not(engine):
    log = ProcessedEvents(engine)
    assert not log.seen("a" * 64)
    log.record("a" * 64, "m1", "ONAPPUNINSTALL")
    log.record("a" * 64, "m1", "ONAPPUNINSTALL")  # recording twice is harmless
    assert log.seen("a" * 64) and not log.seen("b" * 64)
    with engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(processed_events)).scalar() == 1


def test_old_rows_are_pruned_on_insert(engine, monkeypatch):
    log = ProcessedEvents(engine)
    log.record("a" * 64, "m1", "ONAPPINSTALL")
    later = datetime.now(UTC) + event_log.RETENTION + timedelta(minutes=1)

    class Later(datetime):
        @classmethod
        def now(cls, tz=None):
            return later

    monkeypatch.setattr(event_log, "datetime", Later)
    log.record("b" * 64, "m1", "ONAPPUNINSTALL")
    assert not log.seen("a" * 64) and log.seen("b" * 64)


def test_an_unreachable_database_is_the_error_family(tmp_path):
    """Like the portal store: a designed 503 (`DatabaseUnavailable`), not a raw driver error."""
    dead = sa.create_engine(f"sqlite:///{tmp_path}/missing-dir/events.db")
    try:
        log = ProcessedEvents(dead)
        with pytest.raises(errors.DatabaseUnavailable):
            log.seen("a" * 64)
        with pytest.raises(errors.DatabaseUnavailable):
            log.record("a" * 64, "m1", "ONAPPINSTALL")
    finally:
        dead.dispose()
