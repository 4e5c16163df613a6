"""Browser pages of a simulated portal (plain HTML; CSS/JS in ``static/``).

Owns the mock Bitrix24 screens: the portal index (leads, user switch), the lead
detail page with one tab per CRM_LEAD_DETAIL_TAB binding, the marketplace app page
(install / open / uninstall) and the ``getInitData`` payload the parent script
hands to app frames.  Every CRM value is HTML-escaped here - sample data contains
hostile markup on purpose.
"""

from __future__ import annotations

import json
from html import escape
from typing import Any

from flask import Response

from .state import Portal, World


def h(value: Any) -> str:
    return "" if value is None else escape(str(value), quote=True)


def _config_json(cfg: dict) -> str:
    return json.dumps(cfg).replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def init_data(world: World, app_sid: str) -> dict:
    """Answer to the frame's ``getInitData`` (JSSDK ``MessageInitData`` type, 2.2.0)."""
    ctx = world.frame(app_sid) or {}
    p = world.portal(ctx["portal"])
    placement = ctx.get("placement", "DEFAULT")
    path = (f"/crm/lead/details/{ctx['options'].get('ID')}/" if placement == "CRM_LEAD_DETAIL_TAB"
            else "/marketplace/app/")
    return {
        "DOMAIN": p.domain, "PROTOCOL": "0", "PATH": path, "LANG": ctx.get("lang", p.lang),
        "APP_SID": app_sid, "AUTH_ID": ctx.get("access_token"), "AUTH_EXPIRES": str(ctx.get("expires_in", 3600)),
        "REFRESH_ID": ctx.get("refresh_token"), "MEMBER_ID": p.member_id,
        "IS_ADMIN": p.is_admin(ctx.get("user_id", 0)), "APP_OPTIONS": {}, "USER_OPTIONS": {},
        "PLACEMENT": placement, "PLACEMENT_OPTIONS": dict(ctx.get("options") or {}),
        "INSTALL": bool(ctx.get("install")), "FIRST_RUN": False,
    }


def _user_name(p: Portal, uid: Any) -> str:
    u = p.users.get(int(uid)) if str(uid or "").isdigit() else None
    return f"{u['NAME']} {u['LAST_NAME']}" if u else f"User #{uid}"


def _layout(world: World, p: Portal, user_id: int, lang: str, title: str, body: str,
            config: dict | None = None, status: int = 200, bare: bool = False) -> Response:
    links = " · ".join(
        (f'<b>{h(_user_name(p, uid))}</b>' if uid == user_id else
         f'<a href="?user={uid}&amp;lang={h(lang)}">{h(_user_name(p, uid))}</a>')
        + (" (admin)" if p.is_admin(uid) else "")
        for uid in sorted(p.users))
    cfg = {"portal": p.name, "user": user_id, "lang": lang, **(config or {})}
    html = f"""<!doctype html>
<html lang="{h(lang)}"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{h(title)} — {h(p.title)}</title>
<link rel="icon" href="data:,">
<link rel="stylesheet" href="/_devportal/static/portal.css">
</head><body data-portal="{h(p.name)}" data-user="{user_id}"{' class="bare"' if bare else ''}>
<header class="topbar">
  <a class="logo" href="/?user={user_id}&amp;lang={h(lang)}">Bitrix<span>24</span></a>
  <span class="portal-name">{h(p.title)}</span><span class="sim-badge">simulator · {h(p.domain)}</span>
  <nav class="user-switch">Signed in as: {links}</nav>
</header>
<div class="layout">
<aside class="leftmenu">
  <a href="/?user={user_id}&amp;lang={h(lang)}">CRM · Leads</a>
  <a href="/marketplace/app/?user={user_id}&amp;lang={h(lang)}">Applications</a>
  <a href="{h(world.oauth_url)}/_sim/stats">Simulator stats</a>
</aside>
<main>{body}</main>
</div>
<script type="application/json" id="devportal-config">{_config_json(cfg)}</script>
<script src="/_devportal/static/frame_host.js"></script>
</body></html>"""
    return Response(html, status=status, mimetype="text/html")


def message_page(p: Portal, title: str, text: str, status: int = 200) -> Response:
    html = (f'<!doctype html><html><head><meta charset="utf-8"><title>{h(title)}</title>'
            f'<link rel="icon" href="data:,"><link rel="stylesheet" href="/_devportal/static/portal.css">'
            f'</head><body>'
            f'<main class="solo"><div class="card"><h1>{h(title)}</h1><p>{h(text)}</p>'
            f'<p><a href="/">{h(p.title)}</a></p></div></main></body></html>')
    return Response(html, status=status, mimetype="text/html")


