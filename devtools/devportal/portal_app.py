"""One simulated Bitrix24 portal as a Flask app (served on the portal's port(s)).

Owns the portal's HTTP surface: ``/rest/<method>`` (params from JSON body, form
body with PHP-style keys, or query string; ``auth`` anywhere), the fault / latency
/ rate-limit pipeline in front of REST, the "portal moved" redirect on old ports,
``/oauth/authorize/``, avatars, and the small JSON API the browser pages use to
open app frames.  Page HTML lives in ``pages``.
"""

from __future__ import annotations

import time
from pathlib import Path
from urllib.parse import urlencode

from flask import Flask, Response, abort, request, send_from_directory

from . import (
    crm_context,  # noqa: F401  (registers the context methods in rest.METHODS)
    crm_writes,  # noqa: F401  (registers the write methods in rest.METHODS)
    frames,
    lifecycle,
    pages,
)
from .batch import run_batch
from .data import avatar_svg
from .envelope import RestError, json_response, time_object
from .faults import drop_connection
from .params import parse_php_pairs
from .rest import execute
from .state import World

STATIC_DIR = Path(__file__).parent / "static"


def collect_params(req) -> tuple[dict, str | None]:
    """Query string, then form or JSON body (later wins); ``auth`` is taken out."""
    params = parse_php_pairs(req.args.items(multi=True))
    body_json = None
    if req.mimetype == "application/json":
        body_json = req.get_json(silent=True)
    if isinstance(body_json, dict):
        params.update(body_json)
    else:
        params.update(parse_php_pairs(req.form.items(multi=True)))
    token = params.pop("auth", None)
    if token is not None and not isinstance(token, str):
        token = str(token)
    return params, token


