"""One-time `state` values of the reconnect (authorization-code) flow.

A state ties the OAuth server's redirect back to the portal whose administrator started the
reconnect; it is stored only as a keyed hash, is spent by its first use, and lapses after
`OAUTH_STATE_TTL`. This module owns the `oauth_states` table; `PortalStore.new_oauth_state`
and `PortalStore.consume_oauth_state` are its public doors.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from leadcard.storage.db import writing
from leadcard.storage.tables import oauth_states

OAUTH_STATE_TTL = 600.0


class OAuthStates:
    """Issues and spends reconnect states."""

    def __init__(self, engine: Engine, keyed_hash: Callable[[str], str]) -> None:
        self._engine = engine
        self._hash = keyed_hash

    def issue(self, member_id: str) -> str:
        """A fresh single-use `state` for the authorization-code flow of `member_id`."""
        state = secrets.token_urlsafe(24)
        now = time.time()
        with writing(self._engine) as conn:
            conn.execute(
                oauth_states.delete().where(oauth_states.c.created_at < now - OAUTH_STATE_TTL))
            conn.execute(oauth_states.insert().values(
                state_hash=self._hash(state), member_id=member_id, created_at=now))
        return state

    def consume(self, state: str) -> str | None:
        """The member_id a valid `state` was issued for; the state is spent either way."""
        key = self._hash(state)
        with writing(self._engine) as conn:
            row = conn.execute(
                sa.select(oauth_states).where(oauth_states.c.state_hash == key)).first()
            # Expired states go here too, not only when a new one is made.
            conn.execute(oauth_states.delete().where(
                (oauth_states.c.state_hash == key)
                | (oauth_states.c.created_at < time.time() - OAUTH_STATE_TTL)))
            if row is None:
                return None
        if row._mapping["created_at"] < time.time() - OAUTH_STATE_TTL:
            return None
        return str(row._mapping["member_id"])
