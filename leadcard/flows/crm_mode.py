"""Does a portal run CRM without leads ("simple CRM")? Asked only for the app's home page.

In simple mode Bitrix24 has no leads at all, so the lead tab Lead Card adds never shows;
the administrator opening the app should be told why (issue 14). `crm.settings.mode.get`
answers 1 (classic, with leads) or 2 (simple, without leads)
(api-reference/crm/crm-settings-mode-get.md, api-reference/crm/auxiliary/enum/crm-enum-settings-mode.md;
any user may call it, scope `crm`).

The note is a courtesy, never a reason for the page to fail or wait: the call has its own
short deadline, a good answer is cached per portal for a few minutes (the mode changes
rarely, and only by an administrator), and any failure — a refused token, a timeout, an
odd answer, a cache outage — means "no note" (fails open). Views of the card never ask.
"""

from __future__ import annotations

import logging

from leadcard.bitrix24.rest import Deadline
from leadcard.bitrix24.session import FixedToken, PortalSession
from leadcard.flows.services import Services
from leadcard.storage.portals import Portal

log = logging.getLogger(__name__)

METHOD = "crm.settings.mode.get"
CLASSIC, SIMPLE = 1, 2
# The home page must not wait long for a note: at most this for the one upstream call
# (bucket slot included, rest.RestClient bounds both by the deadline).
CHECK_SECONDS = 3.0
# A known answer is reused this long per portal (shared cache; cleared with the portal's
# other entries on install and uninstall, whose keys share the member_id prefix).
CACHE_SECONDS = 300.0


def cache_key(member_id: str) -> str:
    return f"{member_id}:crm_mode"


def is_simple_crm(svc: Services, portal: Portal, access_token: str) -> bool:
    """True when the portal answers that it runs simple CRM (no leads); False when it
    runs classic CRM or when the answer is unknown for any reason."""
    key = cache_key(portal.member_id)
    cached = svc.cache.get(key)  # services' cache fails open: an outage reads as a miss
    if cached in (CLASSIC, SIMPLE):
        return bool(cached == SIMPLE)
    session = PortalSession(svc.rest, svc.oauth, member_id=portal.member_id,
                            endpoint=portal.client_endpoint,
                            credential=FixedToken(access_token),
                            deadline=Deadline.after(CHECK_SECONDS))
    try:
        mode = session.call(METHOD, {})
    except Exception as exc:  # noqa: BLE001 - any failure: no note, the page still renders
        log.info("%s for %s failed (%s); no simple-CRM note", METHOD, portal.member_id,
                 type(exc).__name__)
        return False
    if isinstance(mode, bool) or mode not in (CLASSIC, SIMPLE):
        # Documented as an integer; a string "2" is tolerated, anything else is unknown.
        mode = int(mode) if isinstance(mode, str) and mode.strip() in ("1", "2") else None
    if mode is None:
        log.info("%s for %s answered an unknown mode; no note", METHOD, portal.member_id)
        return False
    svc.cache.set(key, mode, CACHE_SECONDS)  # a failed write is dropped (FailOpenCache)
    return bool(mode == SIMPLE)