def create_portal_app(world: World, name: str) -> Flask:
    app = Flask(f"devtools.devportal.portal.{name}")

    def portal():
        return world.portal(name)

    @app.before_request
    def moved_redirect():
        # Cloud portals can be renamed: the old address answers 302 with Location on
        # the new host (RD settings/how-to-call-rest-api/change-domen.md).
        p = portal()
        if int(request.environ.get("SERVER_PORT", p.port)) != p.port:
            qs = request.environ.get("QUERY_STRING", "")
            location = p.base_url + request.path + (f"?{qs}" if qs else "")
            resp = Response("", status=302, mimetype="text/html")
            resp.headers["Location"] = location
            return resp
        return None

    # --- REST ------------------------------------------------------------------------------
    @app.route("/rest/<path:method>", methods=["GET", "POST"])
    def rest(method: str) -> Response:
        environ = request.environ
        p = portal()
        mname = method.strip("/").lower()
        if mname.endswith(".json"):
            mname = mname[:-5]
        start = time.time()
        params, token = collect_params(request)

        if world.knob("rate_limit", name):
            drain = float(world.knob("rate_drain", name))
            burst = float(world.knob("rate_burst", name))
            if not p.bucket.admit(drain, burst):
                with world.lock:
                    world.counters[name]["rate_limited"] += 1
                err = RestError("QUERY_LIMIT_EXCEEDED")
                return json_response(err.body(), err.status)

        fault = world.faults.take(name, mname)
        hang_after = 0.0  # "commit then hang": the method runs, the answer waits
        if fault is not None:
            if fault.kind == "drop":
                drop_connection(environ)
                return Response("", status=500)
            if fault.kind == "hang":
                time.sleep(fault.seconds)
            elif fault.kind == "hang_after":
                hang_after = fault.seconds
            else:
                r = fault.resolved()
                if fault.kind == "html":
                    return Response(r["body"], status=r["status"], mimetype="text/html")
                return json_response(r["body"], r["status"])

        latency = float(world.knob("latency", name) or 0.0)
        latency += float((world.knob("method_latency", name) or {}).get(mname, 0.0))
        if latency > 0:
            time.sleep(latency)

        try:
            grant = world.check_access(token, name)
            if mname == "batch":
                result, subs = run_batch(world, p, grant, params)
                environ["devportal.batch"] = subs
                payload = {"result": result,
                           "time": time_object(start, time.time(), p.tz, operating=0)}
            else:
                result, extra, timing = execute(world, p, grant, mname, params)
                payload = {"result": result, **extra,
                           "time": time_object(start, time.time(), p.tz, operating=timing["operating"],
                                               operating_reset_at=timing["operating_reset_at"])}
        except RestError as err:
            time.sleep(hang_after)
            return json_response(err.body(), err.status)
        time.sleep(hang_after)
        return json_response(payload)

    @app.after_request
    def rest_cors(resp: Response) -> Response:
        # The JS SDK inside the app iframe calls REST cross-origin, so Bitrix24's REST
        # answers carry permissive CORS headers.
        if request.path.startswith("/rest/"):
            resp.headers["Access-Control-Allow-Origin"] = "*"
            resp.headers["Access-Control-Allow-Methods"] = "GET, POST, OPTIONS"
            resp.headers["Access-Control-Allow-Headers"] = "Content-Type, Accept, X-Request-Id, X-Sdk"
        return resp

    # --- OAuth authorize -------------------------------------------------------------------
    @app.route("/oauth/authorize/", methods=["GET"])
    @app.route("/oauth/authorize", methods=["GET"])
    def authorize() -> Response:
        # RD settings/oauth/index.md (settings/oauth/index.md): only client_id and state come in;
        # failures are shown on the portal page, the app gets no redirect.
        p = portal()
        client_id = request.args.get("client_id", "")
        state = request.args.get("state", "")
        user_id = _user_arg(p)
        if client_id != world.app.client_id:
            return pages.message_page(p, "Authorization failed", "Application not found.", status=400)
        if not p.installed:
            return pages.message_page(p, "Authorization failed",
                                      "The application is not installed on this Bitrix24.", status=400)
        code = world.new_code(name, user_id)
        query = urlencode({"code": code, "state": state, "domain": p.domain, "member_id": p.member_id,
                           "scope": world.app.scope, "server_domain": world.oauth_host})
        target = world.app.url(world.app.redirect_path)
        resp = Response("", status=302)
        resp.headers["Location"] = target + ("&" if "?" in target else "?") + query
        return resp

    # --- pages -----------------------------------------------------------------------------
    def _user_arg(p) -> int:
        try:
            uid = int(request.args.get("user", "1"))
        except ValueError:
            uid = 1
        return uid if uid in p.users else 1

    def _lang_arg(p) -> str:
        lang = request.args.get("lang") or p.lang
        return lang if lang.isalnum() and len(lang) <= 5 else p.lang

    @app.route("/")
    def index() -> Response:
        p = portal()
        return pages.index_page(world, p, _user_arg(p), _lang_arg(p))

    @app.route("/crm/lead/details/<int:lead_id>/")
    def lead_details(lead_id: int) -> Response:
        p = portal()
        return pages.lead_page(world, p, lead_id, _user_arg(p), _lang_arg(p), request.args.get("tab", ""),
                               bare=request.args.get("IFRAME") == "Y")

    @app.route("/marketplace/app/")
    def marketplace() -> Response:
        p = portal()
        return pages.marketplace_page(world, p, _user_arg(p), _lang_arg(p))

    @app.route("/company/personal/user/<int:uid>/")
    def user_page(uid: int) -> Response:
        p = portal()
        user = p.users.get(uid)
        if user is None:
            abort(404)
        return pages.message_page(p, f"{user['NAME']} {user['LAST_NAME']}", user.get("WORK_POSITION", ""))

    @app.route("/crm/<string:entity>/details/<int:eid>/")
    def other_entity(entity: str, eid: int) -> Response:
        p = portal()
        return pages.message_page(p, f"CRM {entity} #{eid}", "Simulated entity page (not modelled).")

    @app.route("/upload/avatar/<int:uid>.svg")
    def avatar(uid: int) -> Response:
        user = portal().users.get(uid)
        if user is None or "PERSONAL_PHOTO" not in user:
            abort(404)
        return Response(avatar_svg(user), mimetype="image/svg+xml")

    @app.route("/_devportal/static/<path:filename>")
    def static_file(filename: str) -> Response:
        return send_from_directory(STATIC_DIR, filename, max_age=0)

    # --- page API (used by frame_host.js) --------------------------------------------------
    def _frame_spec(url: str, form: dict, app_sid: str) -> dict:
        return {"url": url, "form": form, "app_sid": app_sid, "domain": portal().domain,
                "init": pages.init_data(world, app_sid)}

    @app.route("/_devportal/api/frame-post", methods=["POST"])
    def api_frame_post() -> Response:
        p = portal()
        body = request.get_json(silent=True) or {}
        kind = body.get("kind")
        user_id = int(body.get("user", 1))
        lang = str(body.get("lang") or p.lang)
        if user_id not in p.users:
            return json_response({"error": "unknown user"}, 400)
        if kind == "placement":
            idx = int(body.get("binding", 0))
            with world.lock:
                tabs = [b for b in p.placements if b["placement"] == "CRM_LEAD_DETAIL_TAB"]
            if not (0 <= idx < len(tabs)):
                return json_response({"error": "no such binding"}, 404)
            url, form, sid = frames.lead_tab_post(world, name, user_id, int(body.get("lead", 0)), lang,
                                                  handler=tabs[idx]["handler"])
        elif kind == "install":
            if not p.is_admin(user_id):
                return json_response({"error": "only an administrator can install applications"}, 403)
            url, form, sid = frames.install_post(world, name, user_id, lang)
        elif kind == "app":
            url, form, sid = frames.app_page_post(world, name, user_id, lang)
        else:
            return json_response({"error": "kind must be placement, install or app"}, 400)
        return json_response(_frame_spec(url, form, sid))

    @app.route("/_devportal/api/refresh-auth", methods=["POST"])
    def api_refresh_auth() -> Response:
        body = request.get_json(silent=True) or {}
        ctx = world.frame(str(body.get("app_sid", "")))
        if ctx is None or ctx["portal"] != name:
            return json_response({"error": "unknown APP_SID"}, 404)
        g = world.issue_grant(name, ctx["user_id"])
        with world.lock:
            ctx.update(access_token=g.access_token, refresh_token=g.refresh_token)
        return json_response({"AUTH_ID": g.access_token, "REFRESH_ID": g.refresh_token,
                              "AUTH_EXPIRES": str(int(round(g.expires_at - g.issued_at)))})

    @app.route("/_devportal/api/install-finish", methods=["POST"])
    def api_install_finish() -> Response:
        body = request.get_json(silent=True) or {}
        ctx = world.frame(str(body.get("app_sid", "")))
        if ctx is None or ctx["portal"] != name or not ctx.get("install"):
            return json_response({"error": "not an installer frame"}, 409)
        status = lifecycle.finish_install(world, name, ctx["user_id"])
        url, form, sid = frames.app_page_post(world, name, ctx["user_id"], ctx["lang"])
        return json_response({"delivery_status": status, "next": _frame_spec(url, form, sid)})

    @app.route("/_devportal/api/uninstall", methods=["POST"])
    def api_uninstall() -> Response:
        body = request.get_json(silent=True) or {}
        if not portal().is_admin(int(body.get("user", 1))):
            return json_response({"error": "only an administrator can uninstall applications"}, 403)
        statuses = lifecycle.uninstall(world, name, bool(body.get("clean")))
        return json_response({"delivery_statuses": statuses})

    @app.route("/_devportal/api/frame-event", methods=["POST"])
    def api_frame_event() -> Response:
        body = request.get_json(silent=True) or {}
        with world.lock:
            world.frame_events.append({"time": time.time(), "portal": name,
                                       "app_sid": str(body.get("app_sid", ""))[:64],
                                       "command": str(body.get("command", ""))[:64],
                                       "params": body.get("params")})
        return json_response({"ok": True})

    return app


def record_portal_request(world: World, name: str):
    def record(environ: dict, status: object) -> None:
        path = environ.get("PATH_INFO", "")
        method = None
        kind = "page"
        if path.startswith("/rest/"):
            kind = "rest"
            method = path[len("/rest/"):].strip("/").lower()
            if method.endswith(".json"):
                method = method[:-5]
        world.record(server=name, port=int(environ.get("SERVER_PORT", 0)), path=path, status=status,
                     method=method, sub_methods=environ.get("devportal.batch"), kind=kind)
    return record


def record_oauth_request(world: World):
    def record(environ: dict, status: object) -> None:
        path = environ.get("PATH_INFO", "")
        if path.startswith("/_sim/"):
            with world.lock:
                world.oauth_counters["control"] += 1
            return
        world.record(server="oauth", port=int(environ.get("SERVER_PORT", 0)), path=path, status=status,
                     method=environ.get("devportal.rest_method"))
    return record
