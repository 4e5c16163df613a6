"""A fake Bitrix24 behind the app's `http.Transport`: portals, the OAuth server, no sockets.

`FakeBitrix24.post` answers what Lead Card sends — portal REST methods and `batch` (with
`$result[…]` back-references), the OAuth server's token endpoint and `app.info` — from a
small in-memory world, in the wire shapes the real services use (JSON envelopes with
`error`/`error_description`, 401 for token errors, 302 from a moved portal). Every request
is recorded (`requests`, `portal_methods()`), and faults can be queued per method
(`fail`): an error envelope, a bare 5xx page, a redirect, or a transport failure.

The integration tests run the same flows against the HTTP simulator in devtools/devportal;
these fakes keep the unit tests in milliseconds.
"""

from __future__ import annotations

import itertools
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from leadcard.bitrix24.http import ConnectFailed, ReadTimedOut, Reply
from leadcard.bitrix24.payloads import unflatten
from leadcard.core.config import Settings
from leadcard.core.grant import Grant

OAUTH_URL = "https://oauth.fake.test"
CLIENT_ID = "app.fake0000000001"
CLIENT_SECRET = "fake-client-secret-0123456789abcdef"


@dataclass
class FakePortal:
    name: str
    member_id: str
    endpoint: str
    admins: set[int] = field(default_factory=lambda: {1})
    leads: dict[int, dict[str, Any]] = field(default_factory=dict)
    readers: dict[int, set[int]] = field(default_factory=dict)  # lead id -> users allowed
    users: dict[str, dict[str, Any]] = field(default_factory=dict)
    companies: dict[str, dict[str, Any]] = field(default_factory=dict)
    contacts: dict[str, dict[str, Any]] = field(default_factory=dict)
    placements: list[dict[str, Any]] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)
    installed: bool = True
    old_endpoints: set[str] = field(default_factory=set)
    crm_mode: Any = 1  # crm.settings.mode.get: 1 classic CRM, 2 simple CRM (no leads)

    @property
    def domain(self) -> str:
        return urlsplit(self.endpoint).hostname or ""


@dataclass
class Token:
    portal: FakePortal
    user_id: int
    expired: bool = False
    spent: bool = False  # refresh tokens: single use


@dataclass
class Sent:
    """One recorded request: where it went and what it carried (decoded)."""

    url: str
    method: str          # REST method, "token" or "app.info" (OAuth server)
    params: dict[str, Any]
    oauth: bool          # to the OAuth server, not a portal


@dataclass
class Fault:
    method: str
    times: int
    status: int = 500
    error: str | None = None          # an error envelope with this code
    body: bytes | None = None         # a raw body (e.g. an HTML 502 page)
    location: str | None = None       # answer 302 with this Location
    raises: type[Exception] | None = None
    headers: dict[str, str] = field(default_factory=dict)


