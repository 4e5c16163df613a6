"""Single-flight refresh of a portal's stored grant, under the row lock, with the grant journal.

Refresh tokens are single-use (Bitrix24 rotates them on every use:
`bitrix24/b24restdocs` settings/oauth/index.md), so a refresh is single-flight across
threads, processes and hosts: the refresher holds a write lock on the row — `SELECT … FOR
UPDATE` on PostgreSQL, `BEGIN IMMEDIATE` on SQLite — re-reads it, and only spends the refresh
token if the row still holds the one the caller saw (`token_version`). A worker killed
mid-refresh drops its connection, the database releases the lock, and the next caller
retries with the still-stored refresh token.

Once the OAuth server has answered, the stored refresh token is spent, so the answer must
reach the row: it is written to the local `GrantJournal` before the row, written again on a
fresh connection if the first write fails (`_store_again`), and replayed from the journal by
the next refresh on this host if the process died in between.

This module owns only that story; `PortalStore.refresh` is its public door.
"""

from __future__ import annotations

import hmac
import logging
import time
from collections.abc import Callable

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from leadcard.core import errors
from leadcard.core.grant import Grant
from leadcard.storage.db import writing
from leadcard.storage.grant_journal import GrantJournal, spent_digest
from leadcard.storage.keyring import KeyRing
from leadcard.storage.records import (
    Credentials,
    fresh_credentials,
    lock_portal_row,
    stored_credentials,
    utc_now,
)
from leadcard.storage.tables import ACTIVE, PAYMENT_REQUIRED, REAUTH_REQUIRED, portals

log = logging.getLogger(__name__)

# After the OAuth server answered a refresh and the row's write failed: how long to keep
# writing the new pair again (pauses 0.2, 0.4, 0.8, 1.6 s), each try bounded by db.py's
# deadlines. A database blip (a reset, a failover, a full disk freed) is over by then; past
# it the pair waits in the journal for the next refresh.
STORE_RETRY_SECONDS = 4.0


class StoredGrantRefresh:
    """Renews stored pairs one at a time per portal; counts the OAuth calls it made."""

    def __init__(self, engine: Engine, keyring: KeyRing, journal: GrantJournal | None) -> None:
        self._engine = engine
        self._keys = keyring
        self._journal = journal
        # Counted for tests and the benchmark: how many refreshes this process performed.
        self.calls = 0

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
            with writing(self._engine) as conn:
                row = lock_portal_row(conn, member_id)
                current = stored_credentials(self._keys, row)
                if current.version != seen_version and not current.expired():
                    return current
                # Before the circuit check: a pair issued for this very refresh token heals
                # a portal that another caller marked reauth_required meanwhile.
                answered = self._journaled(current)
                if answered is None:
                    if row is None:  # stored_credentials raised NotInstalled already
                        raise errors.NotInstalled("unknown portal")
                    if row._mapping["status"] == REAUTH_REQUIRED:
                        # Circuit open (threats.md §2.4): this refresh token was already
                        # refused under the lock; spending it again only repeats invalid_grant
                        # (and excessive refreshing gets apps blocked). A re-seed or reinstall
                        # (save_grant) closes it.
                        raise errors.TokenRevoked("stored grant awaits re-authorization")
                    try:
                        self.calls += 1
                        grant = refresher(current.refresh_token)
                    except (errors.TokenRevoked, errors.AppNotInstalled) as exc:
                        # Believed only here, under the lock, with the version unchanged
                        # (threats.md §2.4): nobody else rotated it, so it really is gone.
                        # The status change commits; the error is raised after the
                        # transaction.
                        _set_status(conn, member_id, REAUTH_REQUIRED, exc.code)
                        failure = exc
                    except errors.PaymentRequired as exc:
                        _set_status(conn, member_id, PAYMENT_REQUIRED, exc.code)
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
        if answered is None:  # the OAuth call either answered or raised
            raise errors.OAuthUnavailable("the refresh gave no answer")
        self._forget(member_id)
        return fresh_credentials(answered, current.version + 1)

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
        now = utc_now()
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
                with writing(self._engine) as conn:
                    stored = conn.execute(self._pair_update(member_id, version, grant)).rowcount
                    row = None if stored else lock_portal_row(conn, member_id)
                break
            except (errors.DatabaseUnavailable, errors.Busy):
                pause *= 2
                if time.monotonic() + pause > deadline:
                    log.warning("portal %s: renewed grant not stored yet; kept in the journal "
                                "for the next refresh", member_id)
                    raise
        self._forget(member_id)
        if stored:
            return fresh_credentials(grant, version + 1)
        return stored_credentials(self._keys, row)

    def _forget(self, member_id: str) -> None:
        if self._journal is not None:
            self._journal.remove(member_id)


def _set_status(conn: Connection, member_id: str, status: str, error: str) -> None:
    conn.execute(
        portals.update()
        .where(portals.c.member_id == member_id)
        .values(status=status, last_error=error, updated_at=utc_now())
    )
