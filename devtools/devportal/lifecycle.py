"""Install / uninstall of the app on a portal and the event POSTs they cause.

Owns the server-to-server pushes: ONAPPINSTALL (after the installer called
installFinish - RD settings/app-installation/installation-finish.md: events are not
delivered before that) and ONAPPUNINSTALL (to every handler bound with event.bind,
carrying no tokens - RD api-reference/common/events/on-app-uninstall.md).  Bodies are
``application/x-www-form-urlencoded`` with PHP-style ``auth[...]`` / ``data[...]`` keys
(api-reference/events/index.md).  Deliveries are recorded without token values.
"""

from __future__ import annotations

import time
from typing import Any

import requests

from .params import flatten_php
from .state import World


def onappinstall_payload(world: World, portal: str, user_id: int = 1) -> dict:
    """ONAPPINSTALL for ``portal`` with a fresh grant of the installing admin.

    Shape "phpsdk" = keys of payloads/onappinstall_event.phpsdk_fixture.json (has
    event_handler_id, auth[expires], auth[user_id]; no refresh_token); shape "docs" =
    payloads/onappinstall_event.docs.json (data[ACTIVE]/[INSTALLED], auth[refresh_token]).
    """
    p = world.portal(portal)
    g = world.issue_grant(portal, user_id)
    shape = world.knob("onappinstall_shape")
    common_tail = {"server_endpoint": world.server_endpoint, "status": world.app.status,
                   "client_endpoint": p.client_endpoint, "member_id": p.member_id}
    if shape == "docs":
        return {
            "event": "ONAPPINSTALL",
            "data": {"VERSION": str(world.app.version), "ACTIVE": "Y", "INSTALLED": "Y", "LANGUAGE_ID": p.lang},
            "ts": str(int(world.clock.now())),
            "auth": {"domain": p.domain, "scope": g.scope, "access_token": g.access_token,
                     "refresh_token": g.refresh_token, "expires_in": str(int(g.expires_at - g.issued_at)),
                     **common_tail, "application_token": p.application_token},
        }
    return {
        "event": "ONAPPINSTALL",
        "event_handler_id": str(world.next_handler_id()),
        "data": {"VERSION": str(world.app.version), "LANGUAGE_ID": p.lang},
        "ts": str(int(world.clock.now())),
        "auth": {"access_token": g.access_token, "expires": str(int(g.expires_at)),
                 "expires_in": str(int(g.expires_at - g.issued_at)), "scope": g.scope,
                 "domain": p.domain, **common_tail, "user_id": str(g.user_id),
                 "application_token": p.application_token},
    }


def onappuninstall_payload(world: World, portal: str, clean: bool = False) -> dict:
    p = world.portal(portal)
    return {
        "event": "ONAPPUNINSTALL",
        "data": {"LANGUAGE_ID": p.lang, "CLEAN": "1" if clean else "0"},
        "ts": str(int(world.clock.now())),
        "auth": {"domain": p.domain, "server_endpoint": world.server_endpoint,
                 "client_endpoint": p.client_endpoint, "member_id": p.member_id,
                 "application_token": p.application_token},
    }


def deliver(world: World, portal: str, url: str, payload: dict) -> int:
    """POST a form-encoded event; returns the HTTP status, 0 if the app was unreachable.

    Real Bitrix24 does not retry failed deliveries (RD api-reference/events/index.md),
    neither do we.
    """
    status: Any = 0
    error = None
    form = flatten_php(payload)
    with world.lock:
        # Kept for tests that replay exactly what was delivered (not in stats(): it has tokens).
        world.delivered_forms.append((portal, str(payload.get("event")), dict(form)))
        del world.delivered_forms[:-50]
    try:
        resp = requests.post(url, data=form, timeout=float(world.knob("event_timeout")),
                             allow_redirects=False,
                             headers={"User-Agent": "Bitrix24 Webhook Engine (devportal)"})
        status = resp.status_code
    except requests.RequestException as exc:
        error = type(exc).__name__
    with world.lock:
        world.deliveries.append({"time": time.time(), "portal": portal, "event": payload.get("event"),
                                 "url": url.split("?")[0], "status": status, "error": error})
    return int(status)


def finish_install(world: World, portal: str, user_id: int = 1) -> int:
    """As if the installer frame called installFinish: mark installed, push ONAPPINSTALL.

    Returns the HTTP status of the delivery to the app's registered events URL.
    Handlers bound with event.bind for ONAPPINSTALL get a copy too.
    """
    with world.lock:
        p = world.portal(portal)
        p.installed = True
        extra = [r["handler"] for r in p.events if r["event"] == "ONAPPINSTALL"]
    main_url = world.app.url(world.app.events_path)
    status = deliver(world, portal, main_url, onappinstall_payload(world, portal, user_id))
    for url in dict.fromkeys(extra):
        if url != main_url:
            deliver(world, portal, url, onappinstall_payload(world, portal, user_id))
    return status


def uninstall(world: World, portal: str, clean: bool = False) -> list[int]:
    """Returns the HTTP status of every ONAPPUNINSTALL delivery (one per bound handler)."""
    """Revoke the app's tokens on ``portal``, drop its bindings, push ONAPPUNINSTALL.

    Placements and event handlers go away with the app (RD settings/app-uninstallation.md);
    ONAPPUNINSTALL reaches every handler bound for it via event.bind.
    """
    with world.lock:
        p = world.portal(portal)
        targets = [r["handler"] for r in p.events if r["event"] == "ONAPPUNINSTALL"]
        payload = onappuninstall_payload(world, portal, clean)
        world.revoke_portal(portal)
        p.placements = []
        p.events = []
        p.installed = False
    return [deliver(world, portal, url, payload) for url in dict.fromkeys(targets)]