class FakeBitrix24:
    """The fake transport (see module docstring)."""

    def __init__(self) -> None:
        self.portals: dict[str, FakePortal] = {}
        self.access: dict[str, Token] = {}
        self.refresh: dict[str, Token] = {}
        self.codes: dict[str, Token] = {}
        self.requests: list[Sent] = []
        self.timeouts: list[tuple[float, float]] = []
        self._faults: list[Fault] = []
        self._serial = itertools.count(1)

    # --- the world --------------------------------------------------------------------

    def add_portal(self, name: str, *, leads: dict[int, dict[str, Any]] | None = None,
                   users: dict[str, dict[str, Any]] | None = None) -> FakePortal:
        portal = FakePortal(name=name, member_id=f"member{name}" + "0" * 24,
                            endpoint=f"https://{name}.bitrix24.fake.test/rest/",
                            leads=dict(leads or {}), users=dict(users or {}))
        self.portals[portal.member_id] = portal
        return portal

    def issue(self, portal: FakePortal, user_id: int = 1) -> tuple[str, str]:
        """A fresh access + refresh pair for `user_id` on `portal`."""
        n = next(self._serial)
        access, refresh = f"access{n:04d}{portal.name}" + "a" * 24, f"refresh{n:04d}" + "r" * 24
        self.access[access] = Token(portal, user_id)
        self.refresh[refresh] = Token(portal, user_id)
        return access, refresh

    def code(self, portal: FakePortal, user_id: int = 1) -> str:
        code = f"code{next(self._serial):04d}" + "c" * 16
        self.codes[code] = Token(portal, user_id)
        return code

    def grant(self, portal: FakePortal, user_id: int = 1, expires_in: float = 3600) -> Grant:
        """A grant as the store keeps it, for seeding the store."""
        access, refresh = self.issue(portal, user_id)
        return Grant(access_token=access, refresh_token=refresh,
                     expires_at=time.time() + expires_in, member_id=portal.member_id,
                     client_endpoint=portal.endpoint, server_endpoint=OAUTH_URL + "/rest/",
                     scope="crm,placement,user_brief", status="F", user_id=user_id)

    def expire(self, access_token: str) -> None:
        self.access[access_token].expired = True

    def move(self, portal: FakePortal, new_endpoint: str) -> None:
        """The portal now lives at `new_endpoint`; the old address answers 302."""
        portal.old_endpoints.add(portal.endpoint)
        portal.endpoint = new_endpoint

    def uninstall(self, portal: FakePortal) -> None:
        """The app is removed: every token of the portal is refused from now on."""
        portal.installed = False
        for book in (self.access, self.refresh):
            for token in list(book):
                if book[token].portal is portal:
                    del book[token]

    def fail(self, method: str, *, times: int = 1, **fault: Any) -> None:
        """Answer the next `times` requests for `method` with a fault (see `Fault`)."""
        self._faults.append(Fault(method=method, times=times, **fault))

    # --- what was sent ----------------------------------------------------------------

    def portal_methods(self) -> list[str]:
        return [r.method for r in self.requests if not r.oauth]

    def oauth_methods(self) -> list[str]:
        return [r.method for r in self.requests if r.oauth]

    # --- the transport ----------------------------------------------------------------

    def post(self, url: str, body: bytes, headers: Any, *,
             connect_timeout: float, read_timeout: float) -> Reply:
        self.timeouts.append((connect_timeout, read_timeout))
        oauth = url.startswith(OAUTH_URL + "/")
        if oauth:
            params: dict[str, Any] = dict(parse_qsl(body.decode()))
            method = "token" if "/oauth/token" in url else url.rsplit("/", 1)[-1]
        else:
            params = json.loads(body)
            method = url.rsplit("/", 1)[-1]
        self.requests.append(Sent(url=url, method=method, params=params, oauth=oauth))
        fault = self._take_fault(method)
        if fault is not None:
            return self._faulty(fault)
        if oauth:
            return self._token(params) if method == "token" else self._app_info(params)
        return self._rest(url, method, params)

    def _take_fault(self, method: str) -> Fault | None:
        for fault in self._faults:
            if fault.method == method and fault.times > 0:
                fault.times -= 1
                return fault
        return None

    @staticmethod
    def _faulty(fault: Fault) -> Reply:
        if fault.raises is not None:
            raise fault.raises()
        if fault.location is not None:
            return Reply(302, {"location": fault.location}, b"")
        if fault.error is not None:
            return _json(fault.status, {"error": fault.error, "error_description": "injected"},
                         fault.headers)
        return Reply(fault.status, dict(fault.headers),
                     fault.body if fault.body is not None else b"<html>502 Bad Gateway</html>")

    # --- the OAuth server -------------------------------------------------------------

    def _token(self, form: dict[str, str]) -> Reply:
        if form.get("client_id") != CLIENT_ID or form.get("client_secret") != CLIENT_SECRET:
            return _json(401, {"error": "invalid_client"})
        if form.get("grant_type") == "refresh_token":
            old = self.refresh.get(form.get("refresh_token", ""))
            if old is None or old.spent:
                return _json(400, {"error": "invalid_grant"})
            old.spent = True
        elif form.get("grant_type") == "authorization_code":
            old = self.codes.pop(form.get("code", ""), None)
            if old is None:
                return _json(400, {"error": "invalid_grant"})
        else:
            return _json(400, {"error": "invalid_request"})
        portal = old.portal
        access, refresh = self.issue(portal, old.user_id)
        return _json(200, {
            "access_token": access, "refresh_token": refresh, "expires_in": 3600,
            "expires": int(time.time()) + 3600, "scope": "crm,placement,user_brief",
            "domain": "oauth.fake.test", "server_endpoint": OAUTH_URL + "/rest/",
            "status": "F", "client_endpoint": portal.endpoint, "member_id": portal.member_id,
            "user_id": old.user_id,
        })

    def _app_info(self, form: dict[str, str]) -> Reply:
        token, error = self._auth(form.get("auth", ""))
        if error is not None:
            return error
        assert token is not None
        portal = token.portal
        return _json(200, {"result": {
            "client_id": CLIENT_ID, "scope": "crm,placement,user_brief",
            "user_id": token.user_id,
            "install": {"installed": portal.installed, "member_id": portal.member_id,
                        "domain": portal.domain, "client_endpoint": portal.endpoint,
                        "scope": "crm,placement,user_brief", "status": "F"},
        }})

    def _auth(self, access_token: str) -> tuple[Token | None, Reply | None]:
        token = self.access.get(access_token)
        if token is None:
            return None, _json(401, {"error": "invalid_token",
                                     "error_description": "The access token provided is invalid."})
        if token.expired:
            return None, _json(401, {"error": "expired_token",
                                     "error_description": "The access token provided has expired."})
        return token, None

    # --- portals ----------------------------------------------------------------------

    def _rest(self, url: str, method: str, params: dict[str, Any]) -> Reply:
        endpoint = url[: len(url) - len(method)]
        portal = next((p for p in self.portals.values()
                       if endpoint in (p.endpoint, *p.old_endpoints)), None)
        if portal is None:
            return Reply(404, {}, b"no such portal")
        if endpoint != portal.endpoint:
            # A moved portal redirects; its Location is not to be trusted.
            return Reply(302, {"location": "https://elsewhere.fake.test/rest/" + method}, b"")
        token, error = self._auth(str(params.pop("auth", "")))
        if error is not None:
            return error
        assert token is not None
        if token.portal is not portal:
            return _json(401, {"error": "invalid_token", "error_description": "wrong portal"})
        if method == "batch":
            return _json(200, {"result": self._batch(portal, token, params.get("cmd") or {})})
        outcome = self._method(portal, token, method, params)
        if isinstance(outcome, _Error):
            return _json(outcome.status, {"error": outcome.code,
                                          "error_description": outcome.description})
        return _json(200, {"result": outcome, "time": {}})

    def _batch(self, portal: FakePortal, token: Token, cmd: dict[str, str]) -> dict[str, Any]:
        results: dict[str, Any] = {}
        failures: dict[str, Any] = {}
        for key, command in cmd.items():
            method, _, query = command.partition("?")
            params = _resolve(unflatten(dict(parse_qsl(query, keep_blank_values=True))), results)
            outcome = self._method(portal, token, method, params)
            if isinstance(outcome, _Error):
                failures[key] = {"error": outcome.code, "error_description": outcome.description}
            else:
                results[key] = outcome
        return {"result": results, "result_error": failures or [], "result_total": [],
                "result_next": [], "result_time": {}}

    def _method(self, portal: FakePortal, token: Token, method: str,
                params: dict[str, Any]) -> Any:
        user = token.user_id
        if method == "profile":
            return {"ID": str(user), "ADMIN": user in portal.admins, "NAME": f"User {user}"}
        if method == "crm.lead.get":
            lead_id = _int(params.get("id"))
            lead = portal.leads.get(lead_id)
            if lead is None:
                return _Error(400, "", "Not found")
            if user not in portal.readers.get(lead_id, {user}):
                return _Error(403, "", "Access denied.")
            return dict(lead)
        if method == "crm.lead.fields":
            return {"ID": {"type": "integer", "title": "ID"},
                    "TITLE": {"type": "string", "title": "Lead name"}}
        if method == "crm.status.list":
            entity = (params.get("filter") or {}).get("ENTITY_ID")
            return [{"ENTITY_ID": entity, "STATUS_ID": "NEW", "NAME": "New", "SORT": "10"}]
        if method == "crm.currency.list":
            return [{"CURRENCY": "USD", "BASE": "Y"}]
        if method == "user.get":
            wanted = _values((params.get("FILTER") or {}).get("ID"))
            return [portal.users[u] for u in wanted if u in portal.users]
        if method in ("crm.company.get", "crm.contact.get"):
            book = portal.companies if method == "crm.company.get" else portal.contacts
            entity = book.get(str(params.get("id") or ""))
            return entity if entity is not None else _Error(400, "", "Not found")
        if method in ("placement.get", "event.get"):
            return list(portal.placements if method == "placement.get" else portal.events)
        if method == "placement.bind":
            portal.placements.append({"placement": params["PLACEMENT"],
                                      "handler": params["HANDLER"], "title": params["TITLE"]})
            return True
        if method == "event.bind":
            portal.events.append({"event": params["event"], "handler": params["handler"]})
            return True
        if method == "app.info":
            return {"ID": 1, "CODE": CLIENT_ID, "INSTALLED": portal.installed}
        if method == "crm.settings.mode.get":
            return portal.crm_mode
        return _Error(404, "ERROR_METHOD_NOT_FOUND", "Method not found!")


