"""The portal table and every SQL statement about it; single-flight token refresh.

One row per Bitrix24 portal, keyed by `member_id` (stable across domain changes — protocol.md
h.1). Access, refresh and application tokens are stored encrypted by the key ring
(`crypto.KeyRing`); nothing outside this module sees a row or a ciphertext.

Refresh tokens are single-use (security.md §2.3), so a refresh is single-flight across
threads, processes and hosts: the refresher holds a write lock on the row — `SELECT … FOR
UPDATE` on PostgreSQL, `BEGIN IMMEDIATE` on SQLite — re-reads it, and only spends the refresh
token if the row still holds the one the caller saw (`token_version`). A worker killed
mid-refresh drops its connection, the database releases the lock, and the next caller
retries with the still-stored refresh token.

Once the OAuth server has answered, the stored refresh token is spent (Bitrix24 rotates it
on use), so the answer must reach the row: it is written to the local `GrantJournal` before
the row, written again on a fresh connection if the first write fails, and replayed from the
journal by the next refresh on this host if the process died in between.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import logging
import secrets
import time
from dataclasses import dataclass
from functools import lru_cache
from datetime import datetime, timezone
from typing import Callable, Iterator

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import OperationalError

from leadcard.core import errors
from leadcard.storage.keyring import KeyRing
from leadcard.storage.db import HotStatement, is_sqlite, metadata, upsert_insert, write_transaction
from leadcard.storage.grant_journal import GrantJournal, spent_digest
from leadcard.core.grant import Grant

log = logging.getLogger(__name__)

ACTIVE = "active"
REAUTH_REQUIRED = "reauth_required"
PAYMENT_REQUIRED = "payment_required"
UNINSTALLED = "uninstalled"

portals = sa.Table(
    "portals",
    metadata,
    sa.Column("member_id", sa.String(64), primary_key=True),
    sa.Column("domain", sa.String(255), nullable=False),
    sa.Column("client_endpoint", sa.String(512), nullable=False),
    sa.Column("server_endpoint", sa.String(512), nullable=False, server_default=""),
    sa.Column("scope", sa.String(512), nullable=False, server_default=""),
    sa.Column("license_status", sa.String(8), nullable=False, server_default=""),
    sa.Column("status", sa.String(32), nullable=False, server_default=ACTIVE),
    sa.Column("language", sa.String(8), nullable=False, server_default=""),
    sa.Column("application_token", sa.Text, nullable=True),
    sa.Column("installed_by", sa.Integer, nullable=True),
    sa.Column("access_token", sa.Text, nullable=True),
    sa.Column("refresh_token", sa.Text, nullable=True),
    sa.Column("expires_at", sa.Float, nullable=True),
    sa.Column("token_version", sa.Integer, nullable=False, server_default="0"),
    sa.Column("placement_bound", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("events_bound", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("last_error", sa.String(255), nullable=True),
    sa.Column("installed_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("refreshed_at", sa.DateTime(timezone=True), nullable=True),
)

# Renewals of a *viewer's* expired AUTH_ID with its REFRESH_ID, keyed by a keyed hash of the
# spent refresh token: concurrent requests carrying the same pair share one renewal.
viewer_renewals = sa.Table(
    "viewer_renewals",
    metadata,
    sa.Column("refresh_hash", sa.String(64), primary_key=True),
    sa.Column("member_id", sa.String(64), nullable=False),
    sa.Column("access_token", sa.Text, nullable=True),
    sa.Column("refresh_token", sa.Text, nullable=True),
    sa.Column("expires_at", sa.Float, nullable=True),
    sa.Column("created_at", sa.Float, nullable=False),
)

VIEWER_RENEWAL_TTL = 3600.0

# One-time `state` values of the reconnect (authorization-code) flow, stored hashed.
oauth_states = sa.Table(
    "oauth_states",
    metadata,
    sa.Column("state_hash", sa.String(64), primary_key=True),
    sa.Column("member_id", sa.String(64), nullable=False),
    sa.Column("created_at", sa.Float, nullable=False),
)

OAUTH_STATE_TTL = 600.0

# After the OAuth server answered a refresh and the row's write failed: how long to keep
# writing the new pair again (pauses 0.2, 0.4, 0.8, 1.6 s), each try bounded by db.py's
# deadlines. A database blip (a reset, a failover, a full disk freed) is over by then; past
# it the pair waits in the journal for the next refresh.
STORE_RETRY_SECONDS = 4.0


def _now() -> datetime:
    return datetime.now(timezone.utc)


@dataclass(frozen=True)
class PortalRoute:
    """What a lead-tab view needs of its portal: where REST goes, and whether it is installed."""

    member_id: str
    client_endpoint: str
    status: str


@dataclass(frozen=True)
class Portal:
    """A stored portal, without its secrets (see `TokenStore.credentials`)."""

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
        return datetime.fromtimestamp(self.expires_at, timezone.utc)


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


def _as_portal(row: sa.Row) -> Portal:
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
    return value if value.tzinfo else value.replace(tzinfo=timezone.utc)


class TokenStore:
    """All reads and writes of stored portals and their tokens."""

    def __init__(self, engine: Engine, keyring: KeyRing, hash_secret: str,
                 journal: GrantJournal | None = None) -> None:
        self._engine = engine
        self._keys = keyring
        self._journal = journal
        # Keyed hash for renewal rows: the spent refresh token itself is never stored.
        self._hash_key = hashlib.sha256(b"leadcard-viewer-renewal:" + hash_secret.encode()).digest()
        # Counted for tests and the benchmark: how many refreshes this process performed.
        self.refresh_calls = 0
        # SHA-256 of a stored application_token, by its ciphertext: every view compares the
        # posted token, and decrypting it each time (Fernet: HMAC + AES) was ~3 % of a view's
        # CPU. Only digests are kept, never the token; a new ciphertext (reinstall, key
        # rotation) is simply another entry.
        self._stored_token_digest = lru_cache(maxsize=4096)(self._digest_of_stored)
        # Every lead-tab view runs this one, so it skips SQLAlchemy's per-statement machinery.
        self._route_query = HotStatement(
            engine,
            sa.select(
                portals.c.member_id, portals.c.client_endpoint, portals.c.status,
                portals.c.application_token,
            ).where(portals.c.member_id == sa.bindparam("member_id")),
        )

    # --- reads ----------------------------------------------------------------------

    def get(self, member_id: str) -> Portal | None:
        with self._reading() as conn:
            row = conn.execute(
                sa.select(portals).where(portals.c.member_id == member_id)
            ).first()
        return _as_portal(row) if row else None

    def get_for_request(
        self, member_id: str, application_token: str
    ) -> tuple[PortalRoute | None, bool]:
        """One read for the hot path: the stored portal's route, and whether a posted
        `application_token` agrees with the stored one (constant time). Nothing posted or
        nothing stored counts as agreeing: older portals don't post it (protocol.md a.2)."""
        with _guarded(contextlib.nullcontext()):
            row = self._route_query.fetchone(member_id=member_id)
        if row is None:
            return None, True
        stored = row[3]
        agrees = not (application_token and stored) or self._same_token(stored, application_token)
        return PortalRoute(member_id=row[0], client_endpoint=row[1], status=row[2]), agrees

    def _same_token(self, stored_ciphertext: str, candidate: str) -> bool:
        """Constant-time: does ``candidate`` equal the stored application_token?"""
        return hmac.compare_digest(
            self._stored_token_digest(stored_ciphertext),
            hashlib.sha256(candidate.encode()).digest(),
        )

    def _digest_of_stored(self, ciphertext: str) -> bytes:
        return hashlib.sha256(self._keys.decrypt(ciphertext).encode()).digest()

    def list(self) -> list[Portal]:
        with self._reading() as conn:
            rows = conn.execute(sa.select(portals).order_by(portals.c.domain)).all()
        return [_as_portal(r) for r in rows]

    def credentials(self, member_id: str) -> Credentials:
        """Decrypt the stored pair; NotInstalled if there is none."""
        with self._reading() as conn:
            row = conn.execute(
                sa.select(portals).where(portals.c.member_id == member_id)
            ).first()
        return self._credentials(row)

    def application_token_matches(self, member_id: str, candidate: str) -> bool:
        """Constant-time comparison with the stored application_token (security.md R5)."""
        with self._reading() as conn:
            stored = conn.execute(
                sa.select(portals.c.application_token).where(portals.c.member_id == member_id)
            ).scalar()
        if not stored or not candidate:
            return False
        return self._same_token(stored, candidate)

    def has_application_token(self, member_id: str) -> bool:
        with self._reading() as conn:
            stored = conn.execute(
                sa.select(portals.c.application_token).where(portals.c.member_id == member_id)
            ).scalar()
        return bool(stored)

    # --- writes ---------------------------------------------------------------------

    def save_grant(
        self,
        grant: Grant,
        *,
        installed_by: int | None = None,
        license_status: str | None = None,
        language: str | None = None,
        application_token: str | None = None,
    ) -> Portal:
        """Insert or update a portal from a grant the OAuth server vouched for.

        Reinstall keeps the row (same member_id) and replaces its tokens; `token_version`
        moves on so any refresh in flight against the old pair is discarded.
        """
        now = _now()
        values = {
            "domain": grant.domain,
            "client_endpoint": grant.client_endpoint,
            "server_endpoint": grant.server_endpoint,
            "scope": grant.scope,
            "status": ACTIVE,
            "access_token": self._keys.encrypt(grant.access_token),
            "refresh_token": self._keys.encrypt(grant.refresh_token),
            "expires_at": grant.expires_at,
            "last_error": None,
            "updated_at": now,
            "refreshed_at": now,
        }
        if installed_by is not None:
            values["installed_by"] = installed_by
        if license_status:
            values["license_status"] = license_status[:8]
        if language:
            values["language"] = language[:8]
        if application_token:
            values["application_token"] = self._keys.encrypt(application_token)
        with self._writing() as conn:
            row = self._lock_row(conn, grant.member_id)
            if row is None:
                conn.execute(
                    portals.insert().values(
                        member_id=grant.member_id, installed_at=now, token_version=1, **values
                    )
                )
            else:
                if row._mapping["status"] == UNINSTALLED:
                    values["installed_at"] = now
                conn.execute(
                    portals.update()
                    .where(portals.c.member_id == grant.member_id)
                    .values(token_version=portals.c.token_version + 1, **values)
                )
        portal = self.get(grant.member_id)
        assert portal is not None
        return portal

    def set_application_token(self, member_id: str, application_token: str) -> None:
        self._update(member_id, application_token=self._keys.encrypt(application_token))

    def set_bindings(self, member_id: str, *, placement: bool, events: bool) -> None:
        self._update(member_id, placement_bound=placement, events_bound=events)

    def update_endpoint(self, member_id: str, client_endpoint: str, domain: str) -> None:
        """A portal moved (confirmed by the OAuth server): point REST at the new address."""
        self._update(member_id, client_endpoint=client_endpoint, domain=domain)

    def mark(self, member_id: str, status: str, error: str | None = None) -> None:
        self._update(member_id, status=status, last_error=(error or None) and error[:255])

    def uninstall(self, member_id: str, *, clean: bool) -> bool:
        """Wipe the portal's tokens (keep a tombstone), or the whole row when `clean`."""
        with self._writing() as conn:
            if clean:
                result = conn.execute(portals.delete().where(portals.c.member_id == member_id))
            else:
                result = conn.execute(
                    portals.update()
                    .where(portals.c.member_id == member_id)
                    .values(
                        status=UNINSTALLED,
                        access_token=None,
                        refresh_token=None,
                        application_token=None,
                        expires_at=None,
                        placement_bound=False,
                        events_bound=False,
                        token_version=portals.c.token_version + 1,
                        updated_at=_now(),
                    )
                )
            conn.execute(viewer_renewals.delete().where(viewer_renewals.c.member_id == member_id))
        return result.rowcount > 0

    # --- single-flight refresh --------------------------------------------------------

    def refresh(
        self, member_id: str, seen_version: int, refresher: Callable[[str], Grant]
    ) -> Credentials:
        """Renew the stored pair unless another worker already did; return fresh credentials.

        `seen_version` is the version whose access token just failed with `expired_token`
        (or is past its expiry). Under the row lock: if the row moved on, that worker's
        result is used and nothing is spent; otherwise `refresher(refresh_token)` runs
        once and the new pair is stored in the same transaction — journalled first, and
        written again on a fresh connection if that write fails (`_store_again`).
        """
        failure: errors.LeadCardError | None = None
        answered: Grant | None = None  # the OAuth server's new pair: must reach the row
        try:
            with self._writing() as conn:
                row = self._lock_row(conn, member_id)
                current = self._credentials(row)
                if current.version != seen_version and not current.expired():
                    return current
                # Before the circuit check: a pair issued for this very refresh token heals
                # a portal that another caller marked reauth_required meanwhile.
                answered = self._journaled(current)
                if answered is None:
                    if row._mapping["status"] == REAUTH_REQUIRED:
                        # Circuit open (security.md §2.4): this refresh token was already
                        # refused under the lock; spending it again only repeats invalid_grant
                        # (and excessive refreshing gets apps blocked). A re-seed or reinstall
                        # (save_grant) closes it.
                        raise errors.TokenRevoked("stored grant awaits re-authorization")
                    try:
                        self.refresh_calls += 1
                        grant = refresher(current.refresh_token)
                    except (errors.TokenRevoked, errors.AppNotInstalled) as exc:
                        # Believed only here, under the lock, with the version unchanged
                        # (security.md §2.4): nobody else rotated it, so it really is gone.
                        # The status change commits; the error is raised after the
                        # transaction.
                        self._set_status(conn, member_id, REAUTH_REQUIRED, exc.code)
                        failure = exc
                    except errors.PaymentRequired as exc:
                        self._set_status(conn, member_id, PAYMENT_REQUIRED, exc.code)
                        failure = exc
                    else:
                        if grant.member_id != member_id:
                            raise errors.VerificationFailed("refresh answered for another portal")
                        answered = grant
                        if self._journal is not None:
                            self._journal.write(member_id, current.version,
                                                current.refresh_token, grant)
                if answered is not None:
                    conn.execute(self._pair_update(member_id, current.version, answered))
        except (errors.DatabaseUnavailable, errors.Busy):
            if answered is None:
                raise
            return self._store_again(member_id, current.version, answered)
        if failure is not None:
            raise failure
        assert answered is not None
        self._forget(member_id)
        return _fresh_credentials(answered, current.version + 1)

    def _journaled(self, current: Credentials) -> Grant | None:
        """The pair the OAuth server already gave for the stored (spent) refresh token, if
        this host's journal holds it; a stale entry (the row moved on) is dropped."""
        if self._journal is None:
            return None
        entry = self._journal.read(current.member_id)
        if entry is None:
            return None
        if (entry.token_version == current.version
                and hmac.compare_digest(entry.spent, spent_digest(current.refresh_token))):
            log.warning("portal %s: storing the renewed grant a failed write left in the journal",
                        current.member_id)
            return entry.grant
        self._journal.remove(current.member_id)
        return None

    def _pair_update(self, member_id: str, version: int, grant: Grant) -> sa.Update:
        """Store `grant` as the successor of the pair at `version` (and only of that one)."""
        now = _now()
        return (
            portals.update()
            .where(portals.c.member_id == member_id, portals.c.token_version == version)
            .values(
                access_token=self._keys.encrypt(grant.access_token),
                refresh_token=self._keys.encrypt(grant.refresh_token),
                expires_at=grant.expires_at,
                token_version=version + 1,
                client_endpoint=grant.client_endpoint,
                domain=grant.domain,
                status=ACTIVE,
                last_error=None,
                refreshed_at=now,
                updated_at=now,
            )
        )

    def _store_again(self, member_id: str, version: int, grant: Grant) -> Credentials:
        """Write a pair the OAuth server already issued, after the first write failed.

        Each try is a new transaction on a fresh pooled connection (the failed one was
        invalidated). The update only replaces the pair at `version`, so it can neither
        clobber a newer grant (a reinstall meanwhile) nor apply twice. Matching no row means
        the first commit went through after all (only its answer was lost) or the row was
        re-seeded: either way the row is current. Out of tries: the error is raised and the
        pair stays in the journal for the next refresh.
        """
        deadline = time.monotonic() + STORE_RETRY_SECONDS
        pause = 0.2
        while True:
            time.sleep(pause)
            try:
                with self._writing() as conn:
                    stored = conn.execute(self._pair_update(member_id, version, grant)).rowcount
                    row = None if stored else self._lock_row(conn, member_id)
                break
            except (errors.DatabaseUnavailable, errors.Busy):
                pause *= 2
                if time.monotonic() + pause > deadline:
                    log.warning("portal %s: renewed grant not stored yet; kept in the journal "
                                "for the next refresh", member_id)
                    raise
        self._forget(member_id)
        if stored:
            return _fresh_credentials(grant, version + 1)
        return self._credentials(row)

    def _forget(self, member_id: str) -> None:
        if self._journal is not None:
            self._journal.remove(member_id)

    def renew_viewer(
        self, member_id: str, refresh_token: str, refresher: Callable[[str], Grant]
    ) -> Grant:
        """Renew a viewer's expired AUTH_ID once, however many requests carry the same pair."""
        key = self._hash(refresh_token)
        now = time.time()
        with self._writing() as conn:
            conn.execute(viewer_renewals.delete().where(
                viewer_renewals.c.created_at < now - VIEWER_RENEWAL_TTL
            ))
            if not is_sqlite(self._engine):
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
                return _viewer_grant(self._keys, m)
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
            return grant

    # --- reconnect state ----------------------------------------------------------------

    def new_oauth_state(self, member_id: str) -> str:
        """A fresh single-use `state` for the authorization-code flow of `member_id`."""
        state = secrets.token_urlsafe(24)
        now = time.time()
        with self._writing() as conn:
            conn.execute(oauth_states.delete().where(oauth_states.c.created_at < now - OAUTH_STATE_TTL))
            conn.execute(oauth_states.insert().values(
                state_hash=self._hash(state), member_id=member_id, created_at=now))
        return state

    def consume_oauth_state(self, state: str) -> str | None:
        """The member_id a valid `state` was issued for; the state is spent either way."""
        key = self._hash(state)
        with self._writing() as conn:
            row = conn.execute(sa.select(oauth_states).where(oauth_states.c.state_hash == key)).first()
            # Expired states go here too, not only when a new one is made.
            conn.execute(oauth_states.delete().where(
                (oauth_states.c.state_hash == key)
                | (oauth_states.c.created_at < time.time() - OAUTH_STATE_TTL)))
            if row is None:
                return None
        if row._mapping["created_at"] < time.time() - OAUTH_STATE_TTL:
            return None
        return str(row._mapping["member_id"])

    def _hash(self, value: str) -> str:
        return hmac.new(self._hash_key, value.encode(), hashlib.sha256).hexdigest()

    # --- key rotation -----------------------------------------------------------------

    def rotate_keys(self) -> int:
        """Re-encrypt every stored secret under the newest key; return rows changed."""
        with self._writing() as conn:
            changed = self._rotate_table(conn, portals, portals.c.member_id,
                                         ("access_token", "refresh_token", "application_token"))
            self._rotate_table(conn, viewer_renewals, viewer_renewals.c.refresh_hash,
                               ("access_token", "refresh_token"))
        return changed

    def _rotate_table(self, conn: Connection, table: sa.Table, key: sa.Column,
                      columns: tuple[str, ...]) -> int:
        changed = 0
        for row in conn.execute(sa.select(table).with_for_update()).all():
            m = row._mapping
            updates = {c: self._keys.rotate(m[c]) for c in columns
                       if m[c] and self._keys.needs_rotation(m[c])}
            if updates:
                conn.execute(table.update().where(key == m[key.name]).values(**updates))
                changed += 1
        return changed

    # --- internals ------------------------------------------------------------------

    def _credentials(self, row: sa.Row | None) -> Credentials:
        if row is None:
            raise errors.NotInstalled("unknown portal")
        m = row._mapping
        if m["status"] == UNINSTALLED or not m["refresh_token"]:
            raise errors.NotInstalled("portal has no stored grant")
        return Credentials(
            member_id=m["member_id"],
            client_endpoint=m["client_endpoint"],
            access_token=self._keys.decrypt(m["access_token"]),
            refresh_token=self._keys.decrypt(m["refresh_token"]),
            expires_at=float(m["expires_at"] or 0),
            version=int(m["token_version"]),
        )

    def _lock_row(self, conn: Connection, member_id: str) -> sa.Row | None:
        # FOR UPDATE on PostgreSQL; on SQLite the BEGIN IMMEDIATE of _writing() already
        # holds the database write lock (SQLAlchemy drops FOR UPDATE for SQLite).
        return conn.execute(
            sa.select(portals).where(portals.c.member_id == member_id).with_for_update()
        ).first()

    def _set_status(self, conn: Connection, member_id: str, status: str, error: str) -> None:
        conn.execute(
            portals.update()
            .where(portals.c.member_id == member_id)
            .values(status=status, last_error=error, updated_at=_now())
        )

    def _update(self, member_id: str, **values: object) -> None:
        with self._writing() as conn:
            conn.execute(
                portals.update()
                .where(portals.c.member_id == member_id)
                .values(updated_at=_now(), **values)
            )

    def _reading(self):  # type: ignore[no-untyped-def]
        return _guarded(self._engine.connect())

    def _writing(self):  # type: ignore[no-untyped-def]
        return _guarded(write_transaction(self._engine))


