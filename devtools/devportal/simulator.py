"""``Simulator``: the Python API that starts, drives and stops the simulated Bitrix24.

Owns process-level wiring: builds the world, the OAuth server app (with the
``/_sim/`` control API) and one app per portal, binds them to loopback ports in
background threads, and exposes the operations tests, benchmarks and the demo
runner need.  Everything else is delegated to the modules that own it.
"""

from __future__ import annotations

import contextlib
import copy
from collections.abc import Iterable
from typing import Any

from . import frames, lifecycle
from .control import create_control_blueprint
from .data import SAMPLE_LEAD_KINDS
from .faults import Fault
from .oauth_server import create_oauth_app
from .params import flatten_php
from .portal_app import create_portal_app, record_oauth_request, record_portal_request
from .rest import serialize_lead
from .servers import RecordingMiddleware, ServerThread
from .state import AppRegistration, World


class PortalHandle:
    """Read-only view of one portal's addresses and identity (always current)."""

    def __init__(self, sim: Simulator, name: str) -> None:
        self._sim = sim
        self.name = name

    @property
    def _p(self):
        return self._sim.world.portal(self.name)

    member_id = property(lambda self: self._p.member_id)
    port = property(lambda self: self._p.port)
    domain = property(lambda self: self._p.domain)
    base_url = property(lambda self: self._p.base_url)
    client_endpoint = property(lambda self: self._p.client_endpoint)
    application_token = property(lambda self: self._p.application_token)
    installed = property(lambda self: self._p.installed)
    lang = property(lambda self: self._p.lang)

    def lead_url(self, lead_id: int, user_id: int = 1, lang: str | None = None, tab: str = "") -> str:
        q = f"?user={user_id}&lang={lang or self.lang}" + (f"&tab={tab}" if tab else "")
        return f"{self.base_url}/crm/lead/details/{lead_id}/{q}"

    def __repr__(self) -> str:
        return f"<PortalHandle {self.name} {self.base_url} member_id={self.member_id}>"