def index_page(world: World, p: Portal, user_id: int, lang: str) -> Response:
    stages = {s["STATUS_ID"]: s for s in p.statuses.get("STATUS", [])}
    rows = []
    for lid, lead in sorted(p.leads.items()):
        readable = p.can_read(user_id, lead)
        st = stages.get(lead.get("STATUS_ID"), {})
        link = f"/crm/lead/details/{lid}/?user={user_id}&amp;lang={h(lang)}"
        rows.append(
            f'<tr class="{"" if readable else "denied"}"><td>{lid}</td>'
            f'<td><a href="{link}">{h(lead.get("TITLE"))}</a></td>'
            f'<td><span class="stage-dot" style="background:{h(st.get("COLOR") or "#ccc")}"></span>'
            f'{h(st.get("NAME", lead.get("STATUS_ID")))}</td>'
            f'<td>{h(_user_name(p, lead.get("ASSIGNED_BY_ID")))}</td>'
            f'<td>{"yes" if readable else "no (Access denied)"}</td>'
            f'<td><a href="{link}&amp;tab=app">open app tab</a></td></tr>')
    with world.lock:
        bindings = "".join(f"<li><code>{h(b['placement'])}</code> → <code>{h(b['handler'])}</code> "
                           f"({h(b['title'])})</li>" for b in p.placements) or "<li>none</li>"
        events = "".join(f"<li><code>{h(e['event'])}</code> → <code>{h(e['handler'])}</code></li>"
                         for e in p.events) or "<li>none</li>"
    body = f"""
<div class="card">
  <h1>Leads</h1>
  <p class="muted">member_id <code>{h(p.member_id)}</code> · REST <code>{h(p.client_endpoint)}</code> ·
     OAuth <code>{h(world.server_endpoint)}</code> · app {"installed" if p.installed else "not installed"}
     · <a href="/marketplace/app/?user={user_id}&amp;lang={h(lang)}">marketplace page</a></p>
  <table class="grid"><thead><tr><th>ID</th><th>Title</th><th>Stage</th><th>Responsible</th>
  <th>Readable by current user</th><th></th></tr></thead><tbody>{''.join(rows)}</tbody></table>
</div>
<div class="card"><h2>Bindings of the app</h2><h3>Placements</h3><ul>{bindings}</ul>
<h3>Event handlers</h3><ul>{events}</ul></div>"""
    return _layout(world, p, user_id, lang, "Leads", body)


def _multifield(lead: dict, key: str) -> str:
    values = lead.get(key) or []
    return "<br>".join(f'{h(v.get("VALUE"))} <span class="muted">{h(v.get("VALUE_TYPE"))}</span>'
                       for v in values) or '<span class="muted">—</span>'


