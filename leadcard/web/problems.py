"""What the user reads when something goes wrong, per error code, localized.

Texts follow threats.md §4.2 (condition → what the user sees). They are lazy strings:
translated at render time into the viewer's LANG (catalogs in `translations/`).
"""

from __future__ import annotations

from dataclasses import dataclass

from flask_babel import lazy_gettext as _l

from leadcard.core import errors


@dataclass(frozen=True)
class Problem:
    code: str
    status: int
    title: str
    message: str
    action: str | None
    action_url: str | None
    request_id: str


# code → (title, message, action)
TEXTS = {
    "bad_request": (
        _l("This tab was opened with incomplete data"),
        _l("Close the lead and open it again. If this keeps happening, tell your administrator."),
        None,
    ),
    "not_installed": (
        _l("Lead Card is not installed on this Bitrix24"),
        _l("Ask your Bitrix24 administrator to install Lead Card from Bitrix24 Market."),
        "reinstall",
    ),
    "not_verified": (
        _l("We couldn't verify your Bitrix24 session"),
        _l("Close the lead and open it again from your Bitrix24."),
        "reload",
    ),
    "not_admin": (
        _l("Only a Bitrix24 administrator can connect Lead Card"),
        _l("Nothing was changed. Ask an administrator of your Bitrix24 to open Lead Card and connect it."),
        None,
    ),
    "lead_not_found": (
        _l("This lead doesn't exist"),
        _l("It may have been deleted or merged with another lead."),
        None,
    ),
    "access_denied": (
        _l("You don't have access to this lead"),
        _l("Your Bitrix24 access rights don't allow you to view this lead. Ask your administrator if you need it."),
        None,
    ),
    "session_expired": (
        _l("Your session in this tab expired"),
        _l("Reload the tab to continue."),
        "reload",
    ),
    "token_revoked": (
        _l("Lead Card lost its connection to your Bitrix24"),
        _l("An administrator needs to reconnect Lead Card (or reinstall it from Bitrix24 Market)."),
        "reconnect",
    ),
    "app_not_installed": (
        _l("Lead Card is no longer installed on your Bitrix24"),
        _l("Ask your administrator to reinstall it from Bitrix24 Market."),
        "reinstall",
    ),
    "payment_required": (
        _l("The Lead Card subscription has ended"),
        _l("Your administrator can renew it in Bitrix24 Market."),
        None,
    ),
    "insufficient_scope": (
        _l("Lead Card needs more permissions"),
        _l("Ask your administrator to update the app so it may read CRM data."),
        None,
    ),
    "user_access": (
        _l("You don't have access to Lead Card"),
        _l("Your administrator hasn't given you access to this app."),
        None,
    ),
    "oauth_rejected": (
        _l("Bitrix24 didn't accept Lead Card's credentials"),
        _l("Ask your administrator to reinstall Lead Card."),
        "reinstall",
    ),
    "oauth_unavailable": (
        _l("Bitrix24 authorization service is unavailable"),
        _l("Try again in a few minutes."),
        "reload",
    ),
    "portal_timeout": (
        _l("Bitrix24 didn't answer in time"),
        _l("Try again in a moment."),
        "reload",
    ),
    "portal_error": (
        _l("Bitrix24 returned an error"),
        _l("Try again in a minute."),
        "reload",
    ),
    "rate_limited": (
        _l("Bitrix24 is busy"),
        _l("Too many requests right now. Try again in a few seconds."),
        "reload",
    ),
    "too_many_attempts": (
        _l("Too many attempts"),
        _l("Nothing was changed. Wait a minute, then try again."),
        "reload",
    ),
    "operation_limit": (
        _l("Bitrix24 has temporarily limited this operation"),
        _l("Try again later."),
        "reload",
    ),
    "portal_closed": (
        _l("Your Bitrix24 is temporarily closed to external requests"),
        _l("Try again later."),
        "reload",
    ),
    "portal_moved": (
        _l("Your Bitrix24 address changed"),
        _l("Reopen Lead Card from your Bitrix24."),
        "reload",
    ),
    "busy": (
        _l("Lead Card is busy"),
        _l("Try again in a moment."),
        "reload",
    ),
    "db_unavailable": (
        _l("Lead Card is temporarily unavailable"),
        _l("Try again in a minute."),
        "reload",
    ),
    "not_found": (
        _l("Page not found"),
        _l("This address is not part of Lead Card."),
        None,
    ),
    "method_not_allowed": (
        _l("This page can't be opened this way"),
        _l("Open Lead Card from your Bitrix24."),
        None,
    ),
    "too_large": (
        _l("The request is too large"),
        _l("Close the lead and open it again."),
        None,
    ),
    "internal": (
        _l("Something went wrong on our side"),
        _l("Try again. If it keeps happening, contact support with the code below."),
        "reload",
    ),
}

# Internal signals that may escape to the edge: show them as their user-facing cousin.
ALIASES = {"expired_token": "session_expired", "invalid_token": "not_verified",
           "portal_redirect": "portal_moved",
           # The operator's key ring does not fit the stored row: to the user, an outage.
           "undecryptable_token": "db_unavailable"}


def problem_for(exc: errors.LeadCardError | None, *, code: str | None = None,
                status: int | None = None, request_id: str = "",
                reconnect_url: str | None = None) -> Problem:
    key = code or (exc.code if exc is not None else "internal")
    key = ALIASES.get(key, key)
    title, message, action = TEXTS.get(key, TEXTS["internal"])
    return Problem(
        code=key,
        status=status or (exc.status if exc is not None else 500),
        title=str(title),
        message=str(message),
        action=action,
        action_url=reconnect_url if action == "reconnect" else None,
        request_id=request_id,
    )
