"""The load generator's clients: as cheap as possible, since they share the cores with the app.

`Conn` keeps one HTTP/1.1 connection (http.client); `OneShot` sends prebuilt request bytes on
a new connection per view, as a proxy in front of gunicorn does. `form_request` and
`parse_head` are the pure parts (tests/unit/test_bench_loadgen.py).
"""

from __future__ import annotations

import http.client
import json
import socket
from urllib.parse import urlencode, urlsplit

import requests


def form_request(url: str, form: dict) -> bytes:
    """The bytes of one form POST to ``url`` with `Connection: close` (built once per viewer)."""
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    target = parts.path + (f"?{parts.query}" if parts.query else "")
    body = urlencode(form).encode()
    return (
        f"POST {target} HTTP/1.1\r\nHost: {host}:{port}\r\n"
        "Content-Type: application/x-www-form-urlencoded\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    ).encode() + body


def parse_head(head: bytes) -> tuple[int, int | None]:
    """(status, Content-Length or None) of a response head (status line + header lines);
    nothing else is parsed, for the CPU's sake."""
    lines = head.split(b"\r\n")
    length = None
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    return int(lines[0].split(b" ", 2)[1]), length


def new_session() -> requests.Session:
    s = requests.Session()
    s.trust_env = False
    return s


class Conn:
    """A bare HTTP/1.1 keep-alive client (http.client) for the measured phases.

    The load generator shares the two cores with the app and the simulator, so it must be
    cheap: a requests.Session spent ~2 ms of CPU per view here, more than a third of what the
    app under test spends. Same wire traffic: one persistent connection, a form or JSON POST.
    """

    def __init__(self, url: str, timeout: float = 60) -> None:
        parts = urlsplit(url)
        self.host, self.port = parts.hostname or "127.0.0.1", parts.port or 80
        self.timeout = timeout
        self._conn: http.client.HTTPConnection | None = None

    def post(self, url: str, body: bytes, content_type: str) -> tuple[int, bytes]:
        """POST and read the whole answer; one reconnect if the kept-alive socket was closed."""
        parts = urlsplit(url)
        target = parts.path + (f"?{parts.query}" if parts.query else "")
        headers = {"Content-Type": content_type, "Content-Length": str(len(body))}
        for attempt in (1, 2):
            if self._conn is None:
                self._conn = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
            try:
                self._conn.request("POST", target, body=body, headers=headers)
                response = self._conn.getresponse()
                return response.status, response.read()
            except (http.client.HTTPException, OSError):
                self.close()
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    def form(self, url: str, form: dict) -> tuple[int, bytes]:
        return self.post(url, urlencode(form).encode(), "application/x-www-form-urlencoded")

    def json(self, url: str, payload: dict) -> tuple[int, bytes]:
        return self.post(url, json.dumps(payload).encode(), "application/json")

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None


class OneShot:
    """One form POST per new connection with `Connection: close`, done once the body is in.

    What a proxy in front of gunicorn sends, done as cheaply as a load generator can (the way
    wrk does): the request bytes are built once; of the answer only the status line and
    Content-Length are parsed, and the view is over when Content-Length bytes of body have
    arrived (as for a proxy, not when the server's close reaches the client). http.client
    parsed every response header with the email package, CPU taken from the two cores the app
    is measured on.
    """

    def __init__(self, url: str, form: dict, timeout: float = 60) -> None:
        parts = urlsplit(url)
        self.address = (parts.hostname or "127.0.0.1", parts.port or 80)
        self.timeout = timeout
        self.request = form_request(url, form)

    def post(self) -> tuple[int, bytes]:
        with socket.create_connection(self.address, timeout=self.timeout) as sock:
            sock.sendall(self.request)
            data = b""
            while b"\r\n\r\n" not in data:
                chunk = sock.recv(65536)
                if not chunk:
                    raise http.client.BadStatusLine(data[:80].decode("latin-1"))
                data += chunk
            head, _, body = data.partition(b"\r\n\r\n")
            status, length = parse_head(head)
            while length is None or len(body) < length:  # no length: read to the close
                chunk = sock.recv(65536)
                if not chunk:
                    if length is None:
                        break
                    raise http.client.IncompleteRead(body, length - len(body))
                body += chunk
        return status, body


# --- phases -----------------------------------------------------------------------------------
