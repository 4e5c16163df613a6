"""Events already processed, by the SHA-256 of their exact body: the repeat filter for /events.

Bitrix24 may deliver an event again, and an old one can be replayed. A byte-identical body
that was verified and fully applied before is answered 2xx and changes nothing (threats.md
§1.5, acceptance scenario 26): after a reinstall the old ONAPPUNINSTALL carries the previous
`application_token`, so without this it would be refused as a forgery (401) although it is
the genuine old event. Only exact repeats match: a digest cannot be produced for a body that
was not sent before, so this never lets a new, unverified event through.

Only outcomes that are final are recorded (see `lifecycle.handle_event`): an uninstall that
could not be confirmed yet must stay retryable. Rows older than `RETENTION` are pruned on
each insert; events are rare (install, uninstall), so the table stays tiny. Database failures
come out as `errors.Busy` / `errors.DatabaseUnavailable` (`db.guarded`), as from the portal store.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from leadcard.storage.db import metadata, reading, upsert_insert, writing

RETENTION = timedelta(days=30)

processed_events = sa.Table(
    "processed_events",
    metadata,
    sa.Column("body_sha256", sa.String(64), primary_key=True),
    sa.Column("member_id", sa.String(64), nullable=False),
    sa.Column("event", sa.String(32), nullable=False),
    sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
)


class ProcessedEvents:
    """The processed_events table: `seen` and `record`, nothing else touches it."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._insert = upsert_insert(engine)

    def seen(self, body_sha256: str) -> bool:
        """Was exactly this body processed (and recorded) before?"""
        t = processed_events
        with reading(self._engine) as conn:
            return conn.execute(
                sa.select(t.c.body_sha256).where(t.c.body_sha256 == body_sha256)
            ).first() is not None

    def record(self, body_sha256: str, member_id: str, event: str) -> None:
        """Remember a fully applied event; forget those older than RETENTION."""
        t = processed_events
        now = datetime.now(UTC)
        with writing(self._engine) as conn:
            conn.execute(
                self._insert(t)
                .values(body_sha256=body_sha256, member_id=member_id, event=event[:32],
                        received_at=now)
                .on_conflict_do_nothing()
            )
            conn.execute(sa.delete(t).where(t.c.received_at < now - RETENTION))
