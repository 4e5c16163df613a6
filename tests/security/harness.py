"""Helpers of the security suite: the app and the Bitrix24 simulator over real loopback HTTP.

Nothing is mocked between the app and the simulator. Two *observers* sit on the wire:

- `Egress` taps `socket.socket.connect/sendall/send` for the whole process and keeps, in
  order, every connection the app opens and every byte it sends (outbound requests to the
  OAuth server, portals or a hostile host; responses it writes to its own clients). It
  changes nothing: the original methods run unchanged. It lets tests say "the stored admin
  token never left the process", "client_secret went only to the OAuth server", "no token
  was ever in a URL" and "nothing reached the new host before the OAuth server confirmed it".
- `RecordingServer` is a tiny HTTP server on another loopback port playing "evil": it
  answers everything and counts what it received.
"""

from __future__ import annotations

import contextlib
import json
import re
import socket
import tempfile
import threading
import time
import weakref
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import requests
import sqlalchemy as sa
from markupsafe import escape

from devtools.devportal import Simulator
from devtools.harness import (
    CLIENT_ID,
    CLIENT_SECRET,
    SECRET_KEY,
    LiveApp,
    Served,
    free_port,
    new_simulator,
    serve_app,
)
from devtools.harness import app_settings as harness_settings

__all__ = ["CLIENT_ID", "CLIENT_SECRET", "SECRET_KEY", "LiveApp", "Served", "free_port"]

TRACE_MARKERS = ("Traceback", 'File "', "werkzeug.exceptions", "sqlalchemy.exc",
                 "Internal Server Error", "The server encountered an internal error")


# --- servers (devtools/harness) -----------------------------------------------------------

def app_settings(sim: Simulator, port: int, database_url: str, **extra: Any) -> dict:
    """The app on ``port`` against ``sim``; migrations on start (SQLite and PostgreSQL)."""
    return harness_settings(
        app_url=f"http://127.0.0.1:{port}", oauth_url=sim.oauth_url, database_url=database_url,
        # The grant journal of this app stays out of the repository's instance/ folder.
        instance_path=tempfile.mkdtemp(prefix="leadcard-security-"),
        **{"DB_AUTO_MIGRATE": "1", **extra})


def start_app(settings: dict, port: int) -> LiveApp:
    return serve_app(settings, port)


def start_sim(app_port: int) -> Simulator:
    return new_simulator(f"http://127.0.0.1:{app_port}").start()


def install_portal(sim: Simulator, live: LiveApp, name: str = "a"):
    """The real install flow: installer POST, then installFinish → ONAPPINSTALL."""
    url, form = sim.install_request(name, user_id=1)
    response = live.post(url, form)
    assert response.status_code == 200, response.text[:500]
    assert sim.finish_install(name) == 200
    return sim.portals[name]


def placement(sim: Simulator, live: LiveApp, lead_id: int | str = 101, *, user_id: int = 1,
              portal: str = "a", lang: str = "en", **overrides: str) -> requests.Response:
    url, form = sim.placement_request(portal, user_id=user_id, lead_id=lead_id, lang=lang)
    form.update(overrides)
    return live.post(url, form)


# --- what a designed error page looks like ------------------------------------------------

def problem_code(response: requests.Response) -> str | None:
    match = re.search(r'data-problem="([^"]+)"', response.text)
    return match.group(1) if match else None


def problem_title(app, code: str, lang: str = "en") -> str:
    """The title problems.py defines for `code`, translated and HTML-escaped as rendered."""
    from flask import g

    from leadcard.web.problems import TEXTS

    with app.test_request_context():
        g.lang = lang
        return str(escape(str(TEXTS[code][0])))


def assert_no_trace(response: requests.Response) -> None:
    # 5xx only as designed pages (F2–F5, F18–F20), never the framework's 500.
    assert response.status_code < 500 or response.status_code in (502, 503, 504), \
        response.status_code
    for marker in TRACE_MARKERS:
        assert marker not in response.text, f"{marker!r} in a response body"


