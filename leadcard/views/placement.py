"""POST /placement — the CRM_LEAD_DETAIL_TAB iframe: the lead card."""

from flask import Blueprint, g, render_template, request

from .. import cards, i18n, security, services, viewer
from ..oauth import portal_origin
from ..payloads import parse_placement

bp = Blueprint("placement", __name__)


@bp.post("/placement")
def lead_tab() -> tuple[str, int]:
    req = parse_placement(request.args, request.form)
    g.lang = req.frame.lang
    view = viewer.open_lead(services.current(), req)
    security.set_frame_origin(portal_origin(view.portal.client_endpoint))
    card = cards.build_card(view.lead, view.reference, i18n.format_locale_for_lang(req.frame.lang))
    return render_template("card.html", card=card), 200
