"""What the portal store hands out — `PortalRoute`, `Portal`, `Credentials` — and how a
`portals` row becomes one (decrypting its tokens with the key ring).

Shared by `portals.py` (plain reads and writes) and `refresh.py` (the single-flight refresh),
so neither reaches into the other; nothing outside storage sees a row or a ciphertext.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from leadcard.core import errors
from leadcard.core.grant import Grant
from leadcard.storage.keyring import KeyRing
from leadcard.storage.tables import UNINSTALLED, portals


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class PortalRoute:
    """What a lead-tab view needs of its portal: where REST goes, and whether it is installed."""

    member_id: str
    client_endpoint: str
    status: str


@dataclass(frozen=True)
class Portal:
    """A stored portal, without its secrets (see `PortalStore.credentials`)."""

    member_id: str
    domain: str
    client_endpoint: str
    server_endpoint: str
    scope: str
    license_status: str
    status: str
    language: str
    installed_by: int | None
    expires_at: float | None
    token_version: int
    placement_bound: bool
    events_bound: bool
    has_tokens: bool
    last_error: str | None
    installed_at: datetime
    updated_at: datetime
    refreshed_at: datetime | None

    @property
    def token_expires_at(self) -> datetime | None:
        if self.expires_at is None:
            return None
        return datetime.fromtimestamp(self.expires_at, UTC)


@dataclass(frozen=True)
class Credentials:
    """Decrypted stored tokens of one portal at one `version`."""

    member_id: str
    client_endpoint: str
    access_token: str
    refresh_token: str
    expires_at: float
    version: int

    def expired(self, now: float | None = None, leeway: float = 0.0) -> bool:
        return (now or time.time()) >= self.expires_at - leeway

    def __repr__(self) -> str:
        return f"Credentials(member_id={self.member_id!r}, version={self.version})"


def as_portal(row: sa.Row) -> Portal:
    """A full `portals` row as a `Portal` (no secret is decrypted)."""
    m = row._mapping
    return Portal(
        member_id=m["member_id"],
        domain=m["domain"],
        client_endpoint=m["client_endpoint"],
        server_endpoint=m["server_endpoint"],
        scope=m["scope"],
        license_status=m["license_status"],
        status=m["status"],
        language=m["language"],
        installed_by=m["installed_by"],
        expires_at=m["expires_at"],
        token_version=m["token_version"],
        placement_bound=bool(m["placement_bound"]),
        events_bound=bool(m["events_bound"]),
        has_tokens=m["refresh_token"] is not None,
        last_error=m["last_error"],
        installed_at=_aware(m["installed_at"]),
        updated_at=_aware(m["updated_at"]),
        refreshed_at=_aware(m["refreshed_at"]) if m["refreshed_at"] else None,
    )


def _aware(value: datetime) -> datetime:
    # SQLite hands back naive datetimes; we only ever store UTC.
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def stored_credentials(keys: KeyRing, row: sa.Row | None) -> Credentials:
    """Decrypt a row's stored pair; NotInstalled if there is no row or no pair."""
    if row is None:
        raise errors.NotInstalled("unknown portal")
    m = row._mapping
    if m["status"] == UNINSTALLED or not m["refresh_token"]:
        raise errors.NotInstalled("portal has no stored grant")
    return Credentials(
        member_id=m["member_id"],
        client_endpoint=m["client_endpoint"],
        access_token=keys.decrypt(m["access_token"]),
        refresh_token=keys.decrypt(m["refresh_token"]),
        expires_at=float(m["expires_at"] or 0),
        version=int(m["token_version"]),
    )


def fresh_credentials(grant: Grant, version: int) -> Credentials:
    """The credentials a just-stored `grant` became at `version` (no read back needed)."""
    return Credentials(
        member_id=grant.member_id,
        client_endpoint=grant.client_endpoint,
        access_token=grant.access_token,
        refresh_token=grant.refresh_token,
        expires_at=grant.expires_at,
        version=version,
    )


def lock_portal_row(conn: Connection, member_id: str) -> sa.Row | None:
    """Read a portal's row and hold its write lock until the transaction ends."""
    # FOR UPDATE on PostgreSQL; on SQLite the BEGIN IMMEDIATE of db.write_transaction already
    # holds the database write lock (SQLAlchemy drops FOR UPDATE for SQLite).
    return conn.execute(
        sa.select(portals).where(portals.c.member_id == member_id).with_for_update()
    ).first()
