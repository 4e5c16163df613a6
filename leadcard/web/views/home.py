"""GET|POST / — the app's own page, opened from the Bitrix24 app menu: connection status."""

from flask import Blueprint, g, render_template, request

from leadcard.bitrix24.payloads import parse_frame
from leadcard.core import errors
from leadcard.core.grant import portal_origin
from leadcard.flows import crm_mode, lifecycle, services
from leadcard.storage.portals import ACTIVE
from leadcard.web import security

bp = Blueprint("home", __name__)


@bp.route("/", methods=["GET", "POST"])
def home() -> tuple[str, int]:
    if request.method == "GET" or "member_id" not in request.form:
        return render_template("home.html", portal=None), 200
    frame = parse_frame(request.args, request.form)
    g.lang = frame.lang
    svc = services.current()
    portal = svc.store.get(frame.member_id)
    if portal is None:
        return render_template("home.html", portal=None), 200
    # Status is shown only to a user the OAuth server vouches for on this portal.
    info = lifecycle.verify_token(svc, frame.auth_id, frame.member_id)
    security.set_frame_origin(portal_origin(portal.client_endpoint))
    if (portal.status != ACTIVE and frame.refresh_id and portal.status != "uninstalled"
            and lifecycle.is_admin(svc, info.member_id, info.client_endpoint, frame.auth_id)):
        # The stored grant was lost (refresh refused): an administrator opening the app
        # re-seeds it from their own fresh pair (threats.md scenario 7, §2.4 (b)).
        svc.store.save_grant(lifecycle.grant_from_frame(svc, frame, info))
        portal = svc.store.get(frame.member_id) or portal
    elif portal.status == "uninstalled":
        raise errors.NotInstalled("portal uninstalled")
    reconnect = svc.settings.url_for_handler(f"/reconnect?member_id={portal.member_id}")
    # Asked here only (never on a card view), as the opening user; fails open (no note).
    simple_crm = crm_mode.is_simple_crm(svc, portal, frame.auth_id)
    return render_template("home.html", portal=portal, reconnect_url=reconnect,
                           simple_crm=simple_crm), 200
