"""Reconnect through the authorization-code flow: GET /reconnect and GET /oauth/callback
(the story is `flows/reconnect.py`)."""

from flask import Blueprint, redirect, render_template, request
from flask.typing import ResponseReturnValue

from leadcard.core.grant import portal_origin
from leadcard.flows import reconnect, services
from leadcard.web import security

bp = Blueprint("oauth_callback", __name__)


@bp.get("/reconnect")
def start() -> ResponseReturnValue:
    url = reconnect.begin(services.current(), request.args.get("member_id", ""),
                          request.remote_addr or "")
    return redirect(url, 302)


@bp.get("/oauth/callback")
def callback() -> ResponseReturnValue:
    portal = reconnect.complete(services.current(), request.args.get("code", ""),
                                request.args.get("state", ""), request.args.get("member_id", ""))
    security.set_frame_origin(portal_origin(portal.client_endpoint))
    return render_template("home.html", portal=portal, reconnected=True), 200
