"""POST /placement — the CRM_LEAD_DETAIL_TAB iframe: the lead card."""

import time
from datetime import UTC, datetime

from flask import Blueprint, Response, g, render_template, request

from leadcard.bitrix24.payloads import parse_placement
from leadcard.card import build
from leadcard.card.model import Card
from leadcard.card.rendered import CardInputs
from leadcard.core import metrics
from leadcard.core.grant import portal_origin
from leadcard.flows import lead_tab as tab_flow
from leadcard.flows import services
from leadcard.web import frontend, security
from leadcard.web.problems import TEXTS

bp = Blueprint("placement", __name__)

# The error page shown (problems.py codes) → the view's metrics outcome. Codes not named here
# keep their own name (a fixed set: the problem texts' keys); anything else is "error".
_OUTCOMES = {
    "lead_not_found": "not_found",
    "app_not_installed": "not_installed",
    "operation_limit": "rate_limited",
    "too_many_attempts": "rate_limited",
    "busy": "rate_limited",
    "internal": "error",
}


def view_outcome(status: int, problem_code: str | None) -> str:
    """The `leadcard_views_total` outcome of a view answered with `status` (and, for an
    error page, its problem code)."""
    if problem_code is None:
        return "ok" if status < 400 else "error"
    outcome = _OUTCOMES.get(problem_code, problem_code)
    return outcome if outcome in TEXTS or outcome in _OUTCOMES.values() else "error"


@bp.before_request
def _started() -> None:
    g.view_started = time.perf_counter()


@bp.after_request
def _count(response: Response) -> Response:
    """Every answer of this blueprint, the card or an error page, is one view."""
    started = g.get("view_started")
    if started is not None:
        metrics.observe_view(view_outcome(response.status_code, g.get("problem_code")),
                             time.perf_counter() - started)
    return response


@bp.post("/placement")
def lead_tab() -> tuple[str, int]:
    req = parse_placement(request.args, request.form)
    g.lang = req.frame.lang
    svc = services.current()
    view = tab_flow.open_lead(svc, req)
    inputs = card_inputs(view)
    page = svc.rendered.page(inputs, lambda: render_card(inputs))
    return security.with_own_nonce(page), 200


def card_inputs(view: tab_flow.LeadView) -> CardInputs:
    """What the card of a lead just read is made from; frames it for that lead's portal."""
    security.set_frame_origin(portal_origin(view.portal.client_endpoint))
    return CardInputs(
        lead=view.lead,
        reference=view.reference,
        locale=frontend.current_locale(),  # what the template's texts and formats use
        frame_origin=g.get("frame_origin"),  # what its avatar_src filter checks against
        now=datetime.now(UTC).replace(second=0, microsecond=0).isoformat(),
    )


def card_of(inputs: CardInputs) -> Card:
    """The card's view-model for ``inputs``."""
    now = datetime.fromisoformat(inputs.now) if inputs.now else None
    return build.build_card(inputs.lead, inputs.reference, inputs.locale, now)


def render_card(inputs: CardInputs) -> str:
    """The card page for ``inputs``, with the nonce stand-in (reusable by later responses)."""
    card = card_of(inputs)
    return security.render_reusable(lambda: render_template("card.html", card=card))


def render_card_body(inputs: CardInputs) -> str:
    """The card's content alone (templates/_card_body.html): what an action sends back for
    the page to put in place of its card."""
    return render_template("_card_body.html", card=card_of(inputs))
