"""Single-flight renewal under gunicorn (2 gthread workers, real processes), SQLite and PostgreSQL.

- A viewer's expired AUTH_ID with its REFRESH_ID, carried by many concurrent placement POSTs
  spread over two gunicorn "hosts" (2 workers x 4 threads each, one database), is renewed
  once (`PortalStore.renew_viewer`); every card renders.
- A worker SIGKILLed while it waits on a delayed refresh of the *stored* grant: gunicorn
  respawns it; the OAuth server is still busy with the killed worker's request (it rotates
  when it finishes, as the real server does, but the hang outlasts the test's follow-up), so
  the next request refreshes once with the still-stored refresh token and the portal stays
  active. (A kill *after* the server answered is covered by the grant journal:
  test_refresh_processes.py.)
"""

from __future__ import annotations

import os
import signal
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests
import sqlalchemy as sa

from leadcard.storage.tables import ACTIVE, viewer_renewals
from tests.concurrency.concurrency_harness import (
    PID_ACCESS_LOG,
    free_port,
    pids_connected_to,
    served_by,
    wait_until,
)

pytestmark = pytest.mark.slow

M = 16


def test_burst_with_one_expired_viewer_pair_renews_once(stack, gunicorn_factory):
    # A second gunicorn ("host") on another port shares the database: the burst spans
    # processes and hosts.
    hosts = [gunicorn_factory(workers=2, threads=4, **PID_ACCESS_LOG),
             gunicorn_factory(workers=2, threads=4, port=free_port(), **PID_ACCESS_LOG)]
    lead = stack.sim.sample_lead("a", "rich")
    url, form = stack.sim.placement_request("a", user_id=2, lead_id=int(lead["ID"]))
    stack.sim.expire_access_token(form["AUTH_ID"])
    # The OAuth server answers after 0.5 s, so requests on both workers meet the expired
    # token while the renewal is still in flight.
    stack.sim.knobs(oauth_latency=0.5)
    before = stack.token_stats()
    barrier = threading.Barrier(M)

    def view(i: int) -> requests.Response:
        target = url.replace(stack.app_url, hosts[i % 2].url)
        barrier.wait(timeout=30)
        return requests.post(target, data=form, timeout=30, allow_redirects=False)

    with ThreadPoolExecutor(M) as pool:
        responses = list(pool.map(view, range(M)))

    after = stack.token_stats()
    assert [r.status_code for r in responses] == [200] * M, [r.text[:200] for r in responses]
    assert all(lead["TITLE"] in r.text for r in responses)
    assert after["refresh"] - before["refresh"] == 1, (before, after)
    assert after["rotated"] - before["rotated"] == 1
    with stack.svc.engine.connect() as conn:
        rows = conn.execute(sa.select(viewer_renewals.c.member_id)).all()
    assert [r.member_id for r in rows] == [stack.member("a")]
    served = wait_until(lambda: (c := served_by(hosts)) and sum(c.values()) == M and c, 5,
                        "access log lines for every request")
    assert len(served) >= 2, f"the burst should reach several processes, got {dict(served)}"
    # The stored (installer's) chain was not touched by the viewer's renewal.
    stack.assert_stored_pair_current("a")


def test_worker_killed_mid_refresh_is_respawned_and_grant_survives(stack, gunicorn_factory):
    """threats.md §6 scenario 6 under gunicorn.

    The stored grant is needed by an ONAPPUNINSTALL event (the app asks the OAuth server
    whether it is still installed before believing it); the stored token is expired, so the
    worker refreshes it first, and the token endpoint hangs.
    """
    g = gunicorn_factory(workers=2, threads=4)
    member = stack.member("a")
    v0 = stack.expire_stored("a")
    stored_before = stack.store.credentials(member).refresh_token
    stack.sim.set_fault("oauth", "token", "hang", seconds=30, count=1)
    before = stack.token_stats()
    event = stack.sim.onappuninstall_form("a")
    outcome: dict = {}

    def first_request() -> None:
        try:
            outcome["response"] = stack.post("/events", event, timeout=40)
        except requests.RequestException as exc:
            outcome["error"] = type(exc).__name__

    t = threading.Thread(target=first_request, daemon=True)
    t.start()
    wait_until(lambda: stack.token_stats()["refresh"] == before["refresh"] + 1, 15,
               "the worker's refresh reached the OAuth server")
    workers_before = g.worker_pids()
    holder = wait_until(lambda: pids_connected_to(workers_before, stack.sim.world.oauth_port), 5,
                        "the worker holding the connection to the OAuth server")
    assert len(holder) == 1, holder
    victim = holder[0]
    os.kill(victim, signal.SIGKILL)
    t.join(timeout=30)
    assert not t.is_alive()
    assert "error" in outcome, f"the killed worker's request cannot have an answer: {outcome}"
    wait_until(lambda: stack.token_stats()["aborted"] == before["aborted"] + 1, 10,
               "the OAuth server saw the client vanish")
    respawned = wait_until(
        lambda: (p := g.worker_pids()) and len(p) == 2 and victim not in p and p, 20,
        "gunicorn respawned the killed worker")
    assert set(respawned) & set(workers_before), "only the killed worker is replaced"
    portal = stack.store.get(member)
    assert portal.status == ACTIVE and portal.token_version == v0

    started = time.monotonic()
    response = stack.post("/events", event, timeout=30)
    elapsed = time.monotonic() - started
    assert response.status_code == 200, response.text[:300]
    assert response.json() == {"status": "ok", "result": "kept: not confirmed"}
    assert elapsed < 10.0, f"the follow-up request took {elapsed:.1f}s"

    after = stack.token_stats()
    assert after["refresh"] - before["refresh"] == 2
    assert after["rotated"] - before["rotated"] == 1, "exactly one successful rotation"
    assert after["aborted"] - before["aborted"] == 1
    portal = stack.store.get(member)
    assert portal.status == ACTIVE and portal.token_version == v0 + 1
    creds = stack.assert_stored_pair_current("a")
    assert creds.refresh_token != stored_before
    lead = stack.sim.sample_lead("a", "rich")
    view = stack.placement("a", user_id=1, lead_id=int(lead["ID"]))
    assert view.status_code == 200 and lead["TITLE"] in view.text
    assert "Traceback" not in g.log()
