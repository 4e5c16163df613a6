"""Real HTTP servers on loopback for the simulator, and request recording.

Owns the werkzeug servers (threaded, one background thread each, bound to
127.0.0.1 only) and the WSGI middleware that records every request for the
counters.  Neither werkzeug's access log nor our log ever contains a query
string: ``auth=<token>`` may be in it.
"""

from __future__ import annotations

import logging
import random
import socket
import threading
from collections.abc import Callable

from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server

from .faults import shutdown_socket

log = logging.getLogger("devtools.devportal")

ALLOWED_HOSTS = ("127.0.0.1",)

_EPHEMERAL_RANGE = "/proc/sys/net/ipv4/ip_local_port_range"


def free_port(host: str = "127.0.0.1") -> int:
    """A free TCP port on ``host`` for a server that binds it *later* (the app under test, whose
    URL the simulator must know before the app starts).

    Chosen below the kernel's ephemeral range: the ports the kernel hands out by itself — to
    ``bind(("127.0.0.1", 0))`` of the simulator's own servers, and to the local end of every
    outgoing connection — come from that range, so between now and the later bind nothing
    takes the port by chance. (A port from ``bind(0)``, released and bound again later, was
    handed to another server meanwhile: "Address already in use" in CI.)
    """
    try:
        with open(_EPHEMERAL_RANGE) as fh:
            ephemeral_low = int(fh.read().split()[0])
    except (OSError, ValueError, IndexError):
        ephemeral_low = 32768  # Linux's default range starts here
    low, high = max(1024, ephemeral_low - 12000), ephemeral_low - 1
    if high > low:
        for _ in range(200):
            port = random.randint(low, high)
            with socket.socket() as s:
                try:
                    s.bind((host, port))
                except OSError:
                    continue  # taken (by a service, or another test run's choice)
            return port
    with socket.socket() as s:  # no room below the range (unusual settings): the old way
        s.bind((host, 0))
        return s.getsockname()[1]


class QuietHandler(WSGIRequestHandler):
    """werkzeug's handler without the access log (the request line may hold tokens)."""

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        log.debug("%s %s -> %s", self.command, self.path.split("?")[0], code)

    def log_error(self, format: str, *args: object) -> None:  # noqa: A002 - stdlib signature
        log.debug("http error on %s", getattr(self, "path", "?").split("?")[0])


class RecordingMiddleware:
    """Calls ``record(environ, status)`` after each response (or drop)."""

    def __init__(self, app: Callable, record: Callable[[dict, object], None]) -> None:
        self.app = app
        self.record = record

    def __call__(self, environ: dict, start_response: Callable):
        seen: dict = {}

        def _start(status: str, headers: list, exc_info=None):
            seen["status"] = int(status.split(" ", 1)[0])
            return start_response(status, headers, exc_info)

        try:
            body = self.app(environ, _start)
            return body
        finally:
            status: object = seen.get("status", 500)
            if environ.get("devportal.dropped"):
                status = "dropped"
            elif environ.get("devportal.aborted"):
                status = "aborted"
            try:
                self.record(environ, status)
            except Exception:  # recording must never break a response
                log.exception("request recording failed")
            if environ.get("devportal.dropped"):
                shutdown_socket(environ)


class ServerThread:
    """One threaded werkzeug server in a daemon thread."""

    def __init__(self, app: Callable, host: str, port: int = 0) -> None:
        if host not in ALLOWED_HOSTS:
            raise ValueError(f"the simulator listens on loopback only ({ALLOWED_HOSTS}), not {host!r}")
        self.server = self._make_server(app, host, port)
        self.host = host
        self.port: int = self.server.server_address[1]
        self._thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05},
                                        name=f"devportal-{port or self.port}", daemon=True)

    def _make_server(self, app: Callable, host: str, port: int):  # type: ignore[no-untyped-def]
        """The HTTP server behind the thread (bench/keepalive_sim.py swaps in another)."""
        server: BaseWSGIServer = make_server(host, port, app, threaded=True,
                                             request_handler=QuietHandler)
        return server

    def start(self) -> ServerThread:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self._thread.join(timeout=2)
