"""``crm.settings.mode.get`` and a per-portal switch between classic and simple CRM.

api-reference/crm/crm-settings-mode-get.md: no parameters, scope ``crm``, any user may call
it; ``result`` is an integer from crm.enum.settings.mode
(api-reference/crm/auxiliary/enum/crm-enum-settings-mode.md): 1 classic CRM (with leads),
2 simple CRM (without leads). Portals start classic; tests and the demo switch one with
``Simulator.set_crm_mode`` or ``POST /_sim/crm_mode {"portal": "a", "mode": 2}``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from flask import Blueprint, Response, request

from .envelope import json_response
from .rest import Call, Result, method

if TYPE_CHECKING:  # pragma: no cover
    from .simulator import Simulator

CLASSIC, SIMPLE = 1, 2


@method("crm.settings.mode.get", {"crm"})
def crm_settings_mode_get(call: Call) -> Result:
    with call.world.lock:
        return call.portal.crm_mode, {}


def set_mode(sim: Simulator, portal: str, mode: int) -> int:
    """Switch ``portal`` to classic (1) or simple (2) CRM; returns the mode."""
    if mode not in (CLASSIC, SIMPLE):
        raise ValueError(f"mode must be {CLASSIC} (classic) or {SIMPLE} (simple), got {mode!r}")
    with sim.world.lock:
        sim.world.portal(portal).crm_mode = mode
    return mode


def add_control_routes(bp: Blueprint, sim: Simulator) -> None:
    """``GET|POST /_sim/crm_mode``: read or set a portal's CRM mode."""

    @bp.route("/crm_mode", methods=["GET", "POST"])
    def crm_mode() -> Response:
        if request.method == "GET":
            name = request.args.get("portal", "a")
            return json_response({"portal": name, "mode": sim.world.portal(name).crm_mode})
        b = request.get_json(silent=True)
        b = b if isinstance(b, dict) else {}
        name = str(b.get("portal", "a"))
        return json_response({"portal": name, "mode": set_mode(sim, name, int(b.get("mode", 0)))})
