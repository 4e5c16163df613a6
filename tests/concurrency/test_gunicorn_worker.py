"""The app's gunicorn worker (leadcard/web/gthread_worker.py, gunicorn.conf.py) under real gunicorn.

- A client that reads its answer and keeps its socket open does not hold up anyone else.
  gunicorn 27's own gthread worker lingers for that client's close on its event loop, for up
  to 2 s, and nothing else moves in that worker meanwhile. Nor does a flood of such clients
  stall or end the worker.
- A worker takes only as many connections as it has threads: a burst of views goes to the
  workers with free threads instead of queueing behind views in a busy one.
- SIGTERM stops gunicorn gracefully: views in flight finish with their card, then it exits 0
  and no longer accepts connections.
"""

from __future__ import annotations

import signal
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlsplit

import pytest
import requests

from tests.concurrency.concurrency_harness import (
    PID_ACCESS_LOG,
    connections_to,
    served_by,
    wait_until,
)

pytestmark = pytest.mark.slow


def read_answer_keep_socket(url: str) -> tuple[socket.socket, bytes]:
    """GET /healthz with `Connection: close`, read the whole answer, do not close."""
    parts = urlsplit(url)
    sock = socket.create_connection((parts.hostname, parts.port), timeout=5)
    sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: app\r\nConnection: close\r\n\r\n")
    answer = b""
    while chunk := sock.recv(65536):  # ends at the server's FIN (its half-close)
        answer += chunk
    return sock, answer


def test_a_client_that_does_not_close_holds_up_nobody(stack, gunicorn_factory):
    g = gunicorn_factory(workers=1, threads=4)
    idle_peers = []
    try:
        for _ in range(3):
            sock, answer = read_answer_keep_socket(g.url)
            assert answer.startswith(b"HTTP/1.1 200"), answer[:100]
            idle_peers.append(sock)
        # The single worker must answer at once while all three peers still hold their
        # sockets; the stock worker would answer only after lingering up to 2 s per peer.
        started = time.monotonic()
        response = requests.get(g.url + "/healthz", timeout=1.5)
        assert response.status_code == 200
        assert response.headers["Connection"] == "close"  # keep-alive is off by default
        assert time.monotonic() - started < 1.5
    finally:
        for sock in idle_peers:
            sock.close()
    assert "Traceback" not in g.log()


def test_a_flood_of_clients_that_never_close_neither_stalls_nor_kills_the_worker(
        stack, gunicorn_factory):
    from leadcard.web.gthread_worker import LINGER_MAX_SOCKETS

    g = gunicorn_factory(workers=1, threads=4)
    worker = g.worker_pids()
    idle_peers = []
    try:
        # More than the worker lingers on at once: the rest are closed at once instead.
        # (gunicorn's own worker would take 2 s per client here: give up after 60 s.)
        give_up = time.monotonic() + 60
        for _ in range(LINGER_MAX_SOCKETS + 50):
            assert time.monotonic() < give_up, "the worker waits for clients to close"
            sock, answer = read_answer_keep_socket(g.url)
            assert answer.startswith(b"HTTP/1.1 200"), answer[:100]
            idle_peers.append(sock)
        response = requests.get(g.url + "/healthz", timeout=1.5)
        assert response.status_code == 200
    finally:
        for sock in idle_peers:
            sock.close()
    assert g.worker_pids() == worker  # the same worker, never restarted
    assert "Traceback" not in g.log()


def test_a_burst_goes_to_the_workers_with_free_threads(stack, gunicorn_factory):
    workers, threads = 2, 2
    hosts = [gunicorn_factory(workers=workers, threads=threads, **PID_ACCESS_LOG)]
    stack.sim.knobs(latency=1.0)  # every view waits 1 s on crm.lead.get: all 4 overlap
    burst = workers * threads
    forms = [stack.sim.placement_request("a", user_id=1, lead_id=101) for _ in range(burst)]
    barrier = threading.Barrier(burst)

    def view(i: int) -> requests.Response:
        url, form = forms[i]
        barrier.wait(timeout=30)
        return requests.post(url.replace(stack.app_url, hosts[0].url), data=form, timeout=30)

    with ThreadPoolExecutor(burst) as pool:
        responses = list(pool.map(view, range(burst)))
    assert [r.status_code for r in responses] == [200] * burst
    served = wait_until(lambda: (c := served_by(hosts)) and sum(c.values()) == burst and c, 5,
                        "access log lines for every view")
    # No worker took more views than it has threads (the default worker_connections allowed
    # threads + 4 before, and one worker could take three while the other idled).
    assert sorted(served.values()) == [threads] * workers, dict(served)


def test_sigterm_lets_views_in_flight_finish(stack, gunicorn_factory):
    g = gunicorn_factory(workers=2, threads=2)
    stack.sim.knobs(latency=1.5)  # GUNICORN_GRACEFUL_TIMEOUT is 3 s in the harness
    n = 4
    lead = stack.sim.sample_lead("a", "rich")
    forms = [stack.sim.placement_request("a", user_id=1, lead_id=int(lead["ID"]))
             for _ in range(n)]

    def view(i: int) -> requests.Response:
        url, form = forms[i]
        return requests.post(url.replace(stack.app_url, g.url), data=form, timeout=30)

    with ThreadPoolExecutor(n) as pool:
        pending = [pool.submit(view, i) for i in range(n)]
        # every view is waiting on Bitrix24 (its request to the portal is open) ...
        portal_port = stack.sim.world.portal("a").port
        wait_until(lambda: connections_to(g.worker_pids(), portal_port) >= n, 15,
                   "all views waiting on the portal")
        g.proc.send_signal(signal.SIGTERM)  # ... when gunicorn is told to stop
        responses = [f.result() for f in pending]
    assert [r.status_code for r in responses] == [200] * n
    assert all(lead["TITLE"] in r.text for r in responses)
    assert g.proc.wait(timeout=15) == 0
    with pytest.raises(requests.ConnectionError):
        requests.get(g.url + "/healthz", timeout=2)
    assert "Traceback" not in g.log()
