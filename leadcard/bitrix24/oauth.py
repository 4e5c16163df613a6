"""The Bitrix24 OAuth server: token endpoint (via Authlib) and `app.info` there.

This is the only module that talks to the OAuth server, and it talks only to the configured
`B24_OAUTH_URL` (or the documented regional servers): `client_secret` can never be sent to a
host named by a payload (security.md R7, T5).

Token calls POST the credentials in the form body. The docs show GET with a query string
(settings/oauth/index.md) but a query string ends up in access logs; the OAuth server accepts
the form body (protocol.md b.2, JSSDK CHANGELOG #149), which is what Authlib sends.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Callable
from urllib.parse import urlsplit

import requests
from authlib.integrations.requests_client import OAuth2Session
from authlib.integrations.base_client.errors import OAuthError

from leadcard.core import errors
from leadcard.core.config import Settings
from leadcard.core.grant import Grant, portal_domain
from leadcard.bitrix24.http import SessionPool

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class AppInfo:
    """What the OAuth server says about an access token (app.info on the OAuth server)."""

    client_id: str
    member_id: str
    domain: str
    client_endpoint: str
    scope: str
    status: str
    installed: bool
    user_id: int | None


# OAuth error codes → our error family (protocol.md b.6, c.5; security.md F9–F12).
_OAUTH_ERRORS: dict[str, type[errors.LeadCardError]] = {
    "invalid_grant": errors.TokenRevoked,
    "bad_verification_code": errors.TokenRevoked,
    "invalid_token": errors.TokenRevoked,
    "expired_token": errors.TokenRevoked,
    "payment_required": errors.PaymentRequired,
    "not_installed": errors.AppNotInstalled,
    "error_oauth": errors.AppNotInstalled,
    "application_not_found": errors.AppNotInstalled,
    "invalid_client": errors.AppNotInstalled,
    "wrong_client": errors.AppNotInstalled,
    "no_auth_found": errors.TokenRevoked,
    # The server failing, not refusing (RFC 6749 §5.2 server_error/temporarily_unavailable;
    # Bitrix24's INTERNAL_SERVER_ERROR): the grant is fine, try again later.
    "internal_server_error": errors.OAuthUnavailable,
    "server_error": errors.OAuthUnavailable,
    "temporarily_unavailable": errors.OAuthUnavailable,
}


def _error_for(code: str) -> errors.LeadCardError:
    cls = _OAUTH_ERRORS.get(code.lower(), errors.OAuthRejected)
    return cls(f"OAuth server refused: {code}")


class OAuthClient:
    """Token refresh, code exchange and token introspection against the pinned OAuth server."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._timeout = (settings.connect_timeout, settings.read_timeout)
        self._sessions = SessionPool(
            lambda: OAuth2Session(
                client_id=settings.client_id,
                client_secret=settings.client_secret,
                token_endpoint_auth_method="client_secret_post",
            )
        )
        # app.info is plain REST on the OAuth server: a plain session (OAuth2Session would
        # insist on a bearer token of its own).
        self._plain = SessionPool(requests.Session)
        # Counted for tests and the benchmark (how many refreshes really happened).
        self.calls = {"refresh_token": 0, "authorization_code": 0, "app.info": 0}

    @property
    def token_url(self) -> str:
        return self._settings.oauth_token_url

    def refresh(self, refresh_token: str) -> Grant:
        """Spend `refresh_token` once; return the new pair. Never retried here (single-use)."""
        self.calls["refresh_token"] += 1
        return self._token_call(
            lambda session: session.refresh_token(
                self.token_url, refresh_token=refresh_token,
                timeout=self._timeout, allow_redirects=False,
            )
        )

    def exchange_code(self, code: str) -> Grant:
        """Exchange a one-time authorization code (valid 30 s) for a grant."""
        self.calls["authorization_code"] += 1
        return self._token_call(
            lambda session: session.fetch_token(
                self.token_url, grant_type="authorization_code", code=code,
                timeout=self._timeout, allow_redirects=False,
            )
        )

    def _token_call(self, request: Callable[[OAuth2Session], dict]) -> Grant:
        """Run one token-endpoint request; map OAuth and transport errors to our family."""
        try:
            token = request(self._sessions.get())  # type: ignore[arg-type]
        except OAuthError as exc:
            raise _error_for(exc.error or "") from None
        except (requests.RequestException, ValueError) as exc:
            raise errors.OAuthUnavailable(f"token endpoint failed: {type(exc).__name__}") from None
        return self._grant(dict(token))

    def app_info(self, access_token: str) -> AppInfo:
        """Ask the OAuth server which portal and app `access_token` belongs to.

        The answer, not the request that carried the token, is the source of a portal's
        identity (`member_id`, domain, `client_endpoint`) — security.md R1/R8; PHPSDK
        `guardValidateCurrentAuthToken`, PYSDK `placement_required`.
        """
        self.calls["app.info"] += 1
        session = self._plain.get()
        try:
            response = session.post(
                self._settings.oauth_rest_url + "app.info",
                data={"auth": access_token},
                timeout=self._timeout,
                allow_redirects=False,
            )
            body = response.json()
        except (requests.RequestException, ValueError) as exc:
            raise errors.OAuthUnavailable(f"app.info failed: {type(exc).__name__}") from None
        if not isinstance(body, dict) or response.status_code >= 500:
            # A 5xx is the OAuth server failing, whatever error code its body names (F18).
            raise errors.OAuthUnavailable(f"app.info answered HTTP {response.status_code}")
        if body.get("error") is not None:
            raise _error_for(str(body.get("error")))
        result = body.get("result")
        if not isinstance(result, dict):
            raise errors.OAuthUnavailable(f"app.info answered HTTP {response.status_code}")
        install = result.get("install") or {}
        endpoint = str(install.get("client_endpoint") or "")
        self._check_endpoint(endpoint)
        return AppInfo(
            client_id=str(result.get("client_id") or ""),
            member_id=str(install.get("member_id") or ""),
            domain=str(install.get("domain") or portal_domain(endpoint)),
            client_endpoint=endpoint,
            scope=str(install.get("scope") or result.get("scope") or ""),
            status=str(install.get("status") or ""),
            installed=bool(install.get("installed")),
            user_id=_int_or_none(result.get("user_id")),
        )

    def _grant(self, token: dict) -> Grant:
        try:
            endpoint = str(token["client_endpoint"])
            access, refresh = str(token["access_token"]), str(token["refresh_token"])
            member_id = str(token["member_id"])
        except KeyError as exc:
            raise errors.OAuthUnavailable(f"token response lacks {exc.args[0]}") from None
        self._check_endpoint(endpoint)
        # `expires` is absent from some responses (protocol.md b.3): derive it.
        expires = token.get("expires") or (time.time() + float(token.get("expires_in") or 3600))
        return Grant(
            access_token=access,
            refresh_token=refresh,
            expires_at=float(expires),
            member_id=member_id,
            client_endpoint=endpoint,
            server_endpoint=str(token.get("server_endpoint") or ""),
            scope=str(token.get("scope") or ""),
            status=str(token.get("status") or ""),
            user_id=_int_or_none(token.get("user_id")),
        )

    def _check_endpoint(self, endpoint: str) -> None:
        parts = urlsplit(endpoint)
        allowed = ("https",) + (("http",) if self._settings.allow_http else ())
        if parts.scheme not in allowed or not parts.hostname:
            raise errors.OAuthRejected("OAuth server named an unusable client_endpoint")


def _int_or_none(value: object) -> int | None:
    try:
        return int(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
