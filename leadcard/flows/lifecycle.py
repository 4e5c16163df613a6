"""Install, reinstall and uninstall: who may change a stored portal, and how.

A portal's identity (member_id, domain, REST endpoint) is taken only from the OAuth
server's answer about the token that came with the request — never from `DOMAIN`,
`SERVER_ENDPOINT` or `auth[client_endpoint]` in the POST (threats.md R1, R8, T2). Handler
bindings are made idempotent by reading the current ones first: whether Bitrix24 rejects a
duplicate bind is undocumented (api-reference/widgets/placement-bind.md and
api-reference/events/event-bind.md say nothing of it).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

from leadcard.bitrix24.oauth import AppInfo
from leadcard.bitrix24.payloads import LEAD_TAB, Event, FrameContext
from leadcard.bitrix24.rest import Deadline
from leadcard.bitrix24.session import FixedToken, PortalSession
from leadcard.core import errors
from leadcard.core.grant import Grant
from leadcard.flows.services import Services
from leadcard.storage.portals import ACTIVE, UNINSTALLED, Portal

log = logging.getLogger(__name__)

# Tab caption per language for placement.bind LANG_ALL (api-reference/widgets/placement-bind.md).
TAB_TITLES = {
    "en": "Lead Card",
    "ru": "Карточка лида",
    "de": "Lead-Karte",
    "la": "Ficha del lead",
    "es": "Ficha del lead",
}
UNINSTALL_EVENT = "ONAPPUNINSTALL"


@dataclass(frozen=True)
class InstallResult:
    ok: bool
    portal_domain: str
    placement_bound: bool
    event_bound: bool


def verify_token(svc: Services, access_token: str, member_id: str) -> AppInfo:
    """Ask the OAuth server whose token this is; it must be ours and name `member_id`."""
    try:
        info = svc.oauth.app_info(access_token)
    except (errors.TokenRevoked, errors.AppNotInstalled, errors.OAuthRejected):
        raise errors.VerificationFailed("the OAuth server does not accept this token") from None
    if info.client_id != svc.settings.client_id or info.member_id != member_id:
        log.warning("token does not vouch for member_id %s", member_id)
        raise errors.VerificationFailed("token belongs to another app or portal")
    return info


def is_admin(svc: Services, member_id: str, client_endpoint: str, access_token: str) -> bool:
    """Does a verified token belong to a portal administrator? (`profile` answers ADMIN.)"""
    # A token not yet tied to a stored portal: not renewable, and a redirect is refused
    # rather than followed (there is no stored portal to move yet).
    session = PortalSession(svc.rest, svc.oauth, member_id=member_id, endpoint=client_endpoint,
                            credential=FixedToken(access_token),
                            deadline=Deadline.after(svc.settings.view_budget))
    profile = session.call("profile", {})
    return isinstance(profile, dict) and profile.get("ADMIN") is True


def require_admin(svc: Services, member_id: str, client_endpoint: str, access_token: str) -> None:
    """Only a portal administrator's token may become the stored grant or set the
    application_token: every user who opens the app sees their own AUTH_ID in the frame
    POST, and any user can walk through the reconnect flow, so "the OAuth server vouches
    for it" alone would let any user replace them (threats.md T3, §2.4 (b))."""
    if not is_admin(svc, member_id, client_endpoint, access_token):
        log.warning("grant for %s offered by a non-administrator; not stored", member_id)
        raise errors.NotAdmin("the token's user is not a portal administrator")


def grant_from_frame(svc: Services, frame: FrameContext, info: AppInfo) -> Grant:
    return vouched_grant(svc, info, frame.auth_id, frame.refresh_id, frame.auth_expires)


def vouched_grant(svc: Services, info: AppInfo, access: str, refresh: str, expires_in: float) -> Grant:
    """A grant whose portal identity comes from the OAuth server's answer (`info`) only."""
    return Grant(
        access_token=access,
        refresh_token=refresh,
        expires_at=time.time() + expires_in,
        member_id=info.member_id,
        client_endpoint=info.client_endpoint,
        server_endpoint=svc.settings.oauth_rest_url,
        scope=info.scope,
        status=info.status,
        user_id=info.user_id,
    )


