"""One lead-tab view: tie the POST to a stored portal, read the lead as the viewing user.

- `member_id` selects the stored portal; REST goes only to its stored `client_endpoint`,
  whatever `DOMAIN` says (security.md R1, T1).
- A posted `APPLICATION_TOKEN` must equal the stored one (constant time); older portals
  don't post it (protocol.md a.2 caveat), so its absence is not an error.
- An expired `AUTH_ID` is renewed once with `REFRESH_ID`, single-flight across processes
  for the same pair (TokenStore.renew_viewer); the renewed grant must name the same portal.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from typing import Any

from leadcard.core import errors
from leadcard.bitrix24.rest import Deadline, PortalRedirect
from leadcard.card.model import ReferenceData
from leadcard.flows.lead_reader import LeadReader
from leadcard.flows.portal_api import confirm_move
from leadcard.bitrix24.payloads import PlacementRequest
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


def open_lead(svc: Services, req: PlacementRequest) -> LeadView:
    frame = req.frame
    portal = stored_portal(svc, frame.member_id, frame.application_token)
    reader = LeadReader(svc.rest, svc.cache, svc.settings.reference_ttl)
    deadline = Deadline.after(svc.settings.view_budget)

    def read(token: str, endpoint: str) -> tuple[dict[str, Any], ReferenceData]:
        return reader.read(member_id=portal.member_id, endpoint=endpoint, access_token=token,
                           lead_id=req.lead_id, lang=frame.lang, deadline=deadline)

    token, endpoint = frame.auth_id, portal.client_endpoint
    for attempt in (1, 2):
        try:
            lead, reference = read(token, endpoint)
            return LeadView(portal=portal, lead=lead, reference=reference)
        except errors.ExpiredToken:
            if attempt == 2 or not frame.refresh_id:
                raise errors.SessionExpired("viewer token expired") from None
            token = _renew_viewer(svc, portal.member_id, frame.refresh_id)
        except errors.InvalidToken:
            # Not expired but unknown to Bitrix24 (forged, or from another portal): the
            # "couldn't verify your session" card, 401 (security.md F7).
            raise
        except PortalRedirect:
            if attempt == 2:
                raise errors.PortalMoved("portal redirected twice") from None
            endpoint = confirm_move(svc.store, svc.oauth, portal.member_id,
                                    portal.client_endpoint, token)
            portal = replace(portal, client_endpoint=endpoint)
    raise errors.PortalError("unreachable")  # pragma: no cover - loop always returns/raises


def _renew_viewer(svc: Services, member_id: str, refresh_id: str) -> str:
    try:
        grant = svc.store.renew_viewer(member_id, refresh_id, svc.oauth.refresh)
    except (errors.TokenRevoked, errors.OAuthRejected, errors.AppNotInstalled):
        raise errors.SessionExpired("viewer refresh token refused") from None
    return grant.access_token
