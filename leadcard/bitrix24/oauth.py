"""The Bitrix24 OAuth server: its token endpoint and `app.info` there.

This is the only module that talks to the OAuth server, and it talks only to the configured
`B24_OAUTH_URL` (or the documented regional servers): `client_secret` can never be sent to a
host named by a payload (threats.md R7, T5).

Token calls POST the credentials in the form body. The docs show GET with a query string
(settings/oauth/index.md) but a query string ends up in access logs; the OAuth server accepts
the form body (settings/oauth/index.md, JSSDK CHANGELOG #149).

Why no OAuth library here (Authlib did this before): the two token-endpoint calls Lead Card
makes — `grant_type=refresh_token` and `grant_type=authorization_code`, `client_secret_post`
— are one form POST each, and their answer is Bitrix24's own shape (`member_id`,
`client_endpoint`, an `error` code that decides the grant's fate), which we parse ourselves
anyway. Authlib's client is a requests (or httpx) session, so running it over the one
`http.Transport` the portal calls use would need an adapter that imitates requests'
response objects: more code than the calls it would write, and a second HTTP stack if we
didn't. What we keep from its behaviour: a 5xx or a non-JSON answer is "the server is
failing" (`OAuthUnavailable`), a JSON `error` is the server's verdict, no redirects.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode, urlsplit

from leadcard.bitrix24 import observe
from leadcard.bitrix24.http import ConnectFailed, ReadTimedOut, Transport, TransportError
from leadcard.core import errors
from leadcard.core.config import Settings
from leadcard.core.grant import Grant, portal_domain

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


# OAuth error codes → our error family (settings/oauth/error-codes.md; threats.md F9–F12).
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


_FORM_HEADERS = {
    "Content-Type": "application/x-www-form-urlencoded;charset=UTF-8",
    "Accept": "application/json",
}


class OAuthClient:
    """Token refresh, code exchange and token introspection against the pinned OAuth server."""

    def __init__(self, settings: Settings, transport: Transport,
                 observers: Sequence[observe.Observer] = ()) -> None:
        self._settings = settings
        self._transport = transport
        self.observers = list(observers)  # told of every call (observe.py: REST log, metrics)
        # Counted for tests and the benchmark (how many refreshes really happened).
        self.calls = {"refresh_token": 0, "authorization_code": 0, "app.info": 0}

    @property
    def token_url(self) -> str:
        return self._settings.oauth_token_url

    def refresh(self, refresh_token: str) -> Grant:
        """Spend `refresh_token` once; return the new pair. Never retried here (single-use)."""
        self.calls["refresh_token"] += 1
        return self._token_call({"grant_type": "refresh_token", "refresh_token": refresh_token})

    def exchange_code(self, code: str) -> Grant:
        """Exchange a one-time authorization code (valid 30 s) for a grant."""
        self.calls["authorization_code"] += 1
        return self._token_call({"grant_type": "authorization_code", "code": code})

    def _token_call(self, form: dict[str, str]) -> Grant:
        """One token-endpoint POST (client_secret_post: the secret in the body, to the pinned
        server only); OAuth and transport errors become our family."""
        form = dict(form, client_id=self._settings.client_id,
                    client_secret=self._settings.client_secret)
        status, body = self._post(self.token_url, form, "oauth." + form["grant_type"])
        if status >= 500 or 300 <= status < 400 or not isinstance(body, dict):
            # A failing server, a gateway's page, a redirect (never followed): the grant is fine, try later.
            raise errors.OAuthUnavailable(f"token endpoint answered HTTP {status}")
        if "error" in body:
            raise _error_for(str(body.get("error") or ""))
        return self._grant(body)

    def app_info(self, access_token: str) -> AppInfo:
        """Ask the OAuth server which portal and app `access_token` belongs to.

        The answer, not the request that carried the token, is the source of a portal's
        identity (`member_id`, domain, `client_endpoint`) — threats.md R1/R8; PHPSDK
        `guardValidateCurrentAuthToken`, PYSDK `placement_required`.
        """
        self.calls["app.info"] += 1
        status, body = self._post(self._settings.oauth_rest_url + "app.info",
                                  {"auth": access_token}, "app.info")
        if not isinstance(body, dict) or status >= 500:
            # A 5xx is the OAuth server failing, whatever error code its body names (F18).
            raise errors.OAuthUnavailable(f"app.info answered HTTP {status}")
        if body.get("error") is not None:
            raise _error_for(str(body.get("error")))
        result = body.get("result")
        if not isinstance(result, dict):
            raise errors.OAuthUnavailable(f"app.info answered HTTP {status}")
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

    def _post(self, url: str, form: dict[str, str], what: str) -> tuple[int, Any]:
        """POST `form` to the OAuth server; (status, parsed JSON or None when not JSON).
        `what` names the call for errors and the observers."""
        started, clock = time.time(), time.monotonic()

        def report(status: int | None, code: str, body: Any, raw: bytes = b"") -> None:
            if not self.observers:
                return
            member_id = observe.current_portal() or _named_portal(body)
            observe.notify(self.observers, observe.UpstreamCall(
                "oauth", member_id, what, form, status, code, started,
                time.monotonic() - clock, raw))

        try:
            reply = self._transport.post(
                url, urlencode(form).encode(), _FORM_HEADERS,
                connect_timeout=self._settings.connect_timeout,
                read_timeout=self._settings.read_timeout,
            )
        except TransportError as exc:
            report(None, observe.READ_TIMEOUT if isinstance(exc, ReadTimedOut)
                   else observe.UNREACHABLE if isinstance(exc, ConnectFailed)
                   else observe.TRANSPORT_FAILED, None)
            raise errors.OAuthUnavailable(f"{what} failed: {type(exc).__name__}") from None
        try:
            body = json.loads(reply.body)
        except ValueError:
            body = None
        report(reply.status, observe.error_code_of(body), body, reply.body)
        return reply.status, body

    def _grant(self, token: dict[str, Any]) -> Grant:
        try:
            endpoint = str(token["client_endpoint"])
            access, refresh = str(token["access_token"]), str(token["refresh_token"])
            member_id = str(token["member_id"])
        except KeyError as exc:
            raise errors.OAuthUnavailable(f"token response lacks {exc.args[0]}") from None
        self._check_endpoint(endpoint)
        # `expires` is absent from some responses (settings/oauth/index.md): derive it.
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


def _named_portal(body: Any) -> str | None:
    """The `member_id` a token answer or an `app.info` answer names, if any."""
    if not isinstance(body, dict):
        return None
    result = body.get("result")
    install = result.get("install") if isinstance(result, dict) else None
    named = body.get("member_id") or (install.get("member_id") if isinstance(install, dict)
                                      else None)
    return str(named) if named else None


def _int_or_none(value: object) -> int | None:
    try:
        return int(value)  # type: ignore[call-overload]  # anything: that is the point
    except (TypeError, ValueError):
        return None
