"""A bounded slowloris, run as its own process by test_nginx_front.py (loopback only).

    python slowloris.py PORT [--tls-ca CERT] [--source 127.0.0.2] [--headers N] [--bodies N]
                        [--idle N] [--interval S] [--duration S]

Three kinds of slow client, all from `--source` (a loopback address):
- headers: a request whose header never ends, one more byte every `--interval` seconds;
- bodies: a complete header announcing a 60 000-byte form body, then one body byte per interval;
- idle: a TCP connection that never sends anything (not even a TLS hello).
A socket the server cuts off without an answer (a timeout) is opened again, at most 5 times
per initial socket of its kind, so the pressure stays the same for the whole `--duration`; a
socket the server answered (e.g. 429) is counted and not retried. Prints one JSON line `{"event": "ready"}`
once every socket is open, and `{"event": "done", ...counts}` after closing them all.
Every loop is bounded by the duration; every socket is closed in finally.
"""

from __future__ import annotations

import argparse
import collections
import json
import selectors
import socket
import ssl
import sys
import time

HEADER_START = b"POST /placement HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: "
BODY_HEADER = (b"POST /placement HTTP/1.1\r\nHost: 127.0.0.1\r\n"
               b"Content-Type: application/x-www-form-urlencoded\r\n"
               b"Content-Length: 60000\r\n\r\n")


class Attack:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.ctx: ssl.SSLContext | None = None
        if args.tls_ca:
            self.ctx = ssl.create_default_context(cafile=args.tls_ca)
        self.sel = selectors.DefaultSelector()
        self.kind: dict[socket.socket, str] = {}
        self.counts: collections.Counter = collections.Counter()
        self.statuses: collections.Counter = collections.Counter()
        self.reopen_budget = collections.Counter(
            headers=5 * args.headers, bodies=5 * args.bodies, idle=5 * args.idle)

    def open(self, kind: str) -> None:
        """One slow client of `kind`, its first bytes sent (failures counted, not raised)."""
        try:
            sock = socket.create_connection(("127.0.0.1", self.args.port), timeout=5,
                                            source_address=(self.args.source, 0))
        except OSError:
            self.counts["connect_failed"] += 1
            return
        try:
            if kind != "idle" and self.ctx is not None:
                sock = self.ctx.wrap_socket(sock, server_hostname="127.0.0.1")
            if kind == "headers":
                sock.sendall(HEADER_START)
            elif kind == "bodies":
                sock.sendall(BODY_HEADER)
            sock.setblocking(False)
        except OSError:
            self.counts["open_failed"] += 1
            sock.close()
            return
        self.kind[sock] = kind
        self.sel.register(sock, selectors.EVENT_READ)
        self.counts[f"opened_{kind}"] += 1

    def drop(self, sock: socket.socket, reopen: bool) -> None:
        kind = self.kind.pop(sock)
        self.sel.unregister(sock)
        sock.close()
        if reopen and self.reopen_budget[kind] > 0:
            self.reopen_budget[kind] -= 1
            self.open(kind)

    def read_answers(self, reopen: bool) -> None:
        """Count what the server said to the sockets it answered or closed."""
        for key, _ in self.sel.select(timeout=0):
            sock = key.fileobj
            try:
                data = sock.recv(4096)
            except (ssl.SSLWantReadError, BlockingIOError):
                continue
            except OSError:
                data = b""
            answered = data.startswith(b"HTTP/1.")
            if answered:
                self.statuses[data.split(b" ", 2)[1].decode()] += 1
            self.counts[f"closed_{self.kind[sock]}"] += 1
            self.drop(sock, reopen and not answered)

    def drip(self) -> None:
        """One more byte on every socket that is sending something."""
        for sock, kind in list(self.kind.items()):
            if kind == "idle":
                continue
            try:
                sock.send(b"a")
                self.counts["bytes_sent"] += 1
            except (ssl.SSLWantWriteError, ssl.SSLWantReadError, BlockingIOError):
                pass
            except OSError:
                self.counts[f"closed_{kind}"] += 1
                self.drop(sock, reopen=True)

    def run(self) -> None:
        a = self.args
        deadline = time.monotonic() + a.duration
        for kind, n in (("headers", a.headers), ("bodies", a.bodies), ("idle", a.idle)):
            for _ in range(n):
                if time.monotonic() < deadline:
                    self.open(kind)
        self.counts["open_at_ready"] = len(self.kind)
        print(json.dumps({"event": "ready", "open": len(self.kind)}), flush=True)
        next_drip = time.monotonic() + a.interval
        while time.monotonic() < deadline:
            self.read_answers(reopen=True)
            if time.monotonic() >= next_drip:
                self.drip()
                next_drip += a.interval
            time.sleep(0.05)
        self.read_answers(reopen=False)
        self.counts["open_at_end"] = len(self.kind)

    def close(self) -> None:
        for sock in list(self.kind):
            self.drop(sock, reopen=False)
        self.sel.close()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("port", type=int)
    ap.add_argument("--tls-ca")
    ap.add_argument("--source", default="127.0.0.2")
    ap.add_argument("--headers", type=int, default=200)
    ap.add_argument("--bodies", type=int, default=20)
    ap.add_argument("--idle", type=int, default=50)
    ap.add_argument("--interval", type=float, default=1.0)
    ap.add_argument("--duration", type=float, default=12.0)
    args = ap.parse_args(argv)
    assert args.source.startswith("127."), "loopback only"
    attack = Attack(args)
    try:
        attack.run()
    finally:
        attack.close()
    print(json.dumps({"event": "done", "counts": dict(attack.counts),
                      "statuses": dict(attack.statuses)}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
