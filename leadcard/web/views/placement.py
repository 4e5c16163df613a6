"""POST /placement — the CRM_LEAD_DETAIL_TAB iframe: the lead card."""

from flask import Blueprint, g, render_template, request

from leadcard.card import model as cards, i18n
from leadcard.web import security
from leadcard.flows import services, lead_tab as viewer
from leadcard.core.grant import portal_origin
from leadcard.bitrix24.payloads import parse_placement

bp = Blueprint("placement", __name__)


@bp.post("/placement")
def lead_tab() -> tuple[str, int]:
    req = parse_placement(request.args, request.form)
    g.lang = req.frame.lang
    svc = services.current()
    view = viewer.open_lead(svc, req)
    security.set_frame_origin(portal_origin(view.portal.client_endpoint))
    locale = i18n.format_locale_for_lang(req.frame.lang)
    ref = view.reference

    def render() -> str:
        card = cards.build_card(view.lead, ref, locale)
        return security.render_reusable(lambda: render_template("card.html", card=card))

    # Everything the page depends on (rendered.py); the lead was read just now either way.
    inputs = (view.lead, ref.fields, ref.statuses, ref.currencies, ref.users, ref.companies,
              ref.contacts, req.frame.lang, locale, g.get("frame_origin"))
    return security.with_own_nonce(svc.rendered.page(inputs, render)), 200
