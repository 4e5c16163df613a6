"""POST /placement — the CRM_LEAD_DETAIL_TAB iframe: the lead card."""

from datetime import UTC, datetime

from flask import Blueprint, g, render_template, request

from leadcard.bitrix24.payloads import parse_placement
from leadcard.card import build
from leadcard.card.rendered import CardInputs
from leadcard.core.grant import portal_origin
from leadcard.flows import lead_tab as tab_flow
from leadcard.flows import services
from leadcard.web import frontend, security

bp = Blueprint("placement", __name__)


@bp.post("/placement")
def lead_tab() -> tuple[str, int]:
    req = parse_placement(request.args, request.form)
    g.lang = req.frame.lang
    svc = services.current()
    view = tab_flow.open_lead(svc, req)
    security.set_frame_origin(portal_origin(view.portal.client_endpoint))
    inputs = CardInputs(
        lead=view.lead,
        reference=view.reference,
        locale=frontend.current_locale(),  # what the template's texts and formats use
        frame_origin=g.get("frame_origin"),  # what its avatar_src filter checks against
        now=datetime.now(UTC).replace(second=0, microsecond=0).isoformat(),
    )
    page = svc.rendered.page(inputs, lambda: render_card(inputs))
    return security.with_own_nonce(page), 200


def render_card(inputs: CardInputs) -> str:
    """The card page for ``inputs``, with the nonce stand-in (reusable by later responses)."""
    now = datetime.fromisoformat(inputs.now) if inputs.now else None
    card = build.build_card(inputs.lead, inputs.reference, inputs.locale, now)
    return security.render_reusable(lambda: render_template("card.html", card=card))
