"""One lead-tab view: tie the POST to a stored portal, read the lead as the viewing user.

- `member_id` selects the stored portal; REST goes only to its stored `client_endpoint`,
  whatever `DOMAIN` says (threats.md R1, T1).
- A posted `APPLICATION_TOKEN` must equal the stored one (constant time); older portals
  don't post it (api-reference/widgets/_includes/widget_data.md caveat), so its absence is not an error.
- The view's requests go through one `PortalSession` with the viewer's credential
  (`ViewerToken`): an expired `AUTH_ID` is renewed once with `REFRESH_ID`, single-flight
  across processes for the same pair (the store's `renew_viewer`), and the renewed grant
  must name the same portal; a move is followed once, confirmed by the OAuth server and
  stored (bitrix24/session.py).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from typing import Any

from leadcard.bitrix24 import observe
from leadcard.bitrix24.payloads import PlacementRequest
from leadcard.bitrix24.rest import Deadline
from leadcard.bitrix24.session import PortalSession, Renewed
from leadcard.card.model import ReferenceData
from leadcard.core import errors
from leadcard.flows.lead_reader import LeadReader
from leadcard.flows.services import Services
from leadcard.storage.portals import UNINSTALLED, PortalRoute

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class LeadView:
    portal: PortalRoute
    lead: dict[str, Any]
    reference: ReferenceData


def stored_portal(svc: Services, member_id: str, application_token: str) -> PortalRoute:
    """The installed portal this POST claims to come from, or NotInstalled/VerificationFailed."""
    portal, agrees = svc.store.get_for_request(member_id, application_token)
    if portal is None or portal.status == UNINSTALLED:
        raise errors.NotInstalled("no installed portal for this member_id")
    if not agrees:
        log.warning("placement for %s with a wrong APPLICATION_TOKEN", member_id)
        raise errors.VerificationFailed("APPLICATION_TOKEN does not match")
    return portal


class ViewerToken:
    """The viewing user's AUTH_ID as a session credential, renewable once with REFRESH_ID.

    The renewal is shared by every request carrying the same pair (the store's
    `renew_viewer`), so concurrent views spend the refresh token once. A frame without
    REFRESH_ID, or a refused refresh, is the "session expired" card.
    """

    def __init__(self, svc: Services, member_id: str, auth_id: str, refresh_id: str) -> None:
        self._svc = svc
        self._member_id = member_id
        self._refresh_id = refresh_id
        self.access_token = auth_id

    def renew(self) -> Renewed:
        if not self._refresh_id:
            raise errors.SessionExpired("viewer token expired")
        try:
            with observe.portal(self._member_id):
                grant = self._svc.store.renew_viewer(self._member_id, self._refresh_id,
                                                     self._svc.oauth.refresh)
        except (errors.TokenRevoked, errors.OAuthRejected, errors.AppNotInstalled):
            raise errors.SessionExpired("viewer refresh token refused") from None
        self.access_token = grant.access_token
        # The stored endpoint stays the view's: a move is the session's to confirm.
        return Renewed(grant.access_token)


def viewer_session(svc: Services, portal: PortalRoute, auth_id: str, refresh_id: str,
                   deadline: Deadline) -> PortalSession:
    """The session one view reads through: the stored portal, the viewer's token."""
    return PortalSession(
        svc.rest, svc.oauth,
        member_id=portal.member_id,
        endpoint=portal.client_endpoint,
        credential=ViewerToken(svc, portal.member_id, auth_id, refresh_id),
        deadline=deadline,
        remember_move=lambda endpoint, domain: svc.store.update_endpoint(
            portal.member_id, endpoint, domain),
    )


def open_lead(svc: Services, req: PlacementRequest) -> LeadView:
    """Read the lead of one placement POST as its viewer (errors: the designed pages)."""
    frame = req.frame
    portal = stored_portal(svc, frame.member_id, frame.application_token)
    session = viewer_session(svc, portal, frame.auth_id, frame.refresh_id,
                             Deadline.after(svc.settings.view_budget))
    reader = LeadReader(svc.cache, svc.settings.reference_ttl)
    try:
        lead, reference = reader.read(session, lead_id=req.lead_id, lang=frame.lang)
    except errors.ExpiredToken:
        # Still expired after the one renewal. (InvalidToken — not expired but unknown to
        # Bitrix24: forged, or another portal's — stays the "couldn't verify your session"
        # card, 401: threats.md F7.)
        raise errors.SessionExpired("viewer token expired") from None
    if session.endpoint != portal.client_endpoint:
        portal = replace(portal, client_endpoint=session.endpoint)
    return LeadView(portal=portal, lead=lead, reference=reference)
