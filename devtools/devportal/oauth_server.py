"""The simulated Bitrix24 OAuth server (``oauth.bitrix.info`` stand-in).

Owns ``/oauth/token/`` (grant_type=refresh_token and authorization_code, GET with a
query string as documented in RD settings/oauth/index.md, or POST with a form body
as JSSDK found the real server accepts) and the OAuth-server REST call
``/rest/app.info`` that apps use to verify a token (api-reference/events/safe-event-handlers.md).  The ``/_sim/``
control API is mounted on this server too (see ``control``).

Rotation rule, as the real server: a token request is processed to the end
whether or not its client is still there.  A client that gave up (timeout) or
died while the server was slow has spent its refresh token all the same: the
pair rotates and the answer is lost.  The request is still counted in
``token_aborted`` as soon as the server sees the socket closed, so tests can
tell when a client vanished.
"""

from __future__ import annotations

import time
from typing import Any

from flask import Flask, Response, request

from .envelope import OAUTH_ERRORS, RestError, iso, json_response, time_object
from .faults import client_gone, drop_connection, wait_unless_gone
from .params import parse_php_pairs
from .state import OAuthError, World


def _oauth_error(code: str, status: int | None = None, description: str | None = None) -> Response:
    default_status, default_desc = OAUTH_ERRORS.get(code, (400, None))
    body: dict[str, Any] = {"error": code}
    desc = description if description is not None else default_desc
    if desc is not None:
        body["error_description"] = desc
    return json_response(body, status if status is not None else default_status)


def _aborted() -> Response:
    # Nobody will read this: the client is gone.  The status only feeds the counters.
    request.environ["devportal.aborted"] = True
    return Response("", status=499)


def _fault_response(fault, oauth: bool) -> Response:
    r = fault.resolved(oauth=oauth)
    if fault.kind == "html":
        return Response(r["body"], status=r["status"], mimetype="text/html")
    return json_response(r["body"], r["status"])


def _serve_slowly(world: World, delay: float, environ: dict) -> bool:
    """Take ``delay`` seconds over a token request; True if its client went away meanwhile
    (counted at once in ``token_aborted``). The request goes on either way."""
    started = time.monotonic()
    if delay <= 0 or wait_unless_gone(delay, environ):
        return False
    with world.lock:
        world.oauth_counters["token_aborted"] += 1
    time.sleep(max(0.0, delay - (time.monotonic() - started)))
    return True


def _params() -> dict:
    params = parse_php_pairs(request.args.items(multi=True))
    if request.is_json:
        body = request.get_json(silent=True)
        if isinstance(body, dict):
            params.update(body)
    else:
        params.update(parse_php_pairs(request.form.items(multi=True)))
    return params


def create_oauth_app(world: World) -> Flask:
    app = Flask("devtools.devportal.oauth")
    app.config["JSON_SORT_KEYS"] = False

    @app.route("/oauth/token/", methods=["GET", "POST"])
    @app.route("/oauth/token", methods=["GET", "POST"])
    def token() -> Response:
        environ = request.environ
        environ["devportal.rest_method"] = "token"
        params = _params()  # reads the whole body first, so only EOF can follow
        grant_type = str(params.get("grant_type") or "")
        with world.lock:
            world.oauth_counters["token"][grant_type or "(none)"] += 1

        fault = world.faults.take("oauth", "token")
        if fault is not None and fault.kind == "drop":
            drop_connection(environ)
            return Response("", status=500)
        delay = float(world.knob("oauth_latency")) + (fault.seconds if fault and fault.kind == "hang" else 0.0)
        gone = _serve_slowly(world, delay, environ)
        if fault is not None and fault.kind in ("error", "html"):
            return _aborted() if gone else _fault_response(fault, oauth=True)

        app_reg = world.app
        if str(params.get("client_id") or "") != app_reg.client_id:
            # PYSDK BitrixOauthWrongClient: wrong client_id -> {"error":"wrong_client"} with HTTP 200.
            return _oauth_error("wrong_client")
        if str(params.get("client_secret") or "") != app_reg.client_secret:
            return _oauth_error("invalid_client")
        try:
            with world.lock:
                if not gone and client_gone(environ):
                    gone = True
                    world.oauth_counters["token_aborted"] += 1
                if grant_type == "refresh_token":
                    refresh = params.get("refresh_token")
                    if not refresh:
                        return _oauth_error("invalid_request")
                    grant = world.refresh(str(refresh))
                    world.oauth_counters["token_rotated"] += 1
                elif grant_type == "authorization_code":
                    code = params.get("code")
                    if not code:
                        return _oauth_error("invalid_request", description='No "code" parameter found')
                    grant = world.redeem_code(str(code))
                elif not grant_type:
                    return _oauth_error("invalid_request", description="The grant type was not specified in the request")
                else:
                    return _oauth_error("unsupported_grant_type")
                body = world.token_response(grant)
        except OAuthError as err:
            return _aborted() if gone else _oauth_error(err.code, err.status, err.description)
        return _aborted() if gone else json_response(body)

    @app.route("/rest/<path:method>", methods=["GET", "POST"])
    def oauth_rest(method: str) -> Response:
        name = method.strip("/").lower()
        if name.endswith(".json"):
            name = name[:-5]
        environ = request.environ
        environ["devportal.rest_method"] = name
        start = time.time()
        if name != "app.info":
            return json_response(RestError("ERROR_METHOD_NOT_FOUND").body(), 404)
        with world.lock:
            world.oauth_counters["app_info"] += 1
        params = _params()
        fault = world.faults.take("oauth", "app.info")
        if fault is not None and fault.kind == "drop":
            drop_connection(environ)
            return Response("", status=500)
        delay = float(world.knob("oauth_latency")) + (fault.seconds if fault and fault.kind == "hang" else 0.0)
        if delay > 0:
            time.sleep(delay)
        if fault is not None and fault.kind in ("error", "html"):
            return _fault_response(fault, oauth=False)
        try:
            # expired -> 401 expired_token, unknown/revoked -> 401 invalid_token.  (PYSDK
            # notes the real server may also answer invalid_client for token-like junk.)
            grant = world.check_access(str(params.get("auth") or ""), None)
        except RestError as err:
            return json_response(err.body(), err.status)
        with world.lock:
            p = world.portal(grant.portal)
            result = {
                # Shape: PYSDK tests/unit/credentials/test_oauth_event_data.py and
                # B24AppInfoResult (expires is an ISO string there, user_id an int).
                "client_id": world.app.client_id,
                "scope": grant.scope,
                "expires": iso(grant.expires_at, 0),
                "install": {
                    "installed": p.installed,
                    "version": world.app.version,
                    "status": world.app.status,
                    "scope": world.app.scope,
                    "domain": p.domain,
                    "uri": p.base_url,
                    "client_endpoint": p.client_endpoint,
                    "member_id": p.member_id,
                    "member_type": "user",
                },
                "user_id": grant.user_id,
            }
        return json_response({"result": result, "time": time_object(start, time.time(), 0)})

    @app.route("/")
    def home() -> Response:
        rows = "".join(
            f'<li><a href="{p.base_url}/">{p.name}: {p.base_url}</a> (member_id {p.member_id})</li>'
            for p in world.portals.values())
        return Response(f"<!doctype html><title>devportal OAuth server</title>"
                        f"<h1>Simulated Bitrix24 OAuth server</h1><ul>{rows}</ul>"
                        f'<p><a href="/_sim/stats">/_sim/stats</a></p>', mimetype="text/html")

    return app