def _fresh_credentials(grant: Grant, version: int) -> Credentials:
    return Credentials(
        member_id=grant.member_id,
        client_endpoint=grant.client_endpoint,
        access_token=grant.access_token,
        refresh_token=grant.refresh_token,
        expires_at=grant.expires_at,
        version=version,
    )


def _viewer_grant(keys: KeyRing, m: sa.RowMapping) -> Grant:
    return Grant(
        access_token=keys.decrypt(m["access_token"]),
        refresh_token=keys.decrypt(m["refresh_token"]),
        expires_at=float(m["expires_at"] or 0),
        member_id=m["member_id"],
        client_endpoint="",
        server_endpoint="",
        scope="",
        status="",
        user_id=None,
    )


def _is_lock_timeout(exc: OperationalError) -> bool:
    text = str(exc.orig).lower() if exc.orig else ""
    return "locked" in text or "lock timeout" in text or "lock_timeout" in text


def _database_error(exc: BaseException | None) -> errors.LeadCardError | None:
    """Our error for a database failure: Busy for a lock wait, DatabaseUnavailable else."""
    if isinstance(exc, OperationalError):
        if _is_lock_timeout(exc):
            return errors.Busy("database locked")
        return errors.DatabaseUnavailable(type(exc).__name__)
    if isinstance(exc, sa.exc.TimeoutError):
        return errors.DatabaseUnavailable("pool timeout")
    return None


class _guarded:
    """Context manager that turns database failures into the error family."""

    def __init__(self, cm) -> None:  # type: ignore[no-untyped-def]
        self._cm = cm

    def __enter__(self) -> Connection:
        try:
            return self._cm.__enter__()
        except (OperationalError, sa.exc.TimeoutError) as exc:
            raise _database_error(exc) from None  # type: ignore[misc]

    def __exit__(self, exc_type, exc, tb) -> bool | None:  # type: ignore[no-untyped-def]
        try:
            suppressed = self._cm.__exit__(exc_type, exc, tb)
        except OperationalError as inner:
            raise errors.DatabaseUnavailable(type(inner).__name__) from None
        mapped = _database_error(exc)
        if mapped is not None:
            raise mapped from None
        return suppressed


def iter_expiring(store: TokenStore, older_than_days: float) -> Iterator[Portal]:
    """Active portals whose grant was last renewed more than `older_than_days` ago."""
    cutoff = _now().timestamp() - older_than_days * 86400
    for portal in store.list():
        if portal.status == UNINSTALLED or not portal.has_tokens:
            continue
        last = portal.refreshed_at or portal.installed_at
        if last.timestamp() <= cutoff:
            yield portal
