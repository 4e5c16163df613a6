"""The idempotency ledger of writes made from the card: one row per (member_id, key).

A write to Bitrix24 is never made twice (issue 13): the page makes a key per intended action
and sends it with every attempt (a double click, a retry after a timeout, the retry after
`refreshAuth`). The key is *claimed* here — in the shared database, so every worker and host
sees the same row — before the write is sent; the primary key makes the claim a race with
exactly one winner. The winner writes and then records the answer (`finish`), or says that
nothing was written (`release`, the key may be used again), or that the write's outcome is
unknown (`unknown`: it timed out and may have happened — never sent again under this key).

Rows hold no token and no CRM text: the request is kept only as a SHA-256 fingerprint, the
answer is the small JSON the endpoint sent (ids, codes, messages). They live `RETENTION`
(24 hours, the issue's window); older rows are pruned in bounded slices when keys are claimed,
and deleted with the portal's data on an uninstall with "delete data" (`portals.uninstall`).
Database failures come out as `errors.Busy` / `errors.DatabaseUnavailable` (`db.guarded`).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from leadcard.storage.db import metadata, reading, upsert_insert, writing

RETENTION = 24 * 3600.0
# Rows removed per claim at most: pruning rides on claims and must stay cheap.
PRUNE_SLICE = 200

PENDING, DONE, UNKNOWN = "pending", "done", "unknown"

action_keys = sa.Table(
    "action_keys",
    metadata,
    sa.Column("member_id", sa.String(64), primary_key=True),
    sa.Column("key", sa.String(64), primary_key=True),
    sa.Column("fingerprint", sa.String(64), nullable=False),
    sa.Column("state", sa.String(8), nullable=False),
    sa.Column("status", sa.Integer, nullable=True),
    sa.Column("answer", sa.Text, nullable=True),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("updated_at", sa.Float, nullable=False),
)


@dataclass(frozen=True)
class Claim:
    """What claiming a key found.

    `won`: this request holds the key and must write (then finish/release/unknown it).
    Otherwise the key was claimed before: `state` is that attempt's (pending while it is still
    running), `status`/`answer` its recorded answer, `same_request` whether it was for the same
    action and params (a key reused for another request is refused, never replayed).
    """

    won: bool
    state: str = PENDING
    status: int | None = None
    answer: dict[str, Any] | None = None
    same_request: bool = True
    age: float = 0.0


class ActionKeys:
    """The action_keys table: nothing else reads or writes it."""

    def __init__(self, engine: Engine, *, clock=time.time) -> None:
        self._engine = engine
        self._insert = upsert_insert(engine)
        self._clock = clock

    def claim(self, member_id: str, key: str, fingerprint: str) -> Claim:
        """Claim `key` for one request of `member_id`, or report who holds it."""
        t = action_keys
        now = self._clock()
        with writing(self._engine) as conn:
            self._prune(conn, now)
            # This key's own row past RETENTION is forgotten even beyond the prune slice.
            conn.execute(sa.delete(t).where(t.c.member_id == member_id, t.c.key == key,
                                            t.c.created_at < now - RETENTION))
            # RETURNING, not rowcount: psycopg reports -1 for ON CONFLICT DO NOTHING.
            inserted = conn.execute(
                self._insert(t)
                .values(member_id=member_id, key=key, fingerprint=fingerprint, state=PENDING,
                        created_at=now, updated_at=now)
                .on_conflict_do_nothing()
                .returning(t.c.key)
            ).first()
            if inserted is not None:
                return Claim(won=True)
            row = conn.execute(
                sa.select(t.c.fingerprint, t.c.state, t.c.status, t.c.answer, t.c.created_at)
                .where(t.c.member_id == member_id, t.c.key == key)
            ).first()
        if row is None:  # released between our insert and select: try once more
            return self.claim(member_id, key, fingerprint)
        return Claim(
            won=False,
            state=row.state,
            status=row.status,
            answer=json.loads(row.answer) if row.answer else None,
            same_request=row.fingerprint == fingerprint,
            age=max(0.0, now - row.created_at),
        )

    def finish(self, member_id: str, key: str, status: int, answer: dict[str, Any]) -> None:
        """The write was made (or definitively answered): replay this answer from now on."""
        self._settle(member_id, key, DONE, status, answer)

    def unknown(self, member_id: str, key: str, status: int, answer: dict[str, Any]) -> None:
        """The write may have happened (timeout): never send it again under this key."""
        self._settle(member_id, key, UNKNOWN, status, answer)

    def release(self, member_id: str, key: str) -> None:
        """Nothing was written (refused before or by Bitrix24): the key may be used again."""
        t = action_keys
        with writing(self._engine) as conn:
            conn.execute(sa.delete(t).where(t.c.member_id == member_id, t.c.key == key,
                                            t.c.state == PENDING))

    def lookup(self, member_id: str, key: str) -> Claim | None:
        """The key's row as a non-winning claim would see it (None: not claimed)."""
        t = action_keys
        with reading(self._engine) as conn:
            row = conn.execute(
                sa.select(t.c.fingerprint, t.c.state, t.c.status, t.c.answer, t.c.created_at)
                .where(t.c.member_id == member_id, t.c.key == key)
            ).first()
        if row is None:
            return None
        return Claim(won=False, state=row.state, status=row.status,
                     answer=json.loads(row.answer) if row.answer else None,
                     age=max(0.0, self._clock() - row.created_at))

    def _settle(self, member_id: str, key: str, state: str, status: int,
                answer: dict[str, Any]) -> None:
        t = action_keys
        with writing(self._engine) as conn:
            conn.execute(
                sa.update(t)
                .where(t.c.member_id == member_id, t.c.key == key)
                .values(state=state, status=status,
                        answer=json.dumps(answer, ensure_ascii=False, separators=(",", ":")),
                        updated_at=self._clock())
            )

    @staticmethod
    def _prune(conn: sa.Connection, now: float) -> None:
        t = action_keys
        old = (sa.select(t.c.member_id, t.c.key)
               .where(t.c.created_at < now - RETENTION).limit(PRUNE_SLICE))
        conn.execute(sa.delete(t).where(sa.tuple_(t.c.member_id, t.c.key).in_(old)))
