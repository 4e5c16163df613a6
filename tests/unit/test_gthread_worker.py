"""leadcard.web.gthread_worker: the non-blocking closing linger, on real sockets and a real selector.

The worker object is built without gunicorn's process start-up (no arbiter, no listeners): only
the parts the linger uses — a selector and the pending-connection queue — are set up here.
tests/concurrency/test_gunicorn_worker.py runs the worker under real gunicorn.
"""

from __future__ import annotations

import selectors
import socket
from collections import deque

import pytest
from gunicorn.workers import gthread

from leadcard.web import gthread_worker
from leadcard.web.gthread_worker import ThreadWorker


@pytest.fixture
def worker():
    w = ThreadWorker.__new__(ThreadWorker)
    w._lingering = {}
    w.poller = selectors.DefaultSelector()
    w.pending_conns = deque()
    yield w
    for sock in list(w._lingering):
        sock.close()
    w.poller.close()


@pytest.fixture
def pair():
    server, client = socket.socketpair()
    client.settimeout(2)
    yield server, client
    server.close()
    client.close()


def dispatch(worker: ThreadWorker, timeout: float = 0.5) -> None:
    """One turn of gunicorn's event loop: run the callbacks of ready sockets."""
    for key, _ in worker.poller.select(timeout):
        key.data(key.fileobj)


def test_gunicorn_still_has_the_hooks_this_worker_overrides():
    # An upgrade of gunicorn that renames these would silently bring back the blocking close.
    for name in ("finish_request", "murder_pending", "run", "handle", "enqueue_req"):
        assert callable(getattr(gthread.ThreadWorker, name)), name
    assert callable(gthread.TConn.close)


def test_graceful_close_sends_fin_at_once_and_lingers_without_blocking(worker, pair):
    server, client = pair
    worker._close(server, graceful=True)  # returns at once although the peer has not closed
    assert client.recv(100) == b""  # the peer already sees the end of the response stream
    assert server in worker._lingering and server.fileno() != -1
    assert worker.poller.get_key(server).data == worker._drain


def test_peer_close_ends_the_linger(worker, pair):
    server, client = pair
    worker._close(server, graceful=True)
    client.sendall(b"trailing bytes the request left unread")
    dispatch(worker)
    assert server in worker._lingering  # data drained, the peer has not closed yet
    client.close()
    dispatch(worker)
    assert worker._lingering == {} and server.fileno() == -1
    assert not worker.poller.get_map()


def test_a_peer_that_never_closes_is_closed_when_its_time_is_up(worker, pair, monkeypatch):
    server, client = pair
    worker._close(server, graceful=True)
    worker.murder_pending()
    assert server in worker._lingering  # not yet
    now = gthread_worker.time.monotonic()
    monkeypatch.setattr(gthread_worker.time, "monotonic",
                        lambda: now + gthread_worker.LINGER_SECONDS + 0.1)
    worker.murder_pending()
    assert worker._lingering == {} and server.fileno() == -1


def test_a_peer_that_keeps_sending_is_closed_at_the_byte_cap(worker, pair, monkeypatch):
    monkeypatch.setattr(gthread_worker, "LINGER_MAX_BYTES", 8192)
    server, client = pair
    worker._close(server, graceful=True)
    for _ in range(4):
        client.sendall(b"x" * 4096)
        dispatch(worker, timeout=0.2)
        if server.fileno() == -1:
            break
    assert worker._lingering == {} and server.fileno() == -1


def test_past_the_socket_cap_a_close_is_immediate(worker, pair, monkeypatch):
    monkeypatch.setattr(gthread_worker, "LINGER_MAX_SOCKETS", 0)
    server, client = pair
    worker._close(server, graceful=True)
    assert worker._lingering == {} and server.fileno() == -1


def test_a_plain_close_is_immediate(worker, pair):
    server, client = pair
    worker._close(server, graceful=False)
    assert worker._lingering == {} and server.fileno() == -1


def test_finish_request_routes_the_connections_close_through_the_worker(worker, pair):
    server, client = pair

    class Finished:
        def cancelled(self) -> bool:
            return False

        def result(self) -> bool:
            return False  # not kept alive: gunicorn closes the connection gracefully

    conn = gthread.TConn.__new__(gthread.TConn)
    conn.sock = server
    worker.nr_conns = 1
    worker.alive = True
    worker.finish_request(conn, Finished())
    assert worker.nr_conns == 0
    assert server in worker._lingering  # lingering in the selector, not blocking here
    assert client.recv(100) == b""