def install(svc: Services, frame: FrameContext) -> InstallResult:
    """The installer POST: confirm, store the grant, bind the tab and the uninstall event."""
    if not frame.refresh_id:
        raise errors.BadPayload("REFRESH_ID missing")
    info = verify_token(svc, frame.auth_id, frame.member_id)
    require_admin(svc, info.member_id, info.client_endpoint, frame.auth_id)
    existing = svc.store.get(info.member_id)
    # APPLICATION_TOKEN from the frame is only a first value; ONAPPINSTALL (whose token the
    # OAuth server vouches for) is authoritative and overwrites it.
    seed_app_token = None
    if frame.application_token and (existing is None or not svc.store.has_application_token(info.member_id)):
        seed_app_token = frame.application_token
    svc.store.save_grant(
        grant_from_frame(svc, frame, info),
        installed_by=info.user_id,
        license_status=frame.license_status or info.status,
        language=frame.lang,
        application_token=seed_app_token,
    )
    svc.cache.delete_prefix(f"{info.member_id}:")
    placement_ok, event_ok = bind_handlers(svc, info.member_id)
    return InstallResult(
        ok=placement_ok and event_ok,
        portal_domain=info.domain,
        placement_bound=placement_ok,
        event_bound=event_ok,
    )


def bind_handlers(svc: Services, member_id: str) -> tuple[bool, bool]:
    """Make sure the lead tab and ONAPPUNINSTALL point at us, exactly once each."""
    session = svc.portal_api.session(member_id, Deadline.after(svc.settings.view_budget * 2))
    placement_url = svc.settings.url_for_handler("/placement")
    events_url = svc.settings.url_for_handler("/events")

    _ensure_bound(
        session, listing="placement.get", bind="placement.bind",
        key="placement", name=LEAD_TAB, handler=placement_url,
        params={
            "PLACEMENT": LEAD_TAB,
            "HANDLER": placement_url,
            "TITLE": TAB_TITLES["en"],
            "LANG_ALL": {lang: {"TITLE": title} for lang, title in TAB_TITLES.items()},
        },
    )
    _ensure_bound(
        session, listing="event.get", bind="event.bind",
        key="event", name=UNINSTALL_EVENT, handler=events_url,
        params={"event": UNINSTALL_EVENT, "handler": events_url},
    )
    svc.store.set_bindings(member_id, placement=True, events=True)
    return True, True


def _ensure_bound(session: PortalSession, *, listing: str, bind: str, key: str, name: str,
                  handler: str, params: dict) -> None:
    """Bind `name` → `handler` unless `listing` already shows exactly that binding."""
    current = session.call(listing, {}) or []
    if any(
        isinstance(item, dict) and str(item.get(key, "")).upper() == name and item.get("handler") == handler
        for item in current
    ):
        return
    session.call(bind, params, idempotent=False)


# Outcomes the OAuth server confirmed, after which the same event can only ever be a no-op
# (event_log.py). Not recorded: "kept: not confirmed" (a later delivery may be confirmed), and
# outcomes that rest on the application_token alone ("duplicate", "already uninstalled"):
# every portal user can see that token, and a row per forged body would let them fill the table.
FINAL_OUTCOMES = frozenset({"installed", "updated", "application_token stored", "uninstalled"})


def handle_event(svc: Services, event: Event, body_sha256: str, client: str) -> str:
    """Apply one event from address ``client``, unless exactly this body was applied before;
    return a short outcome for the log and the response."""
    if svc.events.seen(body_sha256):
        return "repeat"
    outcome = _apply_event(svc, event, client)
    if outcome in FINAL_OUTCOMES:
        svc.events.record(body_sha256, event.member_id, event.name)
    return outcome