@dataclass
class _Error:
    status: int
    code: str
    description: str


def _json(status: int, payload: Any, headers: dict[str, str] | None = None) -> Reply:
    return Reply(status, {"content-type": "application/json", **(headers or {})},
                 json.dumps(payload).encode())


def _resolve(value: Any, results: dict[str, Any]) -> Any:
    """Batch back-references: `$result[lead][COMPANY_ID]` → that field of the lead's result."""
    if isinstance(value, dict):
        return {k: _resolve(v, results) for k, v in value.items()}
    if isinstance(value, str) and value.startswith("$result["):
        node: Any = results
        for part in value[len("$result"):].strip("[]").split("]["):
            node = node.get(part) if isinstance(node, dict) else None
        return node
    return value


def _values(value: Any) -> list[str]:
    if isinstance(value, dict):
        value = list(value.values())
    if not isinstance(value, list):
        value = [value]
    return [str(v) for v in value if v not in (None, "", "0")]


def _int(value: Any) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return 0


def fake_settings(tmp_path: Path, **overrides: Any) -> Settings:
    """Settings for an app instance talking to the fake (SQLite in `tmp_path`)."""
    values: dict[str, Any] = dict(
        client_id=CLIENT_ID, client_secret=CLIENT_SECRET,
        app_url="https://leadcard.fake.test", oauth_url=OAUTH_URL,
        database_url=f"sqlite:///{tmp_path}/leadcard.sqlite3",
        secret_key="unit-test-secret-key-" + "s" * 24, allow_http=False,
        instance_path=str(tmp_path / "instance"),
    )
    values.update(overrides)
    return Settings(**values)


