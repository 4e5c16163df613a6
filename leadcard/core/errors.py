"""The error family every layer raises, and how the web layer answers each one.

    LeadCardError                     base: `code`, HTTP `status`, optional `retry_after`
    ├── BadPayload            400     malformed input; raised before any upstream call
    ├── NotInstalled          403     unknown member_id / app uninstalled on this portal
    ├── VerificationFailed    403     a request could not be tied to the stored portal
    │   └── NotAdmin          403     only a portal administrator's grant may be stored
    ├── LeadNotFound          404     crm.lead.get: "Not found"
    ├── AccessDenied          403     the viewing user may not read the lead
    ├── SessionExpired        401     the viewer's AUTH_ID expired and could not be renewed
    ├── TokenRevoked          401     invalid_grant: the grant is gone, reconnect
    ├── AppNotInstalled       403     NOT_INSTALLED / ERROR_OAUTH / invalid_client
    ├── PaymentRequired       403     PAYMENT_REQUIRED
    ├── InsufficientScope     403     insufficient_scope, METHOD_CONFIRM_WAITING
    ├── UserAccessDenied      403     user_access_error: admin restricted the app
    ├── OAuthRejected         403     the OAuth server refused for another reason
    ├── OAuthUnavailable      503     OAuth server down, slow or not speaking JSON
    ├── PortalTimeout         504     Bitrix24 did not answer within the budget
    ├── PortalError           502     5xx, HTML instead of JSON, unexpected answer
    ├── RateLimited           503     QUERY_LIMIT_EXCEEDED / our own bucket is full
    ├── TooManyAttempts       429     one client or portal repeats an unauthenticated request
    ├── OperationTimeLimit    503     OPERATION_TIME_LIMIT (method budget spent)
    ├── PortalClosed          503     PORTAL_DELETED (on-premise: public part closed)
    ├── PortalMoved           409     the portal moved and the OAuth server did not confirm it
    ├── Busy                  503     another worker holds the refresh lock too long
    └── DatabaseUnavailable   503     the token database cannot be reached

Messages on these exceptions are for logs and never contain secrets; what the user reads
comes from `problems.py`, localized.
"""

from __future__ import annotations


class LeadCardError(Exception):
    code = "internal"
    status = 500
    # Bitrix24's own (error, error_description, HTTP status) when it answered with an error
    # envelope: a definitive answer (the call was not executed), worded by the portal.
    upstream: tuple[str, str, int] | None = None
    # The request went out and no definitive answer came back (a read timeout, a dropped
    # connection, a 5xx): Bitrix24 may have executed it. Decides whether a write is unknown.
    maybe_executed = False

    def __init__(self, detail: str = "", *, retry_after: float | None = None) -> None:
        super().__init__(detail or self.code)
        self.retry_after = retry_after


class BadPayload(LeadCardError):
    """Malformed input from the caller."""

    code = "bad_request"
    status = 400


class NotInstalled(LeadCardError):
    """Portal unknown or uninstalled."""

    code = "not_installed"
    status = 403


class VerificationFailed(LeadCardError):
    """Request not tied to the portal."""

    code = "not_verified"
    status = 403


class NotAdmin(VerificationFailed):
    """A verified user who is not a portal administrator offered their grant (events answer
    it as any other failed verification)."""

    code = "not_admin"
    status = 403


class LeadNotFound(LeadCardError):
    """No lead with that ID."""

    code = "lead_not_found"
    status = 404


class AccessDenied(LeadCardError):
    """The viewer may not read the lead."""

    code = "access_denied"
    status = 403


class SessionExpired(LeadCardError):
    """Viewer token expired."""

    code = "session_expired"
    status = 401


class TokenRevoked(LeadCardError):
    """The OAuth grant is revoked."""

    code = "token_revoked"
    status = 401


class AppNotInstalled(LeadCardError):
    """App removed from portal."""

    code = "app_not_installed"
    status = 403


class PaymentRequired(LeadCardError):
    """Subscription ended."""

    code = "payment_required"
    status = 403


class InsufficientScope(LeadCardError):
    """Scope missing."""

    code = "insufficient_scope"
    status = 403


class UserAccessDenied(LeadCardError):
    """User has no app access."""

    code = "user_access"
    status = 403


class OAuthRejected(LeadCardError):
    """OAuth server refused."""

    code = "oauth_rejected"
    status = 403


class OAuthUnavailable(LeadCardError):
    """OAuth server down."""

    code = "oauth_unavailable"
    status = 503


class PortalTimeout(LeadCardError):
    """Bitrix24 too slow."""

    code = "portal_timeout"
    status = 504


class PortalError(LeadCardError):
    """Bitrix24 failed or spoke non-JSON."""

    code = "portal_error"
    status = 502


class RateLimited(LeadCardError):
    """Request limit reached."""

    code = "rate_limited"
    status = 503


class TooManyAttempts(LeadCardError):
    """Our own abuse limit: too many reconnects or unconfirmed events from one client or for
    one portal; nothing was done (`retry_after` says when to try again)."""

    code = "too_many_attempts"
    status = 429


class OperationTimeLimit(LeadCardError):
    """Method budget spent."""

    code = "operation_limit"
    status = 503


class PortalClosed(LeadCardError):
    """PORTAL_DELETED answered."""

    code = "portal_closed"
    status = 503


class PortalMoved(LeadCardError):
    """Portal moved, not confirmed."""

    code = "portal_moved"
    status = 409


class Busy(LeadCardError):
    """Refresh lock held too long."""

    code = "busy"
    status = 503


class DatabaseUnavailable(LeadCardError):
    """Database down."""

    code = "db_unavailable"
    status = 503


class ExpiredToken(LeadCardError):
    """expired_token: the access token used is past its life; renew once and retry."""

    code = "expired_token"
    status = 401


class InvalidToken(LeadCardError):
    """invalid_token / NO_AUTH_FOUND: Bitrix24 does not accept the token at all."""

    code = "invalid_token"
    status = 401