def lead_page(world: World, p: Portal, lead_id: int, user_id: int, lang: str, tab: str,
              bare: bool = False) -> Response:
    """``bare``: opened with IFRAME=Y (inside a slider), without the portal chrome."""
    lead = p.leads.get(lead_id)
    if lead is None:
        return _layout(world, p, user_id, lang, "Not found",
                       '<div class="card"><h1>Lead not found</h1></div>', status=404)
    if not p.can_read(user_id, lead):
        return _layout(world, p, user_id, lang, "Access denied",
                       '<div class="card"><h1>Access denied</h1><p>You do not have permission '
                       'to view this lead.</p></div>', status=403)
    stages = p.statuses.get("STATUS", [])
    current = next((s for s in stages if s["STATUS_ID"] == lead.get("STATUS_ID")), None)
    bar = []
    for s in stages:
        reached = current is not None and int(s["SORT"]) <= int(current["SORT"])
        if current is not None and current["SEMANTICS"] == "F":
            reached = s is current
        color = s["COLOR"] if reached else "#e8ebee"
        bar.append(f'<div class="stage{" current" if s is current else ""}{" reached" if reached else ""}" '
                   f'style="background:{h(color)}" '
                   f'title="{h(s["NAME"])}">{h(s["NAME"])}</div>')
    sources = {s["STATUS_ID"]: s["NAME"] for s in p.statuses.get("SOURCE", [])}
    fields = p.lead_fields
    rows = [
        ("Stage", h(current["NAME"]) if current else h(lead.get("STATUS_ID"))),
        ("Name", h(" ".join(x for x in (lead.get("NAME"), lead.get("SECOND_NAME"), lead.get("LAST_NAME")) if x))),
        ("Company", h(lead.get("COMPANY_TITLE"))),
        ("Amount", f'{h(lead.get("OPPORTUNITY"))} {h(lead.get("CURRENCY_ID"))}'),
        ("Source", h(sources.get(lead.get("SOURCE_ID"), lead.get("SOURCE_ID")))),
        ("Phone", _multifield(lead, "PHONE")),
        ("E-mail", _multifield(lead, "EMAIL")),
        ("Website", _multifield(lead, "WEB")),
        ("Messenger", _multifield(lead, "IM")),
        ("Responsible", h(_user_name(p, lead.get("ASSIGNED_BY_ID")))),
        ("Comments", f'<pre class="comments">{h(lead.get("COMMENTS"))}</pre>'),
    ]
    for code, meta in fields.items():
        if meta.get("isDynamic") and code in lead:
            rows.append((meta.get("formLabel") or code, h(json.dumps(lead[code], ensure_ascii=False))))
    table = "".join(f'<tr><th>{h(k)}</th><td>{v}</td></tr>' for k, v in rows)

    with world.lock:
        tabs = [b for b in p.placements if b["placement"] == "CRM_LEAD_DETAIL_TAB"] if p.installed else []
    tab_buttons = ['<button class="tab" data-tab="general">General</button>']
    panels = [f'<section class="tab-panel card" data-panel="general"><table class="fields">{table}</table></section>']
    for i, b in enumerate(tabs):
        langs = b.get("langAll") or {}
        title = (langs.get(lang) or {}).get("TITLE") or b.get("title") or \
            next((v.get("TITLE") for v in langs.values() if isinstance(v, dict) and v.get("TITLE")), "") or "App"
        tab_buttons.append(f'<button class="tab app-tab" data-tab="app-{i}">{h(title)}</button>')
        panels.append(f'<section class="tab-panel card app-panel" data-panel="app-{i}" hidden>'
                      f'<div class="app-title" data-app-title></div>'
                      f'<div class="app-frame-container" data-kind="placement" data-binding="{i}" '
                      f'data-lead="{lead_id}"></div></section>')
    tab_buttons.append('<button class="tab" data-tab="history">History</button>')
    panels.append('<section class="tab-panel card" data-panel="history" hidden><p class="muted">'
                  f'Created {h(lead.get("DATE_CREATE"))}, modified {h(lead.get("DATE_MODIFY"))}.</p></section>')
    note = ""
    if not tabs:
        note = ('<p class="muted note">No CRM_LEAD_DETAIL_TAB tab: '
                + ("no placement is bound." if p.installed else
                   "the app is not installed (widgets show only after installFinish).") + "</p>")
    auto = ""
    if tab == "app" and tabs:
        auto = "app-0"
    elif tab.startswith("app-") or tab in ("general", "history"):
        auto = tab
    body = f"""
<div class="lead-head card">
  <div class="crumbs">CRM › Leads › #{lead_id}</div>
  <h1 class="lead-title">{h(lead.get("TITLE"))}</h1>
  <div class="stagebar">{''.join(bar)}</div>
  <p class="muted sim-reloads">reloadData requests from the app:
     <b data-sim="reload-count">0</b></p>
</div>
<nav class="tabs">{''.join(tab_buttons)}</nav>{note}
{''.join(panels)}"""
    return _layout(world, p, user_id, lang, f"Lead #{lead_id}", body,
                   {"page": "lead", "lead": lead_id, "autoOpen": auto or "general"}, bare=bare)


def marketplace_page(world: World, p: Portal, user_id: int, lang: str) -> Response:
    admin = p.is_admin(user_id)
    app = world.app
    if p.installed:
        actions = ('<button class="btn" data-action="open-app">Open app</button> '
                   + ('<label class="clean"><input type="checkbox" id="clean-data"> delete app settings and data</label> '
                      '<button class="btn danger" data-action="uninstall">Uninstall app</button>' if admin else ""))
    else:
        actions = ('<button class="btn primary" data-action="install">Install app</button>' if admin else
                   '<p class="muted">The application is not fully installed yet. '
                   'Ask your administrator to install it.</p>')
    body = f"""
<div class="card">
  <h1>Lead Card <span class="muted">({h(app.client_id)})</span></h1>
  <p>Status: <b id="install-state" data-installed="{'Y' if p.installed else 'N'}">{"installed" if p.installed else "not installed"}</b>
  · scope <code>{h(app.scope)}</code> · installer <code>{h(app.url(app.install_path))}</code></p>
  <div class="actions">{actions}</div>
  <p class="muted" id="action-result"></p>
</div>
<div class="card app-panel"><div class="app-title" data-app-title></div>
<div class="app-frame-container" id="market-frame" data-kind="install"></div></div>"""
    return _layout(world, p, user_id, lang, "Applications", body, {"page": "marketplace", "installed": p.installed})
