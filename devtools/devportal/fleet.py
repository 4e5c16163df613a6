"""A fleet of generated portals behind one server: the load `portals check|renew` meets.

The full simulator (simulator.py) runs one werkzeug server per portal, which is right for a
few portals with install flows, frames and CRM data, and wrong for 10,000 (10,000 ports and
threads). ``Fleet`` hosts N generated portals on one threaded loopback server:

- ``POST /p/<n>/rest/<method>`` — a portal's REST (only ``app.info`` has a body; any other
  method answers ``{"result": true}``), JSON body with ``auth``, as Bitrix24 accepts it;
- ``POST /oauth/token/`` — ``grant_type=refresh_token`` rotates the pair (the OAuth server
  every portal shares, settings/oauth/index.md);

each answer after ``latency`` seconds (the default 50 ms is a far region's round trip).
Faults per portal (``Fleet.fault(n, kind)``): ``revoked`` (REST says ``expired_token``,
the refresh is refused with ``invalid_grant``), ``not_installed`` (``APPLICATION_NOT_FOUND``,
HTTP 401), ``down`` (an HTML 503 from a front proxy, every time), ``limit``
(``QUERY_LIMIT_EXCEEDED``, HTTP 503, once). ``seed(store)`` writes every portal's grant into
an app's portal store, as a finished install would. Counters: ``requests``, ``refreshes``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import parse_qsl

from .servers import ServerThread

FAULTS = ("revoked", "not_installed", "down", "limit")


class Fleet:
    """N generated portals and their OAuth server on one loopback port (see module doc)."""

    def __init__(self, portals: int, latency: float = 0.05, client_id: str = "local.fleet.leadcard",
                 client_secret: str = "fleet-secret", seed: str = "leadcard-fleet",
                 url: str | None = None) -> None:
        """`seed` makes the tokens reproducible, so a fleet served by another process
        (`python -m devtools.devportal.fleet`) can be seeded from a twin built here with
        that process's `url` (not started)."""
        self.size = portals
        self._seed = seed
        self._generation: Counter[int] = Counter()
        self._fixed_url = url
        self.latency = latency
        self.client_id, self.client_secret = client_id, client_secret
        self._lock = threading.Lock()
        self._access: dict[int, str] = {}
        self._refresh: dict[str, int] = {}
        self._faults: dict[int, str] = {}
        self.counters: Counter[str] = Counter()
        self._server: ServerThread | None = None
        for n in range(portals):
            self._issue(n)

    # --- lifecycle ---------------------------------------------------------------------
    def start(self, port: int = 0) -> Fleet:
        self._server = ServerThread(self._wsgi, "127.0.0.1", port).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop()
            self._server = None

    def __enter__(self) -> Fleet:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        if self._fixed_url:
            return self._fixed_url
        if self._server is None:
            raise RuntimeError("the fleet is not started")
        return f"http://127.0.0.1:{self._server.port}"

    def app_settings(self) -> dict[str, str]:
        """The Lead Card settings that point an app at this fleet."""
        return {"B24_CLIENT_ID": self.client_id, "B24_CLIENT_SECRET": self.client_secret,
                "B24_OAUTH_URL": self.url, "B24_ALLOW_HTTP": "1"}

    # --- identities ----------------------------------------------------------------------
    @staticmethod
    def member_id(n: int) -> str:
        return f"fleet{n:027d}"

    def endpoint(self, n: int) -> str:
        return f"{self.url}/p/{n}/rest/"

    def fault(self, n: int, kind: str | None) -> None:
        """Give portal `n` a fault (one of FAULTS), or None to heal it."""
        if kind is not None and kind not in FAULTS:
            raise ValueError(f"unknown fault {kind!r}")
        with self._lock:
            if kind is None:
                self._faults.pop(n, None)
            else:
                self._faults[n] = kind

    def token_response(self, n: int) -> dict[str, Any]:
        with self._lock:
            access = self._access[n]
            refresh = next(r for r, owner in self._refresh.items() if owner == n)
        return self._grant_body(n, access, refresh)

    def seed(self, store: Any, indices: Iterable[int] | None = None) -> None:
        """Write each portal's grant into an app's PortalStore (as a finished install)."""
        from leadcard.core.grant import Grant  # the app's own record of a grant

        for n in range(self.size) if indices is None else indices:
            t = self.token_response(n)
            store.save_grant(Grant(
                access_token=t["access_token"], refresh_token=t["refresh_token"],
                expires_at=float(t["expires"]), member_id=t["member_id"],
                client_endpoint=t["client_endpoint"], server_endpoint=t["server_endpoint"],
                scope=t["scope"], status=t["status"], user_id=1))

    # --- the server ------------------------------------------------------------------------
    def _issue(self, n: int) -> tuple[str, str]:
        with self._lock:
            self._generation[n] += 1
            base = f"{self._seed}:{n}:{self._generation[n]}:"
            access = hashlib.sha256((base + "access").encode()).hexdigest()[:32]
            refresh = hashlib.sha256((base + "refresh").encode()).hexdigest()[:32]
            self._access[n] = access
            self._refresh = {r: o for r, o in self._refresh.items() if o != n}
            self._refresh[refresh] = n
        return access, refresh

    def _grant_body(self, n: int, access: str, refresh: str) -> dict[str, Any]:
        return {"access_token": access, "refresh_token": refresh, "expires_in": 3600,
                "expires": int(time.time()) + 3600, "member_id": self.member_id(n),
                "client_endpoint": self.endpoint(n), "server_endpoint": f"{self.url}/rest/",
                "scope": "crm,placement,user_brief", "status": "L", "user_id": 1,
                "domain": self.url.split("//", 1)[1]}

    def _wsgi(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        size = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(size) if size else b""
        with self._lock:
            self.counters["requests"] += 1
        time.sleep(self.latency)
        if path == "/oauth/token/":
            status, payload = self._token(dict(parse_qsl(body.decode()) or
                                               parse_qsl(environ.get("QUERY_STRING", ""))))
        elif path.startswith("/p/"):
            status, payload = self._rest(path, body)
        else:
            status, payload = 404, {"error": "NOT_FOUND", "error_description": "no such path"}
        if isinstance(payload, str):  # a front proxy's HTML page
            start_response(f"{status} X", [("Content-Type", "text/html")])
            return [payload.encode()]
        start_response(f"{status} X", [("Content-Type", "application/json")])
        return [json.dumps(payload).encode()]

    def _token(self, form: dict[str, str]) -> tuple[int, Any]:
        if form.get("client_id") != self.client_id or form.get("client_secret") != self.client_secret:
            return 401, {"error": "invalid_client"}
        with self._lock:
            self.counters["refreshes"] += 1
            n = self._refresh.get(form.get("refresh_token", ""))
            fault = self._faults.get(n) if n is not None else None
        if form.get("grant_type") != "refresh_token" or n is None or fault == "revoked":
            return 400, {"error": "invalid_grant", "error_description": "refresh token is spent"}
        return 200, self._grant_body(n, *self._issue(n))

    def _rest(self, path: str, body: bytes) -> tuple[int, Any]:
        parts = path.split("/")  # ['', 'p', n, 'rest', method]
        try:
            n, method = int(parts[2]), parts[4]
        except (IndexError, ValueError):
            return 404, {"error": "NOT_FOUND", "error_description": "no such portal"}
        try:
            auth = json.loads(body or b"{}").get("auth", "")
        except (ValueError, AttributeError):
            auth = ""
        with self._lock:
            known, fault = self._access.get(n), self._faults.get(n)
            if fault == "limit":
                self._faults.pop(n)
        if known is None:
            return 404, {"error": "NOT_FOUND", "error_description": "no such portal"}
        if fault == "down":
            return 503, "<html><body>502 Bad Gateway</body></html>"
        if fault == "limit":  # settings/performance/limits.md
            return 503, {"error": "QUERY_LIMIT_EXCEEDED", "error_description": "Too many requests"}
        if fault == "not_installed":
            return 401, {"error": "APPLICATION_NOT_FOUND", "error_description": "not installed"}
        if fault == "revoked" or auth != known:
            return 401, {"error": "expired_token", "error_description": "The access token expired"}
        if method == "app.info":
            return 200, {"result": {"ID": 1, "CODE": self.client_id, "VERSION": 1, "STATUS": "L",
                                    "INSTALLED": True, "member_id": self.member_id(n)}}
        return 200, {"result": True}


def main(argv: list[str] | None = None) -> None:
    """Serve a fleet on 127.0.0.1:PORT until killed (its own process: its CPU is not the app's)."""
    ap = argparse.ArgumentParser(description="Serve N generated portals on one loopback port.")
    ap.add_argument("--portals", type=int, default=10_000)
    ap.add_argument("--latency", type=float, default=0.05)
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--seed", default="leadcard-fleet")
    args = ap.parse_args(argv)
    fleet = Fleet(args.portals, latency=args.latency, seed=args.seed)
    fleet.start(args.port)
    print(f"fleet of {args.portals} on {fleet.url}", flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        fleet.stop()


if __name__ == "__main__":
    main()
