"""A REST session bound to one portal and one credential: the one renewal policy.

Every flow that calls a portal — the lead tab with the viewer's AUTH_ID, app-level work
with the stored grant, the installer's admin check — does it through a `PortalSession`.
The session owns what used to be written out in each of them:

- **renew once on `expired_token`**: the credential renews itself (the viewer's REFRESH_ID
  through the store's single-flight viewer renewal; the stored grant through the store's
  single-flight refresh) and the request is sent again. A second `expired_token` is raised.
  Never renewed before a call on a timer (settings/oauth/auto-renewal.md warns that apps
  refreshing needlessly may be blocked); a stored grant past its expiry is renewed when its
  session is opened (`flows/portal_api.py`), not here.
- **follow a portal move once**: a portal that moved answers 3xx. The new address is taken
  from the OAuth server's `app.info` for this session's token — never from `Location`,
  which anyone between us and the old host could write (threats.md R17;
  settings/how-to-call-rest-api/change-domen.md) — and the request is sent there. A second
  redirect is `PortalMoved`. The confirmed address is handed to `remember_move`, which
  stores it; a session without one (a token not yet tied to a stored portal) does not
  follow moves and raises the `PortalRedirect`.
- **the rate limit**: every request takes a slot in this portal's shared bucket
  (`bucket_key` = member_id) within the one `Deadline` of the session (`rest.py`).

The two rules are independent: one request may be renewed once and moved once.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from leadcard.bitrix24 import observe
from leadcard.bitrix24.oauth import AppInfo, OAuthClient
from leadcard.bitrix24.rest import BatchResult, Deadline, PortalRedirect, RestClient
from leadcard.core import errors
from leadcard.core.grant import portal_domain

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Renewed:
    """A credential's new access token, and where the OAuth server's answer says the portal
    lives (None: the renewal says nothing the session should act on)."""

    access_token: str
    client_endpoint: str | None = None


class Credential(Protocol):
    """What a session needs of a token: its current value, and one way to renew it."""

    @property
    def access_token(self) -> str: ...

    def renew(self) -> Renewed:
        """Renew after `expired_token` (single-flight where the token is shared); raise from
        the error family when it cannot be renewed."""
        ...


class FixedToken:
    """A token that cannot be renewed (the installer's AUTH_ID, an event's token): an
    `expired_token` answer is final."""

    def __init__(self, access_token: str) -> None:
        self._access_token = access_token

    @property
    def access_token(self) -> str:
        return self._access_token

    def renew(self) -> Renewed:
        raise errors.ExpiredToken("this token cannot be renewed")


class PortalSession:
    """REST calls for one portal (`member_id`, `endpoint`) with one credential, within one
    deadline; see the module docstring for the renewal and move policy it owns."""

    def __init__(
        self,
        rest: RestClient,
        oauth: OAuthClient,
        *,
        member_id: str,
        endpoint: str,
        credential: Credential,
        deadline: Deadline,
        remember_move: Callable[[str, str], None] | None = None,
    ) -> None:
        self._rest = rest
        self._oauth = oauth
        self.member_id = member_id
        self.endpoint = endpoint
        self.credential = credential
        self.deadline = deadline
        self._remember_move = remember_move  # (new client_endpoint, domain) -> None

    def call(self, method: str, params: Mapping[str, Any] | None = None, *,
             idempotent: bool = True) -> Any:
        """One method; its `result`, or an error from the family."""
        return self._with_policy(lambda endpoint, token: self._rest.call(
            endpoint, method, params, token,
            bucket_key=self.member_id, deadline=self.deadline, idempotent=idempotent,
        ))

    def batch(self, commands: Mapping[str, tuple[str, Mapping[str, Any]] | str]) -> BatchResult:
        """Up to 50 read commands in one request (rest.RestClient.batch)."""
        return self._with_policy(lambda endpoint, token: self._rest.batch(
            endpoint, commands, token, bucket_key=self.member_id, deadline=self.deadline,
        ))

    def app_info(self) -> AppInfo:
        """The OAuth server's `app.info` for this session's token, renewed once when refused.

        The OAuth server answers expired_token and invalid_token alike (both TokenRevoked
        here): an access token merely past its life is no proof that the grant is gone, so
        the credential renews once; only a refusal of the renewal itself is final.
        """
        with observe.portal(self.member_id):
            try:
                return self._oauth.app_info(self.credential.access_token)
            except errors.TokenRevoked:
                self._renew()
                return self._oauth.app_info(self.credential.access_token)

    # --- the policy -------------------------------------------------------------------

    def _with_policy(self, send: Callable[[str, str], Any]) -> Any:
        with observe.portal(self.member_id):  # renewals and app.info belong to this portal
            return self._send_with_policy(send)

    def _send_with_policy(self, send: Callable[[str, str], Any]) -> Any:
        renewed = moved = False
        while True:
            try:
                return send(self.endpoint, self.credential.access_token)
            except errors.ExpiredToken:
                if renewed:
                    raise
                renewed = True
                self._renew()
            except PortalRedirect:
                if self._remember_move is None:
                    raise
                if moved:
                    raise errors.PortalMoved("portal redirected twice") from None
                moved = True
                renewed = self._follow_move(may_renew=not renewed) or renewed

    def _renew(self) -> None:
        renewal = self.credential.renew()
        if renewal.client_endpoint:
            self.endpoint = renewal.client_endpoint

    def _follow_move(self, *, may_renew: bool) -> bool:
        """Ask the OAuth server (never `Location`) where the portal lives now; store it.

        The token may be past its life as well (the old host redirects before it looks at
        the token): app.info then refuses it, and the request's one renewal is spent here.
        Returns whether it was.
        """
        if self._remember_move is None:  # callers check first; never reached
            raise RuntimeError("a session without remember_move does not follow moves")
        redirected_from, renewed = self.endpoint, False
        try:
            info = self._oauth.app_info(self.credential.access_token)
        except errors.TokenRevoked:
            if not may_renew:
                raise
            self._renew()
            renewed = True
            info = self._oauth.app_info(self.credential.access_token)
        if info.member_id != self.member_id or info.client_endpoint == redirected_from:
            raise errors.PortalMoved("OAuth server did not confirm a new address")
        log.warning("portal %s moved to %s", self.member_id, portal_domain(info.client_endpoint))
        self._remember_move(info.client_endpoint, info.domain)
        self.endpoint = info.client_endpoint
        return renewed
