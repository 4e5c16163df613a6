"""Single-flight renewal of a viewer's expired AUTH_ID with its REFRESH_ID.

A lead tab opened with an expired viewer token makes every request of that frame (and every
gunicorn worker answering one) want to renew the same pair; Bitrix24 spends a refresh token on
first use, so only one of them may. The renewal runs under a row lock keyed by a keyed hash of
the spent refresh token (the token itself is never stored); the others wait on the lock and
then read the stored answer, encrypted by the key ring. Rows live `VIEWER_RENEWAL_TTL`.

This module owns the `viewer_renewals` table; `PortalStore.renew_viewer` is its public door.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from leadcard.core import errors
from leadcard.core.grant import Grant
from leadcard.storage.db import is_sqlite, upsert_insert, writing
from leadcard.storage.keyring import KeyRing
from leadcard.storage.tables import viewer_renewals

VIEWER_RENEWAL_TTL = 3600.0


@dataclass(frozen=True)
class ViewerTokens:
    """A viewer's renewed pair: what a lead-tab request needs to call REST as that viewer."""

    access_token: str
    refresh_token: str
    expires_at: float
    member_id: str

    def __repr__(self) -> str:  # never print tokens, even by accident
        return f"ViewerTokens(member_id={self.member_id!r})"


class ViewerRenewals:
    """Renews a viewer's pair once, however many requests carry it."""

    def __init__(self, engine: Engine, keyring: KeyRing, keyed_hash: Callable[[str], str]) -> None:
        self._engine = engine
        self._keys = keyring
        self._hash = keyed_hash

    def renew(
        self, member_id: str, refresh_token: str, refresher: Callable[[str], Grant]
    ) -> ViewerTokens:
        """The renewed pair for `refresh_token`: stored by an earlier request, or got now
        from `refresher` (the OAuth server) and stored for the requests still waiting.
        VerificationFailed if the pair belongs to another portal than `member_id`."""
        key = self._hash(refresh_token)
        now = time.time()
        with writing(self._engine) as conn:
            conn.execute(viewer_renewals.delete().where(
                viewer_renewals.c.created_at < now - VIEWER_RENEWAL_TTL
            ))
            if not is_sqlite(self._engine):
                # PostgreSQL: a placeholder row to lock, so concurrent first requests queue
                # on it (SQLite's BEGIN IMMEDIATE already serialises them).
                conn.execute(
                    upsert_insert(self._engine)(viewer_renewals)
                    .values(refresh_hash=key, member_id=member_id, created_at=now)
                    .on_conflict_do_nothing()
                )
            row = conn.execute(
                sa.select(viewer_renewals)
                .where(viewer_renewals.c.refresh_hash == key)
                .with_for_update()
            ).first()
            if row is not None and row._mapping["access_token"]:
                m = row._mapping
                if m["member_id"] != member_id:
                    raise errors.VerificationFailed("renewal belongs to another portal")
                return ViewerTokens(
                    access_token=self._keys.decrypt(m["access_token"]),
                    refresh_token=self._keys.decrypt(m["refresh_token"]),
                    expires_at=float(m["expires_at"] or 0),
                    member_id=m["member_id"],
                )
            grant = refresher(refresh_token)
            if grant.member_id != member_id:
                raise errors.VerificationFailed("renewed token belongs to another portal")
            values = {
                "member_id": member_id,
                "access_token": self._keys.encrypt(grant.access_token),
                "refresh_token": self._keys.encrypt(grant.refresh_token),
                "expires_at": grant.expires_at,
                "created_at": now,
            }
            if row is None:
                conn.execute(viewer_renewals.insert().values(refresh_hash=key, **values))
            else:
                conn.execute(
                    viewer_renewals.update()
                    .where(viewer_renewals.c.refresh_hash == key)
                    .values(**values)
                )
            return ViewerTokens(
                access_token=grant.access_token,
                refresh_token=grant.refresh_token,
                expires_at=grant.expires_at,
                member_id=grant.member_id,
            )


def forget_portal(conn: Connection, member_id: str) -> None:
    """Drop a portal's stored viewer renewals (on uninstall, inside its transaction)."""
    conn.execute(viewer_renewals.delete().where(viewer_renewals.c.member_id == member_id))
