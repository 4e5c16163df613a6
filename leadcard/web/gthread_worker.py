"""gunicorn's threaded worker, with the closing linger taken off its event loop.

gunicorn 27 closes a connection it will not keep alive "gracefully" (RFC 9112 section 9.6,
gunicorn pull request #3590): half-close, then read until the peer closes too — for up to 2 s —
so that unread request bytes cannot make the kernel answer with a reset that truncates the
response. The gthread worker does that read on its *main* thread (`finish_request` runs there),
the one thread that accepts connections and hands finished ones back. So one client that reads
its answer and keeps its socket open stops the whole worker — no accepts, no other responses
handed back — for up to 2 s (measured: a second client's request took 1.3 s instead of 0.5 ms;
`tests/concurrency/test_gunicorn_worker.py`). A reverse proxy that sends `Connection: close`
(nginx's default towards upstreams) makes every request take that path, so every close waits
one peer round trip on the main loop.

This worker keeps the same close — shutdown of the write side at once, the same 2 s / 64 KiB
drain — but lingers in the worker's selector instead of blocking: the socket is read when it
is readable and closed on the peer's FIN, on the cap, or when its time is up (checked each
turn of the loop, which wakes at least once a second).

Everything else is gunicorn's `gthread` worker unchanged (`gunicorn.conf.py`:
``worker_class``). gunicorn is pinned in requirements.txt; the hooks used here are
``finish_request`` (the place the close is decided), ``murder_pending`` (called every loop
turn) and ``run``; `tests/unit/test_gthread_worker.py` fails if an upgrade removes them.
"""

from __future__ import annotations

import selectors
import socket
import time
from typing import Any

from gunicorn import util
from gunicorn.workers import gthread

# gunicorn's own bounds for the graceful close (gunicorn.util.close_graceful).
LINGER_SECONDS = 2.0
LINGER_MAX_BYTES = 64 * 1024
# Sockets lingering at once per worker; past it a close is immediate (like gunicorn before 27),
# so a flood of clients that never close costs at most this many file descriptors, well under
# the common 1024 per process (an accept() that hit that limit would end the worker).
LINGER_MAX_SOCKETS = 256


class ThreadWorker(gthread.ThreadWorker):
    """gthread, except that closing a connection never blocks the worker's event loop."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # socket -> (deadline, bytes drained so far); insertion order is deadline order.
        self._lingering: dict[socket.socket, tuple[float, int]] = {}

    def finish_request(self, conn: gthread.TConn, fs: Any) -> None:
        """gunicorn's hand-back of a finished connection, with this worker's close."""
        conn.close = lambda graceful=False: self._close(conn.sock, graceful)
        super().finish_request(conn, fs)

    def _close(self, sock: socket.socket, graceful: bool) -> None:
        """Close ``sock``; a graceful close half-closes now and lingers in the selector."""
        if not graceful or len(self._lingering) >= LINGER_MAX_SOCKETS:
            util.close(sock)
            return
        try:
            sock.shutdown(socket.SHUT_WR)
            sock.setblocking(False)
            self.poller.register(sock, selectors.EVENT_READ, self._drain)
        except (OSError, ValueError, KeyError):
            util.close(sock)
            return
        self._lingering[sock] = (time.monotonic() + LINGER_SECONDS, 0)

    def _drain(self, sock: socket.socket) -> None:
        """Selector callback: read what the peer still sends; close on its FIN or the cap."""
        entry = self._lingering.get(sock)
        if entry is None:
            return
        try:
            data = sock.recv(4096)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        drained = entry[1] + len(data)
        if data and drained < LINGER_MAX_BYTES:
            self._lingering[sock] = (entry[0], drained)
            return
        self._end_linger(sock)

    def _end_linger(self, sock: socket.socket) -> None:
        self._lingering.pop(sock, None)
        try:
            self.poller.unregister(sock)
        except (KeyError, ValueError, OSError):
            pass
        util.close(sock)

    def murder_pending(self) -> None:
        """gunicorn's expiry of idle pending connections, then of lingering closes."""
        super().murder_pending()
        now = time.monotonic()
        while self._lingering:
            sock, (deadline, _) = next(iter(self._lingering.items()))
            if deadline > now:
                break
            self._end_linger(sock)

    def run(self) -> None:
        try:
            super().run()
        finally:
            for sock in list(self._lingering):
                self._lingering.pop(sock, None)
                util.close(sock)
