"""REST calls made with a portal's *stored* grant (app-level work, not the viewer's).

Used for handler bindings at install, uninstall confirmation, `portals check` and
`portals renew`. `PortalApi.session` opens a `PortalSession` (bitrix24/session.py, which owns
"renew once on expired_token, follow a move once") whose credential is the stored grant:

- renewed only when Bitrix24 answers `expired_token` or it is already past its expiry when
  the session opens — never before every call (settings/oauth/auto-renewal.md warns that
  apps refreshing on a timer may be blocked);
- the renewal is single-flight across workers and hosts (the store's `refresh`, under the
  row lock): a worker that finds the row already renewed uses that pair and spends nothing;
- a move confirmed by the OAuth server is written to the stored portal.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Protocol

from leadcard.bitrix24 import observe
from leadcard.bitrix24.oauth import OAuthClient
from leadcard.bitrix24.rest import Deadline, RestClient
from leadcard.bitrix24.session import PortalSession, Renewed
from leadcard.core.grant import Grant

# A stored token this close to its expiry is renewed before the session's first request.
EXPIRY_LEEWAY = 30.0


class Credentials(Protocol):
    """The store's decrypted stored tokens of one portal at one `version`."""

    @property
    def member_id(self) -> str: ...
    @property
    def client_endpoint(self) -> str: ...
    @property
    def access_token(self) -> str: ...
    @property
    def version(self) -> int: ...

    def expired(self, now: float | None = None, leeway: float = 0.0) -> bool: ...


class GrantStore(Protocol):
    """What this module needs of the portal store (storage/portals.py)."""

    def credentials(self, member_id: str) -> Credentials: ...

    def refresh(self, member_id: str, seen_version: int,
                refresher: Callable[[str], Grant]) -> Credentials: ...

    def update_endpoint(self, member_id: str, client_endpoint: str, domain: str) -> None: ...


class StoredGrant:
    """The stored grant of one portal as a session credential (see module docstring)."""

    def __init__(self, store: GrantStore, oauth: OAuthClient, credentials: Credentials) -> None:
        self._store = store
        self._oauth = oauth
        self.credentials = credentials

    @property
    def access_token(self) -> str:
        return self.credentials.access_token

    def renew(self) -> Renewed:
        """Single-flight refresh of the pair at the version that just failed; the renewed
        grant's endpoint is the OAuth server's answer, so the session follows it."""
        creds = self.credentials
        with observe.portal(creds.member_id):
            self.credentials = self._store.refresh(creds.member_id, creds.version,
                                                   self._oauth.refresh)
        return Renewed(self.credentials.access_token, self.credentials.client_endpoint)


class PortalApi:
    """Sessions with a portal's stored grant; `call` for a single method."""

    def __init__(self, store: GrantStore, rest: RestClient, oauth: OAuthClient) -> None:
        self._store = store
        self._rest = rest
        self._oauth = oauth

    def session(self, member_id: str, deadline: Deadline) -> PortalSession:
        """A session on the stored grant of `member_id`, renewed first if it is expired."""
        grant = StoredGrant(self._store, self._oauth, self._store.credentials(member_id))
        if grant.credentials.expired(leeway=EXPIRY_LEEWAY):
            grant.renew()
        return PortalSession(
            self._rest, self._oauth,
            member_id=member_id,
            endpoint=grant.credentials.client_endpoint,
            credential=grant,
            deadline=deadline,
            remember_move=lambda endpoint, domain: self._store.update_endpoint(
                member_id, endpoint, domain),
        )

    def call(
        self,
        member_id: str,
        method: str,
        params: Mapping[str, Any] | None = None,
        *,
        deadline: Deadline,
        idempotent: bool = True,
    ) -> Any:
        """One method with the stored grant (a session of one call)."""
        return self.session(member_id, deadline).call(method, params, idempotent=idempotent)

    def renew(self, member_id: str, seen_version: int) -> Credentials:
        """Single-flight refresh of the stored grant at `seen_version` (`portals renew`)."""
        with observe.portal(member_id):
            return self._store.refresh(member_id, seen_version, self._oauth.refresh)
