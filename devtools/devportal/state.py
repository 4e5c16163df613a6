"""The shared in-memory world of the simulator (thread-safe, one lock).

Owns every piece of mutable state: the app registration, the portals with their
CRM data and bindings, OAuth grants and authorization codes, frame sessions
(``APP_SID`` -> who opened what), knobs, faults, rate buckets, a shiftable clock
and the request counters/log.  The HTTP layers (``oauth_server``, ``portal_app``,
``control``) only translate between HTTP and the methods here.

Token rules modelled (settings/oauth/index.md-b.6): access tokens live ``access_ttl``
seconds (3600); refresh tokens 180 days and are single-use; a refresh by default
also retires the access token issued with the old pair (knob
``keep_old_access_on_refresh``); authorization codes live 30 s and are single-use.
"""

from __future__ import annotations

import collections
import hashlib
import secrets
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from . import data as sample
from .context_data import portal_context
from .envelope import RestError, iso
from .faults import FaultBook, LeakyBucket

# name -> default value.  "portal" knobs may be overridden per portal.
DEFAULT_KNOBS: dict[str, Any] = {
    # portal REST
    "latency": 0.0,                 # seconds added to every REST request
    "method_latency": {},           # {"crm.lead.get": 0.5} extra seconds per REST method
    "rate_limit": True,             # leaky bucket on /rest/ (RD limits.md), ON by default
    "rate_drain": 2.0,              # requests drained per second
    "rate_burst": 50,               # bucket size
    "operation_time_limit": [],     # methods answering 429 OPERATION_TIME_LIMIT
    "frame_fields": "current",      # "current" | "old": old payloads lack SERVER_ENDPOINT,
                                    # APPLICATION_TOKEN, APPLICATION_SCOPE (api-reference/widgets/_includes/widget_data.md)
    "placement_options_uri": False, # add "URI" to PLACEMENT_OPTIONS like current portals
    # OAuth server
    "oauth_latency": 0.0,           # seconds before the token endpoint / app.info answer
    "access_ttl": 3600,
    "refresh_ttl": 180 * 86400,
    "code_ttl": 30,
    "keep_old_access_on_refresh": False,
    "refresh_single_use": True,
    "token_scope": None,            # e.g. "app" to mimic the real capture in issue #285
    # pushes to the app
    "onappinstall_shape": "phpsdk", # "phpsdk" (PHPSDK fixture keys) | "docs" (RD example keys)
    "event_timeout": 10.0,          # seconds the portal waits for the app's event handler
}
PORTAL_KNOBS = {"latency", "method_latency", "rate_limit", "rate_drain", "rate_burst",
                "operation_time_limit", "frame_fields", "placement_options_uri"}


def _token() -> str:
    # Real tokens are opaque; current ones look like 64-70 hex chars (api-reference/widgets/_includes/widget_data.md).
    return secrets.token_hex(35)


def member_id_for(seed: str, name: str) -> str:
    return hashlib.md5(f"{seed}:{name}".encode(), usedforsecurity=False).hexdigest()


class Clock:
    """Wall clock with an adjustable offset, so tests can expire tokens without sleeping."""

    def __init__(self) -> None:
        self.offset = 0.0

    def now(self) -> float:
        return time.time() + self.offset

    def advance(self, seconds: float) -> None:
        self.offset += seconds


@dataclass
class AppRegistration:
    client_id: str
    client_secret: str
    app_url: str
    scope: str = "crm,placement,user_brief"
    version: int = 1
    status: str = "F"
    install_path: str = "/install"
    handler_path: str = "/"
    events_path: str = "/events"
    redirect_path: str = "/oauth/callback"

    def url(self, path: str) -> str:
        return self.app_url.rstrip("/") + (path if path.startswith("/") else "/" + path)

    @property
    def scopes(self) -> set[str]:
        return {s.strip() for s in self.scope.replace(" ", ",").split(",") if s.strip()} | {"basic"}


@dataclass
class Grant:
    access_token: str
    refresh_token: str
    portal: str
    user_id: int
    issued_at: float
    expires_at: float
    refresh_expires_at: float
    scope: str
    access_retired: bool = False   # superseded by a refresh
    refresh_used: bool = False
    revoked: bool = False          # app uninstalled


