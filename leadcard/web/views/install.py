"""POST /install — the application installer URL, opened by the installing admin."""

from flask import Blueprint, g, render_template, request

from leadcard.bitrix24.payloads import parse_frame
from leadcard.core.grant import portal_origin
from leadcard.flows import lifecycle, services
from leadcard.web import security

bp = Blueprint("install", __name__)


@bp.get("/install")
def installer_address() -> tuple[str, int]:
    """A person (or the vendor console's HEAD check) opening the installer URL: 200 and the
    app's own page, not 405 (market/preparing-to-publish/faq.md: the console wants 200, 301
    or 302 for the application and installer URLs). Installing happens in Bitrix24."""
    return render_template("home.html", portal=None), 200


@bp.post("/install")
def install() -> tuple[str, int]:
    frame = parse_frame(request.args, request.form)
    g.lang = frame.lang
    svc = services.current()
    result = lifecycle.install(svc, frame)
    portal = svc.store.get(frame.member_id)
    if portal is not None:
        security.set_frame_origin(portal_origin(portal.client_endpoint))
    return render_template("install.html", install=result,
                           member_id=portal.member_id if portal is not None else None), 200
