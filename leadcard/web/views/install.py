"""POST /install — the application installer URL, opened by the installing admin."""

from flask import Blueprint, g, render_template, request

from leadcard.bitrix24.payloads import parse_frame
from leadcard.core.grant import portal_origin
from leadcard.flows import lifecycle, services
from leadcard.web import security

bp = Blueprint("install", __name__)


@bp.post("/install")
def install() -> tuple[str, int]:
    frame = parse_frame(request.args, request.form)
    g.lang = frame.lang
    svc = services.current()
    result = lifecycle.install(svc, frame)
    portal = svc.store.get(frame.member_id)
    if portal is not None:
        security.set_frame_origin(portal_origin(portal.client_endpoint))
    return render_template("install.html", install=result), 200