@dataclass
class Portal:
    name: str
    member_id: str
    host: str
    port: int = 0
    old_ports: list[int] = field(default_factory=list)
    title: str = ""
    lang: str = "en"
    tz: int = 0
    users: dict = field(default_factory=dict)
    rights: dict = field(default_factory=dict)
    leads: dict = field(default_factory=dict)
    companies: dict = field(default_factory=dict)
    contacts: dict = field(default_factory=dict)
    deals: dict = field(default_factory=dict)
    activities: list = field(default_factory=list)   # context_data: crm.activity.list
    comments: list = field(default_factory=list)     # crm.timeline.comment.list
    product_rows: dict = field(default_factory=dict)  # lead id -> crm.item.productrow.list rows
    statuses: dict = field(default_factory=dict)
    currencies: list = field(default_factory=list)
    lead_fields: dict = field(default_factory=dict)
    installed: bool = False
    application_token: str = ""
    placements: list = field(default_factory=list)
    events: list = field(default_factory=list)
    knobs: dict = field(default_factory=dict)
    bucket: LeakyBucket = field(default_factory=LeakyBucket)
    operating: dict = field(default_factory=dict)
    crm_mode: int = 1              # crm.settings.mode.get (crm_settings.py): 1 classic, 2 simple
    stage_required: dict = field(default_factory=dict)  # lead stage -> fields it requires (crm_writes)

    @property
    def domain(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def base_url(self) -> str:
        return f"http://{self.domain}"

    @property
    def client_endpoint(self) -> str:
        return f"{self.base_url}/rest/"

    def is_admin(self, user_id: int) -> bool:
        return self.rights.get(int(user_id)) == "admin"

    def can_read(self, user_id: int, record: dict) -> bool:
        """Sales reps read what is assigned to them or OPENED=Y; admins read all."""
        if self.is_admin(user_id):
            return True
        return record.get("ASSIGNED_BY_ID") == str(user_id) or record.get("OPENED") == "Y"

    def can_edit(self, user_id: int, record: dict) -> bool:
        """Sales reps edit only what is assigned to them (OPENED=Y lets them read, not edit);
        admins edit all."""
        if self.is_admin(user_id):
            return True
        return record.get("ASSIGNED_BY_ID") == str(user_id)


def _portal_counters() -> dict:
    return {"http_requests": 0, "rest_requests": 0, "by_port": collections.Counter(), "rest_methods": collections.Counter(),
            "batch_commands": collections.Counter(), "statuses": collections.Counter(),
            "rate_limited": 0, "redirects": 0, "dropped": 0, "pages": 0}


def _oauth_counters() -> dict:
    return {"http_requests": 0, "token": collections.Counter(), "token_rotated": 0,
            "token_aborted": 0, "app_info": 0, "statuses": collections.Counter(), "control": 0}


class OAuthError(Exception):
    def __init__(self, code: str, status: int | None = None, description: str | None = None):
        self.code = code
        self.status = status
        self.description = description
        super().__init__(code)


class World:
    def __init__(self, app: AppRegistration, portal_names: list[str], host: str = "127.0.0.1",
                 seed: str = "leadcard-devportal", installed: bool = False) -> None:
        self.lock = threading.RLock()
        self.app = app
        self.host = host
        self.oauth_port = 0
        self.clock = Clock()
        self.faults = FaultBook()
        self.knobs: dict[str, Any] = dict(DEFAULT_KNOBS)
        self.portals: dict[str, Portal] = {}
        for name in portal_names:
            d = sample.portal_data(name)
            p = Portal(name=name, member_id=member_id_for(seed, name), host=host, title=d["title"],
                       lang=d["lang"], tz=d["tz"], users=d["users"], rights=d["rights"],
                       leads=d["leads"], companies=d["companies"], contacts=d["contacts"],
                       statuses=d["statuses"], currencies=d["currencies"],
                       lead_fields=d["lead_fields"], installed=installed,
                       application_token=secrets.token_hex(16),
                       stage_required=d.get("stage_required", {}))
            ctx = portal_context(name, self.clock.now(), d["tz"])
            p.leads.update(ctx["leads"])
            p.contacts.update(ctx["contacts"])
            p.companies.update(ctx["companies"])
            p.deals, p.activities = ctx["deals"], ctx["activities"]
            p.comments, p.product_rows = ctx["comments"], ctx["product_rows"]
            self.portals[name] = p
        self.grants_by_access: dict[str, Grant] = {}
        self.grants_by_refresh: dict[str, Grant] = {}
        self.codes: dict[str, dict] = {}
        self.frames: dict[str, dict] = {}
        self._handler_ids = iter(range(1, 1_000_000))
        self._reset_counters()

    # --- addresses -------------------------------------------------------------------------
    @property
    def oauth_host(self) -> str:
        return f"{self.host}:{self.oauth_port}"

    @property
    def oauth_url(self) -> str:
        return f"http://{self.oauth_host}"

    @property
    def server_endpoint(self) -> str:
        return f"{self.oauth_url}/rest/"

    def portal(self, name: str) -> Portal:
        try:
            return self.portals[name]
        except KeyError:
            raise KeyError(f"no portal named {name!r}; have {sorted(self.portals)}") from None

    def portal_by_member(self, member_id: str) -> Portal | None:
        for p in self.portals.values():
            if p.member_id == member_id:
                return p
        return None

    def next_handler_id(self) -> int:
        with self.lock:
            return next(self._handler_ids)

    # --- knobs -----------------------------------------------------------------------------
    def knob(self, name: str, portal: str | None = None) -> Any:
        with self.lock:
            if portal is not None and name in self.portals[portal].knobs:
                return self.portals[portal].knobs[name]
            return self.knobs[name]

    def set_knobs(self, portal: str | None = None, **values: Any) -> dict:
        unknown = set(values) - set(DEFAULT_KNOBS)
        if unknown:
            raise ValueError(f"unknown knob(s) {sorted(unknown)}; known: {sorted(DEFAULT_KNOBS)}")
        with self.lock:
            if portal is None:
                self.knobs.update(values)
                return dict(self.knobs)
            bad = set(values) - PORTAL_KNOBS
            if bad:
                raise ValueError(f"knob(s) {sorted(bad)} are global only")
            self.portal(portal).knobs.update(values)
            return {**self.knobs, **self.portal(portal).knobs}

    def reset_knobs(self) -> None:
        with self.lock:
            self.knobs = dict(DEFAULT_KNOBS)
            for p in self.portals.values():
                p.knobs = {}
                p.crm_mode = 1  # a portal setting like the knobs: back to classic CRM

    # --- grants ----------------------------------------------------------------------------
    def issue_grant(self, portal: str, user_id: int) -> Grant:
        with self.lock:
            p = self.portal(portal)
            if int(user_id) not in p.users:
                raise KeyError(f"portal {portal!r} has no user {user_id}")
            now = self.clock.now()
            g = Grant(access_token=_token(), refresh_token=_token(), portal=portal,
                      user_id=int(user_id), issued_at=now,
                      expires_at=now + float(self.knobs["access_ttl"]),
                      refresh_expires_at=now + float(self.knobs["refresh_ttl"]),
                      scope=self.app.scope)
            self.grants_by_access[g.access_token] = g
            self.grants_by_refresh[g.refresh_token] = g
            return g

    def token_response(self, g: Grant) -> dict:
        """Body of a successful token-endpoint answer (payloads/token_refresh_response.docs.json).

        ``domain`` is the OAuth server host, not the portal (RD settings/oauth/index.md).
        """
        with self.lock:
            p = self.portal(g.portal)
            scope = self.knobs["token_scope"] or g.scope
            return {
                "access_token": g.access_token,
                "expires": int(g.expires_at),
                "expires_in": int(round(g.expires_at - g.issued_at)),
                "scope": scope,
                "domain": self.oauth_host,
                "server_endpoint": self.server_endpoint,
                "status": self.app.status,
                "client_endpoint": p.client_endpoint,
                "member_id": p.member_id,
                "user_id": g.user_id,
                "refresh_token": g.refresh_token,
            }

    def refresh(self, refresh_token: str) -> Grant:
        """Rotate a pair.  Raises OAuthError(invalid_grant / NOT_INSTALLED)."""
        with self.lock:
            old = self.grants_by_refresh.get(refresh_token)
            if old is None:
                raise OAuthError("invalid_grant")
            if old.revoked:
                # Grant revoked by an uninstall.  Evidence for the real answer is thin
                # (PYSDK knows NOT_INSTALLED "Application not installed", 401).
                raise OAuthError("NOT_INSTALLED")
            if old.refresh_used and self.knobs["refresh_single_use"]:
                raise OAuthError("invalid_grant")
            if self.clock.now() > old.refresh_expires_at:
                raise OAuthError("invalid_grant")
            old.refresh_used = True
            if not self.knobs["keep_old_access_on_refresh"]:
                old.access_retired = True
            return self.issue_grant(old.portal, old.user_id)

    def new_code(self, portal: str, user_id: int) -> str:
        with self.lock:
            code = secrets.token_hex(16)
            self.codes[code] = {"portal": portal, "user_id": int(user_id),
                                "expires_at": self.clock.now() + float(self.knobs["code_ttl"]),
                                "used": False}
            return code

    def redeem_code(self, code: str) -> Grant:
        with self.lock:
            entry = self.codes.get(code)
            if entry is None or entry["used"] or self.clock.now() > entry["expires_at"]:
                raise OAuthError("invalid_grant")
            entry["used"] = True
            if not self.portal(entry["portal"]).installed:
                raise OAuthError("NOT_INSTALLED")
            return self.issue_grant(entry["portal"], entry["user_id"])

    def check_access(self, token: str | None, portal: str | None) -> Grant:
        """Validate an access token for REST on ``portal`` (None = the OAuth server)."""
        if not token:
            raise RestError("NO_AUTH_FOUND")
        with self.lock:
            g = self.grants_by_access.get(token)
            if g is None or g.revoked or (portal is not None and g.portal != portal):
                raise RestError("invalid_token")
            # A token superseded by a refresh is answered like an expired one, so a
            # client that refreshes once on expired_token recovers (real behaviour of a
            # retired access token is not documented).
            if g.access_retired or self.clock.now() > g.expires_at:
                raise RestError("expired_token")
            return g

    def expire_access_token(self, token: str) -> None:
        """Make one access token expired now (its refresh token stays valid)."""
        with self.lock:
            g = self.grants_by_access.get(token)
            if g is None:
                raise KeyError("unknown access token")
            g.expires_at = self.clock.now() - 1

    def revoke_portal(self, portal: str) -> int:
        with self.lock:
            n = 0
            for g in self.grants_by_access.values():
                if g.portal == portal and not g.revoked:
                    g.revoked = True
                    n += 1
            return n

    # --- frames ----------------------------------------------------------------------------
    def new_frame(self, **ctx: Any) -> str:
        with self.lock:
            sid = secrets.token_hex(16)
            self.frames[sid] = dict(ctx, created=time.time())
            if len(self.frames) > 5000:  # benchmarks open many frames; keep the newest
                for old in list(self.frames)[:1000]:
                    del self.frames[old]
            return sid

    def frame(self, app_sid: str) -> dict | None:
        with self.lock:
            return self.frames.get(app_sid)

    # --- counters --------------------------------------------------------------------------
    def _reset_counters(self) -> None:
        self.counters = {name: _portal_counters() for name in self.portals}
        self.oauth_counters = _oauth_counters()
        self.deliveries: list[dict] = []
        self.delivered_forms: list[tuple[str, str, dict]] = []  # (portal, event, form), last 50
        self.log: collections.deque = collections.deque(maxlen=5000)
        self.frame_events: list[dict] = []
        self.writes: list[dict] = []  # successful write calls (crm_writes), oldest first

    def reset_stats(self) -> None:
        with self.lock:
            self._reset_counters()

    def reset_buckets(self) -> None:
        with self.lock:
            for p in self.portals.values():
                p.bucket.reset()
                p.operating = {}

    def record(self, *, server: str, port: int, path: str, status: Any, method: str | None = None,
               sub_methods: list[str] | None = None, kind: str = "rest") -> None:
        """One HTTP request.  ``path`` never carries the query string (it may hold tokens)."""
        with self.lock:
            entry = {"time": time.time(), "server": server, "host": f"{self.host}:{port}",
                     "path": path, "rest_method": method, "status": status}
            if sub_methods:
                entry["batch"] = list(sub_methods)
            self.log.append(entry)
            if server == "oauth":
                c = self.oauth_counters
                c["http_requests"] += 1
                c["statuses"][str(status)] += 1
                return
            c = self.counters[server]
            c["http_requests"] += 1
            c["by_port"][str(port)] += 1
            c["statuses"][str(status)] += 1
            if status == 302:
                c["redirects"] += 1
            if status == "dropped":
                c["dropped"] += 1
            if kind == "page":
                c["pages"] += 1
            else:
                c["rest_requests"] += 1
            if method:
                c["rest_methods"][method] += 1
            for m in sub_methods or []:
                c["batch_commands"][m] += 1

    def stats(self) -> dict:
        with self.lock:
            def plain(d: dict) -> dict:
                return {k: (dict(v) if isinstance(v, collections.Counter) else v) for k, v in d.items()}
            return {
                # shortcuts: REST HTTP requests over all portals, token calls by grant_type
                "rest_requests": sum(c["rest_requests"] for c in self.counters.values()),
                "token_calls": dict(self.oauth_counters["token"]),
                "portals": {n: plain(c) for n, c in self.counters.items()},
                "oauth": plain(self.oauth_counters),
                "deliveries": list(self.deliveries),
                "frame_events": list(self.frame_events),
                "log": list(self.log),
            }

    # --- misc ------------------------------------------------------------------------------
    def now_iso(self, portal: Portal) -> str:
        return iso(self.clock.now(), portal.tz)