def _apply_event(svc: Services, event: Event, client: str) -> str:
    """Verify and apply one event (raises VerificationFailed for a forgery)."""
    portal = svc.store.get(event.member_id)
    if event.name == "ONAPPINSTALL":
        return _on_install(svc, event, portal)
    if portal is None or not svc.store.application_token_matches(
        event.member_id, event.application_token
    ):
        raise errors.VerificationFailed("unknown portal or wrong application_token")
    if event.name == UNINSTALL_EVENT:
        if portal.status == UNINSTALLED and not event.clean:
            return "already uninstalled"
        # Asking the OAuth server costs a call per event, and any portal user can send
        # these: metered per portal and per sender (attempts.py).
        svc.attempts.check("uninstall", event.member_id, client)
        if _still_installed(svc, event.member_id):
            # application_token is visible to every portal user (it rides along in each
            # placement POST), so a matching token alone does not prove an uninstall
            # (threats.md T3, scenario 25). The OAuth server still accepts our grant.
            log.warning("ONAPPUNINSTALL for %s not confirmed by the OAuth server; kept", event.member_id)
            return "kept: not confirmed"
        svc.store.uninstall(event.member_id, clean=event.clean)
        svc.cache.delete_prefix(f"{event.member_id}:")
        log.info("portal %s uninstalled (clean=%s)", event.member_id, event.clean)
        return "uninstalled"
    return "ignored"


def _on_install(svc: Services, event: Event, portal: Portal | None) -> str:
    """ONAPPINSTALL: the installing user's grant and the application_token.

    Accepted only when the OAuth server vouches for the event's access token for this
    member_id and our client_id; redelivery of the same event is harmless (same values).
    """
    auth = event.auth
    access = str(auth.get("access_token") or "")
    # refresh_token is in the docs' example but not in the PHP SDK's captured fixture
    # (api-reference/common/events/on-app-install.md): without it the event can only confirm the application_token.
    refresh = str(auth.get("refresh_token") or "")
    if not access or not event.application_token:
        raise errors.VerificationFailed("ONAPPINSTALL without access or application token")
    if (
        portal is not None
        and portal.status == "active"
        and portal.has_tokens
        and svc.store.application_token_matches(event.member_id, event.application_token)
    ):
        # Redelivery (or the install POST already stored a grant): keep the stored pair,
        # which may have been rotated since this event's refresh token was issued.
        return "duplicate"
    info = verify_token(svc, access, event.member_id)
    if not info.installed:
        # A genuine administrator's token on a portal where the app is not (or no longer)
        # installed: the event is not Bitrix24's, and its application_token is the
        # caller's choice (app.info's install.installed; api-reference/common/events/
        # on-app-install.md).
        raise errors.VerificationFailed("the OAuth server says the app is not installed")
    require_admin(svc, info.member_id, info.client_endpoint, access)
    if not refresh:
        if portal is None:
            log.warning("ONAPPINSTALL for unknown %s without refresh_token; waiting for install", event.member_id)
            return "ignored: no grant"
        svc.store.set_application_token(event.member_id, event.application_token)
        return "application_token stored"
    grant = vouched_grant(svc, info, access, refresh, _int(auth.get("expires_in"), 3600))
    svc.store.save_grant(
        grant,
        installed_by=info.user_id,
        license_status=str(auth.get("status") or "")[:1] or info.status,
        language=str(event.data.get("LANGUAGE_ID") or "")[:8],
        application_token=event.application_token,
    )
    return "installed" if portal is None or portal.status == UNINSTALLED else "updated"


def _int(value: object, default: int) -> int:
    try:
        return int(value)  # type: ignore[call-overload]  # anything: that is the point
    except (TypeError, ValueError):
        return default


def _still_installed(svc: Services, member_id: str) -> bool:
    """Should an ONAPPUNINSTALL with a matching application_token be disbelieved?

    True when the OAuth server still accepts our stored grant — or when it cannot be asked
    (it is down, or our grant is already refused and awaits re-authorization): the
    application_token alone is visible to every portal user, so an unconfirmed uninstall
    keeps the portal. A genuine uninstall in that state costs only a stale row (Bitrix24
    has already removed the tab); a forged one would break every user's card.
    """
    portal = svc.store.get(member_id)
    if portal is None or portal.status != ACTIVE:
        return portal is not None
    try:
        # app.info says expired_token and invalid_token alike: an access token that is
        # merely past its life (clock skew) is no proof of uninstall. The session renews
        # once; only the refresh being refused (invalid_grant / NOT_INSTALLED) is.
        session = svc.portal_api.session(member_id, Deadline.after(svc.settings.view_budget))
        info = session.app_info()
    except (errors.TokenRevoked, errors.AppNotInstalled, errors.NotInstalled,
            errors.PaymentRequired, errors.OAuthRejected):
        return False
    except (errors.OAuthUnavailable, errors.Busy):
        return True
    return info.installed and info.member_id == member_id
