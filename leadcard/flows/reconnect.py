"""Reconnect: an administrator re-authorizes Lead Card when its stored grant was refused.

The authorization-code flow (settings/oauth/index.md): `begin` hands out a single-use,
expiring `state` and the portal's authorize URL; the portal sends the user back with a
`code` (valid 30 s), which `complete` exchanges at the pinned OAuth server — never a host a
request names — and stores only if the grant is a portal administrator's.

Both ends can be reached by anybody: `begin` stores a row, so it is metered per portal and
per client (attempts.py); `complete` spends the state whatever happens next.
"""

from __future__ import annotations

from urllib.parse import urlencode

from leadcard.core import errors
from leadcard.core.grant import portal_origin
from leadcard.flows import lifecycle
from leadcard.flows.services import Services
from leadcard.storage.portals import UNINSTALLED, Portal

MAX_PARAM_LENGTH = 256


def begin(svc: Services, member_id: str, client: str) -> str:
    """The portal's authorize URL with a fresh `state` for `member_id`, asked by `client`."""
    portal = svc.store.get(member_id) if member_id.isalnum() else None
    if portal is None or portal.status == UNINSTALLED:
        raise errors.NotInstalled("reconnect for an unknown portal")
    svc.attempts.check("reconnect", member_id, client)
    state = svc.store.new_oauth_state(member_id)
    query = urlencode({"client_id": svc.settings.client_id, "state": state})
    return f"{portal_origin(portal.client_endpoint)}/oauth/authorize/?{query}"


def complete(svc: Services, code: str, state: str, member_id: str) -> Portal:
    """Exchange `code` for the portal `state` was issued for; store an administrator's grant.

    Raises `BadPayload` for missing or oversized parameters, `VerificationFailed` for an
    unknown, spent or expired state (or a code of another portal), `NotAdmin` for a grant of
    a user who is not a portal administrator — in every case nothing is stored.
    """
    if not code or not state or len(code) > MAX_PARAM_LENGTH or len(state) > MAX_PARAM_LENGTH:
        raise errors.BadPayload("code or state missing")
    issued_for = svc.store.consume_oauth_state(state)
    if issued_for is None or issued_for != member_id:
        raise errors.VerificationFailed("unknown, used or expired state")
    grant = svc.oauth.exchange_code(code)  # always at the pinned OAuth server
    if grant.member_id != member_id:
        raise errors.VerificationFailed("code was issued for another portal")
    # Any portal user may authorize the app: a sales rep's grant would make app-level work
    # run with a sales rep's rights (threats.md R8), so only an administrator's is kept.
    lifecycle.require_admin(svc, grant.member_id, grant.client_endpoint, grant.access_token)
    return svc.store.save_grant(grant)