_MIGRATED: dict[str, bytes] = {}  # one migrated empty database per test process


def _migrated_database() -> bytes:
    """An empty SQLite database at the head revision, migrated once and then copied: the
    migrations cost more than a whole flow test."""
    if "db" not in _MIGRATED:
        import tempfile

        from leadcard.storage import db

        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "template.sqlite3"
            engine = db.make_engine(f"sqlite:///{path}")
            db.upgrade(engine)
            engine.dispose()
            _MIGRATED["db"] = path.read_bytes()
    return _MIGRATED["db"]


def fake_services(tmp_path: Path, fake: FakeBitrix24, **overrides: Any):  # type: ignore[no-untyped-def]
    """A full `Services` over the fake transport, on a fresh migrated SQLite database."""
    from leadcard.flows.services import build_services

    settings = fake_settings(tmp_path, **overrides)
    (tmp_path / "instance").mkdir(exist_ok=True)
    (tmp_path / "leadcard.sqlite3").write_bytes(_migrated_database())
    return build_services(settings, transport=fake)


class FakeBucket:
    """A rate-limit bucket that always has a slot and records pauses (rest.py's contract)."""

    def __init__(self) -> None:
        self.pauses: list[tuple[str, float]] = []

    def acquire(self, key: str, max_wait: float) -> float:
        return 0.0

    def paused(self, key: str) -> float:
        return 0.0

    def pause(self, key: str, seconds: float) -> None:
        self.pauses.append((key, seconds))


__all__ = ["FakeBitrix24", "FakeBucket", "FakePortal", "ConnectFailed", "ReadTimedOut",
           "fake_services", "fake_settings", "OAUTH_URL", "CLIENT_ID", "CLIENT_SECRET"]
