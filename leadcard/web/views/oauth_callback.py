"""Reconnect through the authorization-code flow: GET /reconnect and GET /oauth/callback.

Used when the stored grant is revoked (`invalid_grant`). `state` is single-use and expires
(settings/oauth/index.md: the code itself lives 30 seconds).
"""

from urllib.parse import urlencode

from flask import Blueprint, redirect, render_template, request
from flask.typing import ResponseReturnValue

from leadcard.core import errors
from leadcard.core.grant import portal_origin
from leadcard.flows import lifecycle, services
from leadcard.web import security

bp = Blueprint("oauth_callback", __name__)


@bp.get("/reconnect")
def reconnect() -> ResponseReturnValue:
    svc = services.current()
    member_id = request.args.get("member_id", "")
    portal = svc.store.get(member_id) if member_id.isalnum() else None
    if portal is None or portal.status == "uninstalled":
        raise errors.NotInstalled("reconnect for an unknown portal")
    # Anonymous, and each call stores a row: metered per portal and per client (attempts.py).
    svc.attempts.check("reconnect", member_id, request.remote_addr or "")
    state = svc.store.new_oauth_state(member_id)
    query = urlencode({"client_id": svc.settings.client_id, "state": state})
    return redirect(f"{portal_origin(portal.client_endpoint)}/oauth/authorize/?{query}", 302)


@bp.get("/oauth/callback")
def callback() -> ResponseReturnValue:
    svc = services.current()
    code = request.args.get("code", "")
    state = request.args.get("state", "")
    if not code or not state or len(code) > 256 or len(state) > 256:
        raise errors.BadPayload("code or state missing")
    member_id = svc.store.consume_oauth_state(state)
    if member_id is None or member_id != request.args.get("member_id"):
        raise errors.VerificationFailed("unknown, used or expired state")
    grant = svc.oauth.exchange_code(code)  # always at the pinned OAuth server
    if grant.member_id != member_id:
        raise errors.VerificationFailed("code was issued for another portal")
    # Anyone may start this flow and any portal user may authorize it: the code's grant
    # is stored only if it is an administrator's, as at install (a sales rep's grant would
    # make app-level work run with a sales rep's rights).
    lifecycle.require_admin(svc, grant.member_id, grant.client_endpoint, grant.access_token)
    svc.store.save_grant(grant)
    security.set_frame_origin(portal_origin(grant.client_endpoint))
    return render_template("home.html", portal=svc.store.get(member_id), reconnected=True), 200
