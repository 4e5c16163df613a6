"""The local journal of refreshed grants not yet committed to the database.

Bitrix24 rotates the refresh token on use: once the OAuth server has answered a refresh, the
stored refresh token is spent and the answer is the only valid pair. `refresh.py` writes that
answer here (encrypted by the key ring, fsynced) *before* it writes the row, and
removes it once the row is committed. If the process dies in between (SIGKILL, OOM, host
reboot), the next refresh of that portal on this host finds the entry, sees that the row
still holds the spent pair the entry replaces, and stores the entry instead of spending the
spent token again (which would only answer invalid_grant and cost an administrator a visit).

One file per portal under the instance directory. It helps only when the same host picks
the portal up again: a journal on another host's disk is out of reach (docs/DESIGN.md,
"Failure behaviour: database").
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from dataclasses import dataclass

from leadcard.core.grant import Grant
from leadcard.storage.keyring import KeyRing

log = logging.getLogger(__name__)

SUFFIX = ".grant"


def spent_digest(refresh_token: str) -> str:
    """Names the refresh token an entry replaces, without keeping the token."""
    return hashlib.sha256(refresh_token.encode()).hexdigest()


@dataclass(frozen=True)
class Entry:
    """The OAuth server's answer to spending the pair at `token_version` of `member_id`."""

    member_id: str
    token_version: int
    spent: str  # spent_digest() of the refresh token that was spent
    grant: Grant


class GrantJournal:
    """Write, read and drop the pending grant of a portal (files under `directory`)."""

    def __init__(self, directory: str, keyring: KeyRing) -> None:
        self._dir = directory
        self._keys = keyring

    def _path(self, member_id: str) -> str:
        # member_id comes from the OAuth server, but a file name should never depend on it.
        return os.path.join(self._dir, hashlib.sha256(member_id.encode()).hexdigest()[:32] + SUFFIX)

    def write(self, member_id: str, token_version: int, spent_refresh_token: str,
              grant: Grant) -> bool:
        """Durably record the new pair; False (and a warning) if the disk refused.

        A failed write does not stop the refresh: the commit that follows is what matters,
        the journal only covers a crash between the two.
        """
        record = {
            "member_id": member_id,
            "token_version": token_version,
            "spent": spent_digest(spent_refresh_token),
            "grant": {
                "access_token": grant.access_token,
                "refresh_token": grant.refresh_token,
                "expires_at": grant.expires_at,
                "member_id": grant.member_id,
                "client_endpoint": grant.client_endpoint,
                "server_endpoint": grant.server_endpoint,
                "scope": grant.scope,
                "status": grant.status,
                "user_id": grant.user_id,
            },
        }
        path = self._path(member_id)
        tmp = f"{path}.{os.getpid()}.tmp"
        try:
            os.makedirs(self._dir, mode=0o700, exist_ok=True)
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            try:
                os.write(fd, self._keys.encrypt(json.dumps(record)).encode())
                os.fsync(fd)
            finally:
                os.close(fd)
            os.replace(tmp, path)
            _fsync_dir(self._dir)
            return True
        except OSError as exc:
            log.warning("grant journal not written for %s: %s", member_id, type(exc).__name__)
            _remove(tmp)
            return False

    def read(self, member_id: str) -> Entry | None:
        """The pending entry of `member_id`, or None (nothing there, or unreadable)."""
        try:
            with open(self._path(member_id), "rb") as handle:
                blob = handle.read().decode()
        except FileNotFoundError:
            return None
        except OSError as exc:
            log.warning("grant journal unreadable for %s: %s", member_id, type(exc).__name__)
            return None
        try:
            record = json.loads(self._keys.decrypt(blob))
            g = record["grant"]
            grant = Grant(
                access_token=g["access_token"], refresh_token=g["refresh_token"],
                expires_at=float(g["expires_at"]), member_id=g["member_id"],
                client_endpoint=g["client_endpoint"], server_endpoint=g["server_endpoint"],
                scope=g["scope"], status=g["status"], user_id=g["user_id"],
            )
            entry = Entry(member_id=record["member_id"], token_version=int(record["token_version"]),
                          spent=str(record["spent"]), grant=grant)
        except Exception as exc:  # a torn or foreign file must not break refreshing
            log.warning("grant journal entry for %s ignored: %s", member_id, type(exc).__name__)
            return None
        return entry if entry.member_id == member_id else None

    def remove(self, member_id: str) -> None:
        _remove(self._path(member_id))


def _remove(path: str) -> None:
    try:
        os.remove(path)
    except FileNotFoundError:
        pass
    except OSError as exc:
        log.warning("grant journal entry not removed: %s", type(exc).__name__)


def _fsync_dir(directory: str) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
