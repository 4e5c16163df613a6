"""HTTP control API of the simulator, mounted on the OAuth server under ``/_sim/``.

Owns the JSON interface that lets a benchmark or a test in another process drive a
running simulator: read/reset counters, set knobs, inject faults, list portals,
mint tokens / frame POSTs, finish installs, uninstall, move portals, shift the clock.
Loopback only, unauthenticated: a development tool, never to be exposed.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from flask import Blueprint, Response, request

from . import crm_settings, lifecycle
from .envelope import json_response

if TYPE_CHECKING:  # pragma: no cover
    from .simulator import Simulator


def create_control_blueprint(sim: Simulator) -> Blueprint:
    bp = Blueprint("devportal_control", __name__, url_prefix="/_sim")

    def body() -> dict:
        data = request.get_json(silent=True)
        return data if isinstance(data, dict) else {}

    def bad(message: str, status: int = 400) -> Response:
        return json_response({"error": message}, status)

    @bp.errorhandler(KeyError)
    @bp.errorhandler(ValueError)
    @bp.errorhandler(TypeError)
    def _bad_input(exc: Exception) -> Response:
        return bad(str(exc))

    @bp.get("/stats")
    def stats() -> Response:
        return json_response(sim.stats())

    @bp.post("/reset")
    def reset() -> Response:
        b = body()
        everything = bool(b.get("all"))
        sim.reset(stats=b.get("stats", True), rate=b.get("rate", True),
                  faults=everything or bool(b.get("faults")), knobs=everything or bool(b.get("knobs")),
                  clock=everything or bool(b.get("clock")),
                  context=everything or bool(b.get("context")))
        return json_response({"ok": True})

    @bp.route("/knobs", methods=["GET", "POST"])
    def knobs() -> Response:
        b = body() if request.method == "POST" else {}
        portal = b.pop("portal", None) or request.args.get("portal")
        return json_response(sim.knobs(portal=portal, **b))

    @bp.route("/faults", methods=["GET", "POST", "DELETE"])
    def faults() -> Response:
        if request.method == "GET":
            return json_response(sim.world.faults.list())
        b = body()
        if request.method == "DELETE" or b.get("clear"):
            if b.get("id") is not None:
                return json_response({"removed": int(sim.world.faults.remove(int(b["id"])))})
            return json_response({"removed": sim.clear_faults(b.get("target"))})
        specs = b.get("faults") if isinstance(b.get("faults"), list) else [b]
        ids = [sim.set_fault(**spec) for spec in specs]
        return json_response({"ids": ids, "faults": sim.world.faults.list()})

    @bp.get("/writes")
    def writes() -> Response:
        # Successful write calls, oldest first (crm_writes); cleared by /_sim/reset.
        return json_response(sim.writes(request.args.get("portal"), request.args.get("method")))

    @bp.post("/activity")
    def activity() -> Response:
        b = body()
        return json_response(sim.add_activity(
            b.get("portal", "a"), int(b["lead_id"]), str(b.get("subject", "New to-do")),
            completed=bool(b.get("completed")), deadline_in=float(b.get("deadline_in", 86400)),
            responsible=int(b.get("responsible", 1)), type_id=int(b.get("type_id", 6)),
            direction=int(b.get("direction", 0))))

    @bp.post("/comment")
    def comment() -> Response:
        b = body()
        return json_response(sim.add_comment(b.get("portal", "a"), int(b["lead_id"]),
                                             str(b.get("text", "")), int(b.get("author", 1))))

    @bp.get("/portals")
    def portals() -> Response:
        return json_response(sim.describe())

    @bp.post("/tokens")
    def tokens() -> Response:
        b = body()
        return json_response(sim.issue_tokens(b.get("portal", "a"), int(b.get("user_id", 1))))

    @bp.post("/placement_request")
    def placement_request() -> Response:
        b = body()
        url, form = sim.placement_request(b.get("portal", "a"), int(b.get("user_id", 1)),
                                          b.get("lead_id", 101), lang=b.get("lang", "en"))
        return json_response({"url": url, "form": form})

    @bp.post("/install_request")
    def install_request() -> Response:
        b = body()
        url, form = sim.install_request(b.get("portal", "a"), int(b.get("user_id", 1)), lang=b.get("lang", "en"))
        return json_response({"url": url, "form": form})

    @bp.post("/finish_install")
    def finish_install() -> Response:
        b = body()
        return json_response({"delivery_status": sim.finish_install(b.get("portal", "a"), int(b.get("user_id", 1)))})

    @bp.post("/uninstall")
    def uninstall() -> Response:
        b = body()
        statuses = lifecycle.uninstall(sim.world, b.get("portal", "a"), bool(b.get("clean")))
        return json_response({"delivery_statuses": statuses})

    @bp.post("/bind_placement")
    def bind_placement() -> Response:
        b = body()
        sim.bind_placement(b.pop("portal", "a"), **b)
        return json_response({"ok": True})

    @bp.get("/bindings")
    def bindings() -> Response:
        return json_response(sim.bindings(request.args.get("portal", "a")))

    @bp.post("/expire_token")
    def expire_token() -> Response:
        sim.expire_access_token(str(body().get("access_token", "")))
        return json_response({"ok": True})

    @bp.post("/move")
    def move() -> Response:
        b = body()
        return json_response({"base_url": sim.move_portal(b.get("portal", "a"))})

    @bp.post("/edit_lead")
    def edit_lead() -> Response:
        b = body()
        fields = b.get("fields")
        if not isinstance(fields, dict):
            return bad("fields must be an object")
        try:
            lead = sim.edit_lead(b.get("portal", "a"), int(b.get("lead_id", 0)), fields)
        except KeyError:
            return bad("no such lead", 404)
        return json_response({"DATE_MODIFY": lead["DATE_MODIFY"]})

    @bp.post("/clock")
    def clock() -> Response:
        b: dict[str, Any] = body()
        sim.advance_clock(float(b.get("advance", 0)))
        return json_response({"offset": sim.world.clock.offset})

    crm_settings.add_control_routes(bp, sim)
    return bp