class Simulator:
    def __init__(self, app_url: str = "http://127.0.0.1:8000", client_id: str = "local.devportal.leadcard",
                 client_secret: str = "devportal-secret", host: str = "127.0.0.1",
                 portals: Iterable[str] = ("a", "b"), oauth_port: int = 0,
                 portal_ports: Iterable[int] | None = None, scope: str = "crm,placement,user_brief",
                 app_status: str | None = None, version: int = 1, installed: bool = False,
                 seed: str = "leadcard-devportal", install_path: str = "/install", handler_path: str = "/",
                 events_path: str = "/events", redirect_path: str = "/oauth/callback") -> None:
        if host != "127.0.0.1":
            raise ValueError("the simulator binds to 127.0.0.1 only")
        names = list(portals)
        ports = list(portal_ports or [])
        if ports and len(ports) != len(names):
            raise ValueError("portal_ports must list one port per portal")
        status = app_status or ("L" if client_id.startswith("local.") else "F")
        self.app = AppRegistration(client_id=client_id, client_secret=client_secret, app_url=app_url,
                                   scope=scope, version=version, status=status, install_path=install_path,
                                   handler_path=handler_path, events_path=events_path,
                                   redirect_path=redirect_path)
        self.host = host
        self.world = World(self.app, names, host=host, seed=seed, installed=installed)
        self._oauth_port = oauth_port
        self._portal_ports = dict(zip(names, ports, strict=True)) if ports else {n: 0 for n in names}
        self._servers: list[ServerThread] = []
        self._portal_wsgi: dict[str, Any] = {}
        self.portals: dict[str, PortalHandle] = {n: PortalHandle(self, n) for n in names}
        self.started = False

    # --- lifecycle -----------------------------------------------------------------------
    def start(self) -> Simulator:
        if self.started:
            return self
        oauth_app = create_oauth_app(self.world)
        oauth_app.register_blueprint(create_control_blueprint(self))
        oauth_server = ServerThread(RecordingMiddleware(oauth_app, record_oauth_request(self.world)),
                                    self.host, self._oauth_port)
        self.world.oauth_port = oauth_server.port
        self._servers.append(oauth_server.start())
        for name in self.portals:
            wsgi = RecordingMiddleware(create_portal_app(self.world, name), record_portal_request(self.world, name))
            self._portal_wsgi[name] = wsgi
            server = ServerThread(wsgi, self.host, self._portal_ports.get(name, 0))
            self.world.portal(name).port = server.port
            self._servers.append(server.start())
        self.started = True
        return self

    def stop(self) -> None:
        for server in reversed(self._servers):
            with contextlib.suppress(Exception):  # best effort on shutdown
                server.stop()
        self._servers = []
        self.started = False

    def __enter__(self) -> Simulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- addresses ---------------------------------------------------------------------------
    @property
    def oauth_url(self) -> str:
        return self.world.oauth_url

    @property
    def server_endpoint(self) -> str:
        return self.world.server_endpoint

    @property
    def token_url(self) -> str:
        return f"{self.world.oauth_url}/oauth/token/"

    def app_settings(self) -> dict[str, str]:
        """The Lead Card settings that point the app at this simulator (its registration,
        its OAuth server, plain http on loopback). Callers add SECRET_KEY, storage, etc."""
        return {
            "B24_CLIENT_ID": self.app.client_id,
            "B24_CLIENT_SECRET": self.app.client_secret,
            "APP_URL": self.app.app_url.rstrip("/"),
            "B24_OAUTH_URL": self.oauth_url,
            "B24_ALLOW_HTTP": "1",
        }

    def describe(self) -> dict:
        """What ``GET /_sim/portals`` returns."""
        out = {"oauth_url": self.oauth_url, "server_endpoint": self.server_endpoint,
               "app": {"client_id": self.app.client_id, "app_url": self.app.app_url, "scope": self.app.scope,
                       "status": self.app.status}, "portals": []}
        with self.world.lock:
            for name, p in self.world.portals.items():
                out["portals"].append({
                    "name": name, "member_id": p.member_id, "domain": p.domain, "base_url": p.base_url,
                    "client_endpoint": p.client_endpoint, "old_ports": list(p.old_ports),
                    "application_token": p.application_token, "installed": p.installed, "lang": p.lang,
                    "users": {str(uid): {"name": f"{u['NAME']} {u['LAST_NAME']}", "admin": p.is_admin(uid)}
                              for uid, u in p.users.items()},
                    "leads": sorted(p.leads), "placements": len(p.placements), "events": len(p.events),
                })
        return out

    # --- tokens and frames ---------------------------------------------------------------------
    def issue_tokens(self, portal: str, user_id: int = 1) -> dict:
        """A fresh grant for ``user_id``, as the token endpoint would return it."""
        return self.world.token_response(self.world.issue_grant(portal, user_id))

    def authorize_url(self, portal: str, state: str = "", user_id: int = 1) -> str:
        from urllib.parse import urlencode
        q = urlencode({"client_id": self.app.client_id, "state": state, "user": user_id})
        return f"{self.world.portal(portal).base_url}/oauth/authorize/?{q}"

    def placement_request(self, portal: str, user_id: int, lead_id: int | str, lang: str = "en",
                          handler: str | None = None) -> tuple[str, dict]:
        """(url with DOMAIN/PROTOCOL/LANG/APP_SID, form) exactly as Bitrix24 posts a lead tab."""
        url, form, _sid = frames.lead_tab_post(self.world, portal, user_id, lead_id, lang, handler)
        return url, form

    def install_request(self, portal: str, user_id: int = 1, lang: str = "en") -> tuple[str, dict]:
        url, form, _sid = frames.install_post(self.world, portal, user_id, lang)
        return url, form

    def app_request(self, portal: str, user_id: int = 1, lang: str = "en") -> tuple[str, dict]:
        url, form, _sid = frames.app_page_post(self.world, portal, user_id, lang)
        return url, form

    def onappinstall_form(self, portal: str, user_id: int = 1) -> dict:
        """ONAPPINSTALL as the flat form fields (``auth[access_token]`` ...) that go on the wire."""
        return dict(flatten_php(lifecycle.onappinstall_payload(self.world, portal, user_id)))

    def onappuninstall_form(self, portal: str, clean: bool = False) -> dict:
        return dict(flatten_php(lifecycle.onappuninstall_payload(self.world, portal, clean)))

    def finish_install(self, portal: str, user_id: int = 1) -> int:
        return lifecycle.finish_install(self.world, portal, user_id)

    def uninstall(self, portal: str, clean: bool = False) -> int:
        """Uninstall as an admin would.  Returns the status of the first ONAPPUNINSTALL
        delivery (0 when no handler was bound); all deliveries are in ``stats()["deliveries"]``."""
        statuses = lifecycle.uninstall(self.world, portal, clean)
        return statuses[0] if statuses else 0

    def last_delivered_form(self, portal: str, event: str) -> dict:
        """The exact form of the last ``event`` delivered for ``portal`` (to replay it)."""
        with self.world.lock:
            for name, kind, form in reversed(self.world.delivered_forms):
                if name == portal and kind == event:
                    return dict(form)
        raise KeyError(f"no {event} delivered for portal {portal!r}")

    def bindings(self, portal: str) -> dict:
        """The app's current placement and event bindings on ``portal``."""
        with self.world.lock:
            p = self.world.portal(portal)
            return {"placements": copy.deepcopy(p.placements), "events": copy.deepcopy(p.events)}

    def sample_lead(self, portal: str, kind: str) -> dict:
        """A sample lead as crm.lead.get returns it; kinds in ``data.SAMPLE_LEAD_KINDS``
        (rich, minimal, hostile, private, failed, converted, unknown_user)."""
        kinds = SAMPLE_LEAD_KINDS.get(portal, {})
        if kind not in kinds:
            raise KeyError(f"portal {portal!r} has no sample lead {kind!r}; have {sorted(kinds)}")
        with self.world.lock:
            return serialize_lead(self.world.portal(portal).leads[kinds[kind]])

    def expire_access_token(self, access_token: str) -> None:
        """Expire one access token now (REST answers expired_token; its refresh token still works)."""
        self.world.expire_access_token(access_token)

    def bind_placement(self, portal: str, handler: str | None = None, placement: str = "CRM_LEAD_DETAIL_TAB",
                       title: str = "Lead Card", lang_all: dict | None = None, installed: bool = True) -> None:
        """Shortcut for tests: the binding an installer would create with placement.bind."""
        with self.world.lock:
            p = self.world.portal(portal)
            handler = handler or self.app.url("/placement")
            p.placements = [b for b in p.placements if not (b["placement"] == placement and b["handler"] == handler)]
            p.placements.append({"placement": placement, "userId": 0, "handler": handler, "options": [],
                                 "title": title, "description": "",
                                 "langAll": lang_all or {p.lang: {"TITLE": title, "DESCRIPTION": "", "GROUP_NAME": ""}}})
            if installed:
                p.installed = True

    # --- knobs, faults, counters -------------------------------------------------------------
    def knobs(self, portal: str | None = None, **values: Any) -> dict:
        """Set knobs (globally, or for one portal) and return the effective set."""
        return self.world.set_knobs(portal, **values)

    def set_fault(self, target: str = "*", method: str = "*", kind: str = "error", **spec: Any) -> int:
        """Inject a fault; returns its id.  See ``faults.Fault`` for the fields."""
        if target not in ("*", "oauth") and target not in self.world.portals:
            raise KeyError(f"unknown fault target {target!r}")
        if kind == "hang_after" and target == "oauth":
            raise ValueError("hang_after delays portal REST answers; the OAuth server knows hang")
        return self.world.faults.add(Fault(target=target, method=method, kind=kind, **spec)).id

    def inject_error(self, target: str, method: str, error: str, status: int | None = None,
                     description: str | None = None, count: int | None = 1) -> int:
        return self.set_fault(target, method, "error", error=error, status=status,
                              error_description=description, count=count)

    def set_crm_mode(self, portal: str, mode: int) -> int:
        """Classic (1) or simple (2) CRM for ``portal`` (crm.settings.mode.get)."""
        from .crm_settings import set_mode

        return set_mode(self, portal, mode)

    def clear_faults(self, target: str | None = None) -> int:
        return self.world.faults.clear(target)

    def stats(self) -> dict:
        return self.world.stats()

    def writes(self, portal: str | None = None, method: str | None = None) -> list[dict]:
        """Successful write calls (crm.timeline.comment.add, crm.activity.todo.add,
        crm.activity.update, crm.lead.update, also inside batch), oldest first: dicts with
        ``time``, ``method``, ``portal``, ``user_id`` and ``params`` as received. Cleared by
        ``reset()`` (stats)."""
        with self.world.lock:
            return [copy.deepcopy(w) for w in self.world.writes
                    if (portal is None or w["portal"] == portal)
                    and (method is None or w["method"] == method.lower())]

    def reset_stats(self) -> None:
        self.world.reset_stats()

    def reset(self, stats: bool = True, rate: bool = True, faults: bool = False, knobs: bool = False,
              clock: bool = False, context: bool = False) -> None:
        if context:
            self.reset_context()
        if stats:
            self.world.reset_stats()
        if rate:
            self.world.reset_buckets()
        if faults:
            self.world.faults.clear()
        if knobs:
            self.world.reset_knobs()
        if clock:
            self.world.clock.offset = 0.0

    def edit_lead(self, portal: str, lead_id: int, fields: dict) -> dict:
        """Change a lead as a user of the portal would (DATE_MODIFY moves to now); returns it.

        Only existing scalar fields can be set, so a demo or benchmark cannot build a lead the
        real crm.lead.get would never return.
        """
        with self.world.lock:
            p = self.world.portal(portal)
            lead = p.leads[int(lead_id)]
            for name in fields:  # all checked first: a refused edit changes nothing
                if name not in lead or isinstance(lead[name], (list, dict)):
                    raise ValueError(f"{name} is not a scalar field of lead {lead_id}")
            for name, value in fields.items():
                lead[name] = "" if value is None else str(value)
            lead["DATE_MODIFY"] = self.world.now_iso(p)  # in the portal's offset, as REST shows
            return dict(lead)

    def add_activity(self, portal: str, lead_id: int, subject: str, *, completed: bool = False,
                     deadline_in: float = 86400.0, responsible: int = 1, type_id: int = 6,
                     direction: int = 0) -> dict:
        """An activity added at the portal, as a user would (a to-do by default, due in
        ``deadline_in`` seconds; negative = overdue); it shows in crm.activity.list at once."""
        from .context_data import _activity
        with self.world.lock:
            p = self.world.portal(portal)
            if int(lead_id) not in p.leads:  # checked first: a refused add changes nothing
                raise KeyError(f"no lead {lead_id} on portal {portal!r}")
            new_id = max((int(a["ID"]) for a in p.activities), default=500) + 1
            now = self.world.clock.now()
            provider = {6: ("CRM_TODO", "TODO"), 2: ("VOXIMPLANT_CALL", "CALL"),
                        4: ("CRM_EMAIL", "EMAIL"), 1: ("CRM_MEETING", "MEETING")}[type_id]
            act = _activity(new_id, int(lead_id), type_id=type_id, provider=provider[0],
                            provider_type=provider[1], subject=subject, completed=completed,
                            start=now, deadline=now + deadline_in, responsible=responsible,
                            direction=direction, tz=p.tz)
            p.activities.append(act)
            p.leads[int(lead_id)]["LAST_ACTIVITY_TIME"] = self.world.now_iso(p)
            return dict(act)

    def reset_context(self) -> None:
        """Restore every portal's sample leads, activities, comments and product rows (times
        relative to the clock now), dropping what add_activity / add_comment / edit_lead and the
        write methods (crm_writes) changed."""
        from .context_data import portal_context
        from .data import portal_data
        with self.world.lock:
            for name, p in self.world.portals.items():
                ctx = portal_context(name, self.world.clock.now(), p.tz)
                p.activities, p.comments = ctx["activities"], ctx["comments"]
                p.product_rows = ctx["product_rows"]
                p.leads = {**portal_data(name)["leads"], **ctx["leads"]}

    def add_comment(self, portal: str, lead_id: int, text: str, author: int = 1) -> dict:
        """A timeline comment added at the portal; crm.timeline.comment.list shows it at once."""
        from .context_data import _comment
        with self.world.lock:
            p = self.world.portal(portal)
            if int(lead_id) not in p.leads:
                raise KeyError(f"no lead {lead_id} on portal {portal!r}")
            new_id = max((int(c["ID"]) for c in p.comments), default=700) + 1
            comment = _comment(new_id, int(lead_id), self.world.clock.now(), author, text, p.tz)
            p.comments.append(comment)
            return dict(comment)

    def advance_clock(self, seconds: float) -> None:
        """Move the simulator's clock (token / code expiry) forward without sleeping."""
        self.world.clock.advance(seconds)

    # --- portal moved ------------------------------------------------------------------------
    def move_portal(self, name: str, port: int = 0) -> str:
        """Serve ``name`` on a new port; the old port(s) answer 302 to the new host.

        Token responses, app.info and events report the new client_endpoint/domain.
        Returns the new base URL.
        """
        if not self.started:
            raise RuntimeError("start the simulator first")
        server = ServerThread(self._portal_wsgi[name], self.host, port)
        with self.world.lock:
            p = self.world.portal(name)
            p.old_ports.append(p.port)
            p.port = server.port
        self._servers.append(server.start())
        return self.world.portal(name).base_url
