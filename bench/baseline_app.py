"""The benchmark's baseline: a lead tab written the way a typical hand-made integration is.

It is deliberately *not* Lead Card: it mirrors what the common PHP/Python snippets (CRest and
its ports) do, so the benchmark can show a speed-up as a ratio measured in the same run.

- Per view it opens a NEW HTTP connection for every upstream call (`requests.post`, no
  `Session`), and caches nothing: `crm.lead.get`, `crm.lead.fields`, `crm.status.list` x3
  (STATUS, SOURCE, HONORIFIC) and `user.get`, one after another.
- The REST host is taken from the posted `DOMAIN`/`PROTOCOL` (as the snippets do).
- On `expired_token` it refreshes with the posted `REFRESH_ID` (viewer) or the stored refresh
  token (app-level), with no lock of any kind, and retries once — CRest's behaviour.
- Installed tokens live in a JSON file (`BASELINE_STATE`), like CRest's settings.json.

Served by gunicorn with the same settings as Lead Card:
`gunicorn -c gunicorn.conf.py 'bench.baseline_app:create_app()'`. Never for production.
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any

import requests
from flask import Flask, abort, render_template_string, request

TIMEOUT = 10

CARD = """<!doctype html><html><head><meta charset="utf-8"><title>{{ lead.TITLE }}</title></head>
<body><h1>{{ honorific }} {{ lead.NAME }} {{ lead.LAST_NAME }} — {{ lead.TITLE }}</h1>
<p>Stage: {{ stage }} · Source: {{ source_name }} · Responsible: {{ responsible }}</p>
<p>{{ lead.OPPORTUNITY }} {{ lead.CURRENCY_ID }}</p>
<table>{% for code, label, value in rows %}<tr><th>{{ label }}</th><td>{{ value }}</td></tr>{% endfor %}</table>
</body></html>"""


class Expired(Exception):
    pass


class UpstreamError(Exception):
    pass


def _settings() -> dict[str, str]:
    return {
        "client_id": os.environ["B24_CLIENT_ID"],
        "client_secret": os.environ["B24_CLIENT_SECRET"],
        "oauth_url": os.environ["B24_OAUTH_URL"].rstrip("/"),
        "state": os.environ["BASELINE_STATE"],
    }


def rest_call(base: str, method: str, params: dict[str, Any], auth: str) -> Any:
    """One REST call on a brand-new connection (module-level requests.post)."""
    response = requests.post(base + method, json={**params, "auth": auth}, timeout=TIMEOUT)
    body = response.json()
    if body.get("error"):
        if str(body["error"]).lower() == "expired_token":
            raise Expired()
        raise UpstreamError(f"{method}: {body['error']}")
    return body.get("result")


def refresh(refresh_token: str) -> dict[str, Any]:
    """CRest-style GET to the OAuth server's token endpoint; every caller spends its own."""
    s = _settings()
    response = requests.get(
        s["oauth_url"] + "/oauth/token/",
        params={
            "grant_type": "refresh_token",
            "client_id": s["client_id"],
            "client_secret": s["client_secret"],
            "refresh_token": refresh_token,
        },
        timeout=TIMEOUT,
    )
    body = response.json()
    if "access_token" not in body:
        raise UpstreamError(f"refresh failed: {body.get('error')}")
    return body


def _load_state() -> dict[str, Any]:
    with open(_settings()["state"], encoding="utf-8") as fh:
        return json.load(fh)


def _save_state(state: dict[str, Any]) -> None:
    with open(_settings()["state"], "w", encoding="utf-8") as fh:
        json.dump(state, fh)


def check_stored() -> str:
    """App-level call with the stored token (what `portals check` does in Lead Card)."""
    state = _load_state()
    try:
        rest_call(state["base"], "app.info", {}, state["access_token"])
        return "ok"
    except Expired:
        body = refresh(state["refresh_token"])  # no lock: every concurrent caller refreshes
        state.update(access_token=body["access_token"], refresh_token=body["refresh_token"])
        _save_state(state)
        rest_call(state["base"], "app.info", {}, state["access_token"])
        return "ok (refreshed)"


def create_app() -> Flask:
    app = Flask(__name__)

    def base_url() -> str:
        scheme = "https" if request.args.get("PROTOCOL", "1") == "1" else "http"
        return f"{scheme}://{request.args['DOMAIN']}/rest/"

    @app.get("/healthz")
    def healthz() -> str:
        return "ok"

    @app.post("/install")
    def install() -> str:
        _save_state(
            {
                "base": base_url(),
                "member_id": request.form["member_id"],
                "access_token": request.form["AUTH_ID"],
                "refresh_token": request.form["REFRESH_ID"],
            }
        )
        return "<script>BX24.installFinish();</script>"

    @app.post("/events")
    def events() -> str:
        return "ok"

    @app.get("/check")
    def check() -> str:
        try:
            return check_stored()
        except UpstreamError as exc:
            return str(exc), 502  # type: ignore[return-value]

    @app.post("/placement")
    def placement() -> str:
        base = base_url()
        auth = request.form["AUTH_ID"]
        lead_id = json.loads(request.form["PLACEMENT_OPTIONS"])["ID"]
        try:
            try:
                return render(base, auth, lead_id)
            except Expired:
                body = refresh(request.form["REFRESH_ID"])
                return render(base, body["access_token"], lead_id)
        except (UpstreamError, Expired) as exc:
            abort(502, str(exc))

    return app


def render(base: str, auth: str, lead_id: str) -> str:
    lead = rest_call(base, "crm.lead.get", {"id": lead_id}, auth)
    fields = rest_call(base, "crm.lead.fields", {}, auth) or {}
    statuses = {
        entity: rest_call(
            base,
            "crm.status.list",
            {"order": {"SORT": "ASC"}, "filter": {"ENTITY_ID": entity}},
            auth,
        )
        or []
        for entity in ("STATUS", "SOURCE", "HONORIFIC")
    }
    ids = sorted(
        {
            str(lead.get(f))
            for f in ("ASSIGNED_BY_ID", "CREATED_BY_ID", "MODIFY_BY_ID")
            if lead.get(f)
        }
    )
    users = {
        str(u.get("ID")): u
        for u in rest_call(base, "user.get", {"FILTER": {"ID": ids}}, auth) or []
    }

    def caption(entity: str, value: Any) -> str:
        for item in statuses[entity]:
            if item.get("STATUS_ID") == value:
                return str(item.get("NAME"))
        return str(value or "")

    def label(code: str) -> str:
        f = fields.get(code) or {}
        return str(f.get("formLabel") or f.get("listLabel") or f.get("title") or code)

    responsible = users.get(str(lead.get("ASSIGNED_BY_ID")), {})
    rows = [
        (code, label(code), value)
        for code, value in lead.items()
        if value not in (None, "", [], {}) and not isinstance(value, (list, dict))
    ]
    return render_template_string(
        CARD,
        lead=lead,
        rows=rows,
        stage=caption("STATUS", lead.get("STATUS_ID")),
        source_name=caption("SOURCE", lead.get("SOURCE_ID")),
        honorific=caption("HONORIFIC", lead.get("HONORIFIC")),
        responsible=f"{responsible.get('NAME', '')} {responsible.get('LAST_NAME', '')}".strip(),
    )


if __name__ == "__main__":  # `python -m bench.baseline_app check`
    if sys.argv[1:] == ["check"]:
        print(check_stored())