def assert_designed_page(live: LiveApp, response: requests.Response, code: str,
                         status: int) -> None:
    """In-frame error page: right status, problem code and its translated title, no trace."""
    assert response.status_code == status, (response.status_code, response.text[:300])
    assert response.headers["Content-Type"].startswith("text/html")
    assert problem_code(response) == code, response.text[:300]
    assert problem_title(live.app, code) in response.text
    assert_no_trace(response)
    assert "X-Frame-Options" not in response.headers
    assert "Set-Cookie" not in response.headers
    assert "frame-ancestors" in response.headers["Content-Security-Policy"]


# --- database snapshots -------------------------------------------------------------------

STORED_TABLES = ("portals", "viewer_renewals", "oauth_states", "processed_events")


def snapshot(engine) -> dict[str, list[tuple]]:
    """Every row of the tables that hold portals, grants and reconnect state."""
    out: dict[str, list[tuple]] = {}
    with engine.connect() as conn:
        for name in STORED_TABLES:
            rows = conn.execute(sa.text(f"SELECT * FROM {name}")).all()
            out[name] = sorted((tuple(r) for r in rows), key=repr)
    return out


# --- wire observers -----------------------------------------------------------------------

@dataclass
class WireEvent:
    seq: int
    kind: str              # "connect" | "send"
    sock: int              # id() of the socket object
    local_port: int | None
    peer: tuple[str, int] | None
    data: bytes = b""
    ignored: bool = False  # the test itself acting as a browser
    client: bool = False   # a socket this process connected (not one a server accepted)


class Egress:
    """Process-wide tap on socket connect/send (observation only)."""

    def __init__(self) -> None:
        self.events: list[WireEvent] = []
        self._lock = threading.Lock()
        self._seq = 0
        self._local = threading.local()
        self._clients: weakref.WeakSet = weakref.WeakSet()
        self.app_port: int | None = None

    # install / remove
    def install(self, monkeypatch) -> Egress:
        recorder = self
        orig_connect = socket.socket.connect
        orig_sendall = socket.socket.sendall
        orig_send = socket.socket.send

        def connect(sock, address):  # type: ignore[no-untyped-def]
            recorder._clients.add(sock)
            try:
                return orig_connect(sock, address)
            finally:
                recorder._record(sock, "connect", b"", peer=_addr(address))

        def sendall(sock, data, *args):  # type: ignore[no-untyped-def]
            recorder._record(sock, "send", bytes(data))
            return orig_sendall(sock, data, *args)

        def send(sock, data, *args):  # type: ignore[no-untyped-def]
            sent = orig_send(sock, data, *args)
            recorder._record(sock, "send", bytes(data[:sent]))
            return sent

        monkeypatch.setattr(socket.socket, "connect", connect)
        monkeypatch.setattr(socket.socket, "sendall", sendall)
        monkeypatch.setattr(socket.socket, "send", send)
        return self

    @contextlib.contextmanager
    def ignored(self) -> Iterator[None]:
        """Traffic the test itself makes as a browser (e.g. following a redirect)."""
        self._local.ignore = True
        try:
            yield
        finally:
            self._local.ignore = False

    def _record(self, sock, kind: str, data: bytes, peer=None) -> None:  # type: ignore[no-untyped-def]
        try:
            local_port = sock.getsockname()[1]
        except (OSError, IndexError, TypeError):
            local_port = None
        if peer is None:
            try:
                peer = _addr(sock.getpeername())
            except (OSError, TypeError):
                peer = None
        if sock.family not in (socket.AF_INET, socket.AF_INET6):
            return
        with self._lock:
            self._seq += 1
            self.events.append(WireEvent(self._seq, kind, id(sock), local_port, peer, data,
                                         getattr(self._local, "ignore", False),
                                         sock in self._clients))

    def mark(self) -> int:
        with self._lock:
            return self._seq

    # views
    def outbound(self, since: int = 0) -> list[WireEvent]:
        """Connections and bytes going *to* a server other than the app (app egress)."""
        return [e for e in self.events if e.seq > since and e.client and not e.ignored
                and e.peer is not None and e.peer[1] != self.app_port]

    def connected_ports(self, since: int = 0) -> set[int]:
        return {e.peer[1] for e in self.outbound(since) if e.kind == "connect" and e.peer}

    def sent_to(self, port: int, since: int = 0) -> bytes:
        return b"".join(e.data for e in self.outbound(since) if e.kind == "send" and e.peer
                        and e.peer[1] == port)

    def sent_anywhere_but(self, ports: set[int], since: int = 0) -> bytes:
        return b"".join(e.data for e in self.outbound(since) if e.kind == "send" and e.peer
                        and e.peer[1] not in ports)

    def request_lines(self, since: int = 0) -> list[str]:
        """Request lines (method, URL, version) of every outbound HTTP request."""
        out: list[str] = []
        for e in self.outbound(since):
            if e.kind != "send":
                continue
            for line in e.data.split(b"\r\n"):
                if re.match(rb"^(GET|POST|PUT|PATCH|DELETE|HEAD|OPTIONS) \S+ HTTP/1\.[01]$", line):
                    out.append(line.decode("latin-1"))
        return out

    def app_responses(self, since: int = 0) -> bytes:
        """Everything the app wrote to its own clients (status lines, headers, bodies)."""
        return b"".join(e.data for e in self.events if e.seq > since and e.kind == "send"
                       and not e.client and e.local_port == self.app_port)



