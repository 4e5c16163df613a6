"""Run the devportal simulator behind an HTTP/1.1 keep-alive server (benchmark only).

`python -m bench.keepalive_sim <the same arguments as python -m devtools.devportal>`

Why: the simulator serves its WSGI apps with werkzeug's development server, which answers
every request with `Connection: close` (werkzeug 3.x, serving.py: "Always close the
connection. This disables HTTP/1.1 keep-alive"). No client can then reuse a connection, so a
benchmark could not tell an app that keeps connections alive (Lead Card: one pooled
`requests.Session` per thread) from one that opens a new connection per call (the baseline),
and the "bare keep-alive round trip" would include a TCP connect. Real Bitrix24 (nginx) keeps
connections alive.

This module swaps the simulator's `ServerThread` for one built on the standard library's
`ThreadingHTTPServer` with `protocol_version = "HTTP/1.1"`: the same WSGI apps, the same
recording middleware and counters, the same loopback-only rule; responses carry a
`Content-Length`, so connections stay open until the client closes them. Nothing in
`devtools/devportal/` changes.
"""

from __future__ import annotations

import io
import sys
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import unquote_to_bytes

from devtools.devportal import servers as _servers
from devtools.devportal import simulator as _simulator


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "devportal-keepalive"
    disable_nagle_algorithm = True  # headers and body go out in separate writes
    app: Callable  # set per server class

    def log_message(self, format: str, *args: object) -> None:
        pass  # the request line may hold tokens; the simulator keeps its own counters

    def _run(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length > 0 else b""
        path, _, query = self.path.partition("?")
        host, port = self.server.server_address[:2]
        environ = {
            "REQUEST_METHOD": self.command,
            "SCRIPT_NAME": "",
            "PATH_INFO": unquote_to_bytes(path).decode("latin-1"),
            "QUERY_STRING": query,
            "SERVER_NAME": str(host),
            "SERVER_PORT": str(port),
            "SERVER_PROTOCOL": self.request_version,
            "REMOTE_ADDR": self.client_address[0],
            "REMOTE_PORT": str(self.client_address[1]),
            "CONTENT_TYPE": self.headers.get("Content-Type", ""),
            "CONTENT_LENGTH": str(length) if length else "",
            "wsgi.version": (1, 0),
            "wsgi.url_scheme": "http",
            "wsgi.input": io.BytesIO(body),
            "wsgi.errors": sys.stderr,
            "wsgi.multithread": True,
            "wsgi.multiprocess": False,
            "wsgi.run_once": False,
            "werkzeug.socket": self.connection,  # the simulator's "drop" fault shuts it down
        }
        for name, value in self.headers.items():
            key = "HTTP_" + name.upper().replace("-", "_")
            if key in ("HTTP_CONTENT_TYPE", "HTTP_CONTENT_LENGTH"):
                continue
            environ[key] = f"{environ[key]},{value}" if key in environ else value

        started: dict = {}

        def start_response(status: str, headers: list, exc_info: object = None):
            started["status"], started["headers"] = status, headers
            return lambda data: chunks.append(data)

        chunks: list[bytes] = []
        result = self.app(environ, start_response)
        try:
            for chunk in result:
                chunks.append(chunk)
        finally:
            close = getattr(result, "close", None)
            if close is not None:
                close()
        if environ.get("devportal.dropped"):
            self.close_connection = True
            return
        data = b"".join(chunks)
        code, _, reason = started["status"].partition(" ")
        self.send_response(int(code), reason)
        for name, value in started["headers"]:
            if name.lower() not in ("content-length", "connection", "transfer-encoding"):
                self.send_header(name, value)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = do_OPTIONS = do_PATCH = _run


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128


class KeepAliveServerThread(_servers.ServerThread):
    """`devtools.devportal.servers.ServerThread` with the keep-alive server underneath."""

    def _make_server(self, app: Callable, host: str, port: int) -> _Server:
        handler = type("BoundHandler", (_Handler,), {"app": staticmethod(app)})
        return _Server((host, port), handler)


def main(argv: list[str] | None = None) -> int:
    _simulator.ServerThread = KeepAliveServerThread  # type: ignore[misc, assignment]
    from devtools.devportal.__main__ import main as devportal_main

    return devportal_main(argv)


if __name__ == "__main__":
    raise SystemExit(main())
