"""The portal store: every read and write of a stored portal and its tokens, one door.

One row per Bitrix24 portal in `tables.portals`, keyed by `member_id` (stable across domain
changes — settings/oauth/index.md). Access, refresh and application tokens are stored encrypted by
the key ring (`keyring.KeyRing`); callers get `PortalRoute`, `Portal` or `Credentials`
(`records.py`), never a row or a ciphertext.

`PortalStore` is the storage layer's facade for flows and the CLI. Plain reads and writes are
here; the stories with their own rules live beside it and are reached through it:

``refresh``                                    `refresh.py` — single-flight renewal of the
                                               stored grant under the row lock, with the
                                               grant journal and the commit retry
``renew_viewer``                               `viewer_renewals.py` — single-flight renewal
                                               of a viewer's AUTH_ID
``new_oauth_state`` / ``consume_oauth_state``  `oauth_states.py` — reconnect states
``rotate_keys``                                `key_rotation.py`

Database failures come out as `errors.Busy` / `errors.DatabaseUnavailable` (`db.guarded`).
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
from collections.abc import Callable, Iterator
from functools import lru_cache

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from leadcard.core import errors
from leadcard.core.grant import Grant
from leadcard.storage import key_rotation
from leadcard.storage.action_keys import action_keys
from leadcard.storage.db import HotStatement, guarded, reading, writing
from leadcard.storage.grant_journal import GrantJournal
from leadcard.storage.keyring import KeyRing
from leadcard.storage.oauth_states import OAuthStates
from leadcard.storage.records import (
    Credentials,
    Portal,
    PortalRoute,
    as_portal,
    lock_portal_row,
    stored_credentials,
    utc_now,
)
from leadcard.storage.refresh import StoredGrantRefresh
from leadcard.storage.rest_log import rest_log
from leadcard.storage.tables import (
    ACTIVE,
    PAYMENT_REQUIRED,
    REAUTH_REQUIRED,
    UNINSTALLED,
    portals,
)
from leadcard.storage.viewer_renewals import ViewerRenewals, ViewerTokens
from leadcard.storage.viewer_renewals import forget_portal as forget_viewer_renewals

# The storage layer's public surface for flows, web and the CLI.
__all__ = [
    "ACTIVE", "PAYMENT_REQUIRED", "REAUTH_REQUIRED", "UNINSTALLED",
    "Credentials", "Portal", "PortalRoute", "PortalStore", "ViewerTokens", "iter_expiring",
]


class PortalStore:
    """All reads and writes of stored portals and their tokens."""

    def __init__(self, engine: Engine, keyring: KeyRing, hash_secret: str,
                 journal: GrantJournal | None = None) -> None:
        self._engine = engine
        self._keys = keyring
        # Keyed hash for viewer-renewal and reconnect-state rows: the spent refresh token or
        # the state itself is never stored. (The label predates oauth_states; changing it
        # would orphan the states and renewals stored at deploy time.)
        hash_key = hashlib.sha256(b"leadcard-viewer-renewal:" + hash_secret.encode()).digest()

        def keyed_hash(value: str) -> str:
            return hmac.new(hash_key, value.encode(), hashlib.sha256).hexdigest()

        self._refresh = StoredGrantRefresh(engine, keyring, journal)
        self._viewer_renewals = ViewerRenewals(engine, keyring, keyed_hash)
        self._oauth_states = OAuthStates(engine, keyed_hash)
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

    @property
    def refresh_calls(self) -> int:
        """How many stored-grant refreshes this process sent (for tests and the benchmark)."""
        return self._refresh.calls

    # --- reads ----------------------------------------------------------------------

    def get(self, member_id: str) -> Portal | None:
        with self._reading() as conn:
            row = conn.execute(
                sa.select(portals).where(portals.c.member_id == member_id)
            ).first()
        return as_portal(row) if row else None

    def get_for_request(
        self, member_id: str, application_token: str
    ) -> tuple[PortalRoute | None, bool]:
        """One read for the hot path: the stored portal's route, and whether a posted
        `application_token` agrees with the stored one (constant time). Nothing posted or
        nothing stored counts as agreeing: older portals don't post it (api-reference/widgets/_includes/widget_data.md)."""
        with guarded(contextlib.nullcontext()):
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
        return [as_portal(r) for r in rows]

    def iter_all(self, batch: int = 500) -> Iterator[Portal]:
        """Every stored portal by member_id, read `batch` rows at a time (keyset paging: a
        fleet of 10,000 is never one result set, and no token is decrypted here)."""
        after = ""
        while True:
            with self._reading() as conn:
                rows = conn.execute(
                    sa.select(portals).where(portals.c.member_id > after)
                    .order_by(portals.c.member_id).limit(batch)
                ).all()
            for row in rows:
                yield as_portal(row)
            if len(rows) < batch:
                return
            after = rows[-1]._mapping["member_id"]

    def count(self, exclude: str | None = None) -> int:
        """How many portals are stored (without those in status `exclude`)."""
        q = sa.select(sa.func.count()).select_from(portals)
        if exclude:
            q = q.where(portals.c.status != exclude)
        with self._reading() as conn:
            return int(conn.execute(q).scalar() or 0)

    def credentials(self, member_id: str) -> Credentials:
        """Decrypt the stored pair; NotInstalled if there is none."""
        with self._reading() as conn:
            row = conn.execute(
                sa.select(portals).where(portals.c.member_id == member_id)
            ).first()
        return stored_credentials(self._keys, row)

    def application_token_matches(self, member_id: str, candidate: str) -> bool:
        """Constant-time comparison with the stored application_token (threats.md R5)."""
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
        now = utc_now()
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
            row = lock_portal_row(conn, grant.member_id)
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
        if portal is None:  # written just now in the same call
            raise errors.DatabaseUnavailable("the saved portal row was not found")
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
                # CLEAN=1 asks for the portal's data gone: its REST-log rows too.
                conn.execute(rest_log.delete().where(rest_log.c.member_id == member_id))
                conn.execute(action_keys.delete().where(action_keys.c.member_id == member_id))
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
                        updated_at=utc_now(),
                    )
                )
            forget_viewer_renewals(conn, member_id)
        return result.rowcount > 0

    # --- the stories beside the store -------------------------------------------------

    def refresh(
        self, member_id: str, seen_version: int, refresher: Callable[[str], Grant]
    ) -> Credentials:
        """Renew the stored pair unless another worker already did (`refresh.py`)."""
        return self._refresh.refresh(member_id, seen_version, refresher)

    def renew_viewer(
        self, member_id: str, refresh_token: str, refresher: Callable[[str], Grant]
    ) -> ViewerTokens:
        """Renew a viewer's expired AUTH_ID once, however many requests carry the same pair
        (`viewer_renewals.py`)."""
        return self._viewer_renewals.renew(member_id, refresh_token, refresher)

    def new_oauth_state(self, member_id: str) -> str:
        """A fresh single-use `state` for the authorization-code flow of `member_id`."""
        return self._oauth_states.issue(member_id)

    def consume_oauth_state(self, state: str) -> str | None:
        """The member_id a valid `state` was issued for; the state is spent either way."""
        return self._oauth_states.consume(state)

    def rotate_keys(self) -> int:
        """Re-encrypt every stored secret under the newest key; return rows changed."""
        return key_rotation.rotate_keys(self._engine, self._keys)

    # --- internals ------------------------------------------------------------------

    def _update(self, member_id: str, **values: object) -> None:
        with self._writing() as conn:
            conn.execute(
                portals.update()
                .where(portals.c.member_id == member_id)
                .values(updated_at=utc_now(), **values)
            )

    def _reading(self) -> guarded:
        return reading(self._engine)

    def _writing(self) -> guarded:
        return writing(self._engine)


def iter_expiring(store: PortalStore, older_than_days: float,
                  batch: int = 500) -> Iterator[Portal]:
    """Active portals whose grant was last renewed more than `older_than_days` ago (streamed)."""
    cutoff = utc_now().timestamp() - older_than_days * 86400
    for portal in store.iter_all(batch=batch):
        if portal.status == UNINSTALLED or not portal.has_tokens:
            continue
        last = portal.refreshed_at or portal.installed_at
        if last.timestamp() <= cutoff:
            yield portal