def _addr(address) -> tuple[str, int] | None:  # type: ignore[no-untyped-def]
    if isinstance(address, tuple) and len(address) >= 2:
        return str(address[0]), int(address[1])
    return None


class RecordingServer:
    """"evil.test": answers every request with a plausible JSON body and records it."""

    def __init__(self) -> None:
        self.requests: list[dict] = []

        def wsgi(environ, start_response):  # type: ignore[no-untyped-def]
            length = int(environ.get("CONTENT_LENGTH") or 0)
            body = environ["wsgi.input"].read(length) if length else b""
            self.requests.append({"method": environ["REQUEST_METHOD"],
                                  "path": environ.get("PATH_INFO", ""), "body": body})
            start_response("200 OK", [("Content-Type", "application/json")])
            return [json.dumps({"result": {"ID": "104", "TITLE": "from evil"}}).encode()]

        self.served = Served(wsgi)
        self.port = self.served.port
        self.url = self.served.url

    def stop(self) -> None:
        self.served.stop()


class TcpProxy:
    """Loopback TCP forwarder; `stop()` is "the database went away", `start()` brings it back."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.port = free_port()
        self._listener: socket.socket | None = None
        self._conns: list[socket.socket] = []
        self._lock = threading.Lock()

    def start(self) -> TcpProxy:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()
        return self

    def stop(self) -> None:
        with self._lock:
            listener, self._listener = self._listener, None
            conns, self._conns = self._conns, []
        if listener is not None:
            with contextlib.suppress(OSError):
                listener.shutdown(socket.SHUT_RDWR)
            listener.close()
        for c in conns:
            with contextlib.suppress(OSError):
                c.shutdown(socket.SHUT_RDWR)
            c.close()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(self.target, timeout=3)
            except OSError:
                client.close()
                continue
            with self._lock:
                if self._listener is not listener:
                    client.close()
                    upstream.close()
                    return
                self._conns += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    def _before_relay(self) -> None:
        """Called before each chunk is passed on (a subclass may hold it back)."""

    def _pipe(self, src: socket.socket, dst: socket.socket) -> None:
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                self._before_relay()
                dst.sendall(data)
        except OSError:
            pass
        finally:
            with contextlib.suppress(OSError):
                dst.shutdown(socket.SHUT_WR)


def wait_for(predicate, timeout: float = 5.0, step: float = 0.02) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return True
        time.sleep(step)
    return predicate()
