"""REST calls made with a portal's *stored* grant (app-level work, not the viewer's).

Used for handler bindings at install, `portals check` and `portals renew`. The stored
access token is renewed only when Bitrix24 answers `expired_token` (or it is past its
expiry), never before every call (settings/oauth/auto-renewal.md warns that apps refreshing
on a timer may be blocked), and the renewal is single-flight (`TokenStore.refresh`).
"""

from __future__ import annotations

import logging
from typing import Any, Mapping

from leadcard.core import errors
from leadcard.bitrix24.rest import Deadline, PortalRedirect, RestClient
from leadcard.bitrix24.oauth import OAuthClient
from leadcard.core.grant import portal_domain
from leadcard.storage.portals import Credentials, TokenStore

log = logging.getLogger(__name__)


class PortalApi:
    """`call(member_id, method, params)` with the stored grant, renewing it once if needed."""

    def __init__(self, store: TokenStore, rest: RestClient, oauth: OAuthClient) -> None:
        self._store = store
        self._rest = rest
        self._oauth = oauth

    def call(
        self,
        member_id: str,
        method: str,
        params: Mapping[str, Any] | None = None,
        *,
        deadline: Deadline,
        idempotent: bool = True,
    ) -> Any:
        creds = self._store.credentials(member_id)
        if creds.expired(leeway=30):
            creds = self.renew(member_id, creds.version)
        try:
            return self._send(creds, method, params, deadline, idempotent)
        except errors.ExpiredToken:
            creds = self.renew(member_id, creds.version)
            return self._send(creds, method, params, deadline, idempotent)

    def renew(self, member_id: str, seen_version: int) -> Credentials:
        """Single-flight refresh of the stored grant (see TokenStore.refresh)."""
        return self._store.refresh(member_id, seen_version, self._oauth.refresh)

    def _send(
        self,
        creds: Credentials,
        method: str,
        params: Mapping[str, Any] | None,
        deadline: Deadline,
        idempotent: bool,
    ) -> Any:
        def send(c: Credentials) -> Any:
            return self._rest.call(c.client_endpoint, method, params, c.access_token,
                                   bucket_key=c.member_id, deadline=deadline,
                                   idempotent=idempotent)

        try:
            return send(creds)
        except PortalRedirect:
            return send(self._follow_move(creds))

    def _follow_move(self, creds: Credentials) -> Credentials:
        confirm_move(self._store, self._oauth, creds.member_id, creds.client_endpoint,
                     creds.access_token)
        return self._store.credentials(creds.member_id)


def confirm_move(store: TokenStore, oauth: OAuthClient, member_id: str, old_endpoint: str,
                 access_token: str) -> str:
    """The portal answered a redirect: ask the OAuth server (never `Location`) where it lives
    now, store the new endpoint and return it (security.md R17; change-domen.md)."""
    info = oauth.app_info(access_token)
    if info.member_id != member_id or info.client_endpoint == old_endpoint:
        raise errors.PortalMoved("OAuth server did not confirm a new address")
    log.warning("portal %s moved to %s", member_id, portal_domain(info.client_endpoint))
    store.update_endpoint(member_id, info.client_endpoint, info.domain)
    return info.client_endpoint
