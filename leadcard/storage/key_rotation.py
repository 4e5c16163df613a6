"""Re-encryption of every stored secret under the key ring's newest key (`flask rotate-keys`).

The only place that lists which columns hold key-ring ciphertext. A new encrypted column is
added to `ENCRYPTED` here, or it keeps its old key forever (tests/unit/test_portal_store.py
fails for a `*_token` column missing from it).
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from leadcard.storage.db import writing
from leadcard.storage.keyring import KeyRing
from leadcard.storage.tables import portals, viewer_renewals

# Each table with key-ring ciphertext: its key column and its encrypted columns.
ENCRYPTED: tuple[tuple[sa.Table, sa.Column, tuple[str, ...]], ...] = (
    (portals, portals.c.member_id, ("access_token", "refresh_token", "application_token")),
    (viewer_renewals, viewer_renewals.c.refresh_hash, ("access_token", "refresh_token")),
)


def rotate_keys(engine: Engine, keyring: KeyRing) -> int:
    """Re-encrypt every stored secret under the newest key, in one transaction; return how
    many portal rows changed (viewer renewals are rotated too, but short-lived, not counted)."""
    with writing(engine) as conn:
        counts = [_rotate_table(conn, keyring, table, key, columns)
                  for table, key, columns in ENCRYPTED]
    return counts[0]


def _rotate_table(conn: Connection, keyring: KeyRing, table: sa.Table, key: sa.Column,
                  columns: tuple[str, ...]) -> int:
    changed = 0
    for row in conn.execute(sa.select(table).with_for_update()).all():
        m = row._mapping
        updates = {c: keyring.rotate(m[c]) for c in columns
                   if m[c] and keyring.needs_rotation(m[c])}
        if updates:
            conn.execute(table.update().where(key == m[key.name]).values(**updates))
            changed += 1
    return changed
