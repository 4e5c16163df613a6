"""The frame POST: how a portal opens an app page (installer, main page, placement).

Owns the exact request Bitrix24 sends into the app iframe (api-reference/widgets/_includes/widget_data.md, e.2):
four parameters in the query string (DOMAIN, PROTOCOL, LANG, APP_SID) and the rest
as a form body (AUTH_ID, AUTH_EXPIRES, REFRESH_ID, SERVER_ENDPOINT,
APPLICATION_TOKEN, APPLICATION_SCOPE, member_id, status, PLACEMENT[,
PLACEMENT_OPTIONS]).  Every render gets a fresh APP_SID and fresh tokens for the
viewing user; the APP_SID is remembered so the parent page can answer the
frame's ``getInitData`` / ``refreshAuth`` / ``setInstallFinish`` messages.
Field order and sets follow payloads/placement_crm_deal_detail_tab_post.current_docs.json
and payloads/install_frame_post.docs.json.
"""

from __future__ import annotations

import json
from urllib.parse import urlencode

from .state import World

FORM_ORDER = ["AUTH_ID", "AUTH_EXPIRES", "REFRESH_ID", "SERVER_ENDPOINT", "APPLICATION_TOKEN",
              "APPLICATION_SCOPE", "member_id", "status", "PLACEMENT", "PLACEMENT_OPTIONS"]
_NEWER_FIELDS = {"SERVER_ENDPOINT", "APPLICATION_TOKEN", "APPLICATION_SCOPE"}


def php_json(value: object) -> str:
    """json_encode as PHP does it: compact, "/" escaped as "\\/" (cf. PLACEMENT_OPTIONS URI)."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).replace("/", "\\/")


def placement_handler(world: World, portal: str, placement: str) -> str | None:
    with world.lock:
        for rec in world.portal(portal).placements:
            if rec["placement"] == placement:
                return rec["handler"]
    return None


def build_frame_post(world: World, portal: str, user_id: int, handler: str, placement: str,
                     options: dict | None, lang: str, install: bool = False) -> tuple[str, dict, str]:
    """Returns (url with query, form fields in wire order, APP_SID)."""
    p = world.portal(portal)
    grant = world.issue_grant(portal, user_id)
    app_sid = world.new_frame(portal=portal, user_id=int(user_id), placement=placement,
                              options=options or {}, lang=lang, handler=handler, install=install,
                              access_token=grant.access_token, refresh_token=grant.refresh_token,
                              expires_in=int(round(grant.expires_at - grant.issued_at)))
    query = {"DOMAIN": p.domain, "PROTOCOL": "0", "LANG": lang, "APP_SID": app_sid}
    url = handler + ("&" if "?" in handler else "?") + urlencode(query)
    form = {
        "AUTH_ID": grant.access_token,
        "AUTH_EXPIRES": str(int(round(grant.expires_at - grant.issued_at))),
        "REFRESH_ID": grant.refresh_token,
        "SERVER_ENDPOINT": world.server_endpoint,
        "APPLICATION_TOKEN": p.application_token,
        "APPLICATION_SCOPE": world.app.scope,
        "member_id": p.member_id,
        "status": world.app.status,
        "PLACEMENT": placement,
    }
    if options is not None:
        form["PLACEMENT_OPTIONS"] = php_json(options)
    if world.knob("frame_fields", portal) == "old":
        form = {k: v for k, v in form.items() if k not in _NEWER_FIELDS}
    return url, {k: form[k] for k in FORM_ORDER if k in form}, app_sid


def lead_tab_post(world: World, portal: str, user_id: int, lead_id: int | str, lang: str,
                  handler: str | None = None) -> tuple[str, dict, str]:
    """CRM_LEAD_DETAIL_TAB open: PLACEMENT_OPTIONS = {"ID": "<id>"} (string id)."""
    handler = handler or placement_handler(world, portal, "CRM_LEAD_DETAIL_TAB") \
        or world.app.url("/placement")
    options: dict = {"ID": str(lead_id)}
    if world.knob("placement_options_uri", portal):
        options["URI"] = (f"/crm/lead/details/{lead_id}/?any=details%2F{lead_id}%2F"
                          "&IFRAME=Y&IFRAME_TYPE=SIDE_SLIDER")
    return build_frame_post(world, portal, user_id, handler, "CRM_LEAD_DETAIL_TAB", options, lang)


def install_post(world: World, portal: str, user_id: int, lang: str) -> tuple[str, dict, str]:
    """Installer open: PLACEMENT=DEFAULT and no PLACEMENT_OPTIONS (payloads/install_frame_post.docs.json)."""
    return build_frame_post(world, portal, user_id, world.app.url(world.app.install_path), "DEFAULT",
                            None, lang, install=True)


def app_page_post(world: World, portal: str, user_id: int, lang: str) -> tuple[str, dict, str]:
    """Main app page open (after installation finished): PLACEMENT=DEFAULT."""
    return build_frame_post(world, portal, user_id, world.app.url(world.app.handler_path), "DEFAULT",
                            None, lang)
