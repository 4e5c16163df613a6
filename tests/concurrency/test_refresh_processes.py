"""Single-flight refresh of the *stored* grant across OS processes (SQLite file and PostgreSQL).

threats.md §2.4 and §6 scenarios 1–3, 6–7: Bitrix24 refresh tokens are single-use, so N
processes that all find the stored access token expired must spend the refresh token exactly
once; a process killed while its refresh is in flight (before the OAuth server rotated) must not
lose the grant; a process killed after it read the server's answer but before the row was
written must not lose it either (the local grant journal); a process killed after the server
rotated but before it read the answer (lost response) leaves a grant that is honestly marked
`reauth_required` and re-seeded by an administrator opening the app.

The simulator rotates like the real server: a refresh whose client went away is processed to
the end all the same (its refresh token is spent, the answer lost).

The simulator's token endpoint plays the OAuth server over real HTTP; every process here is a
real `python` running `create_app()` from the environment, sharing only the database.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time

import pytest

from leadcard.bitrix24.rest import Deadline
from leadcard.core import errors
from leadcard.storage.portals import ACTIVE, REAUTH_REQUIRED
from tests.concurrency.concurrency_harness import (
    ROOT,
    pg_backends_waiting_on_lock,
    running_stack,
    wait_until,
)

pytestmark = pytest.mark.slow

N = 6


def _go_together(ds) -> None:  # type: ignore[no-untyped-def]
    for d in ds:
        d.expect("ready", timeout=60)
    for d in ds:
        d.go()


@pytest.mark.parametrize("trigger", ["expires_at", "expired_token"])
def test_n_processes_spend_the_stored_refresh_token_once(stack, drivers, trigger):
    """N processes find the stored token expired at the same instant → one refresh, N successes.

    `expires_at`: the row says expired (proactive renewal before the call).
    `expired_token`: only Bitrix24 knows (REST answers expired_token, renewal after it).
    The OAuth server answers after 1 s, so every process has read the old row long before the
    winner commits: all of them go into `PortalStore.refresh` with the same version.
    """
    member = stack.member("a")
    if trigger == "expires_at":
        v0 = stack.expire_stored("a")
    else:
        creds = stack.store.credentials(member)
        stack.sim.expire_access_token(creds.access_token)
        v0 = creds.version
    old_refresh = stack.store.credentials(member).refresh_token
    stack.sim.knobs(oauth_latency=1.0)
    before = stack.token_stats()

    ds = [drivers(stack, member) for _ in range(N)]
    _go_together(ds)
    waiting_seen = 0
    if stack.svc.engine.dialect.name == "postgresql":
        # Proof that the losers really queue on the row lock while the winner's refresh is
        # in flight (sampled until the first process finishes).
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and not any(d.has_output() for d in ds):
            waiting_seen = max(waiting_seen, pg_backends_waiting_on_lock(stack))
            time.sleep(0.05)
    results = [d.expect("done", timeout=60) for d in ds]

    after = stack.token_stats()
    assert [r["ok"] for r in results] == [True] * N, results
    assert after["refresh"] - before["refresh"] == 1, (before, after)
    assert after["rotated"] - before["rotated"] == 1
    assert sum(r["oauth_refresh_calls"] for r in results) == 1, results
    assert {r["version_after"] for r in results} == {v0 + 1}
    if stack.svc.engine.dialect.name == "postgresql":
        assert waiting_seen == N - 1, \
            f"expected {N - 1} processes queued on the row lock, saw {waiting_seen}"
    portal = stack.store.get(member)
    assert portal.status == ACTIVE and portal.token_version == v0 + 1
    creds = stack.assert_stored_pair_current("a")
    assert creds.refresh_token != old_refresh


def test_concurrent_portals_check_commands_refresh_once(stack):
    """`flask --app app portals check` started N times at once: one refresh for portal a."""
    member = stack.member("a")
    v0 = stack.expire_stored("a")
    stack.sim.knobs(oauth_latency=1.0)
    before = stack.token_stats()
    env = stack.env()
    procs = [subprocess.Popen([sys.executable, "-m", "flask", "--app", "app", "portals", "check"],
                              cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              text=True, start_new_session=True) for _ in range(N)]
    try:
        outputs = [p.communicate(timeout=90)[0] for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait(timeout=5)
    assert [p.returncode for p in procs] == [0] * N, outputs
    for out in outputs:
        assert f"ok   {member}" in out and f"ok   {stack.member('b')}" in out, out
    after = stack.token_stats()
    assert after["refresh"] - before["refresh"] == 1, (before, after)
    assert stack.store.get(member).token_version == v0 + 1
    stack.assert_stored_pair_current("a")
    stack.assert_stored_pair_current("b")


def test_process_killed_before_rotation_loses_nothing(stack, drivers):
    """SIGKILL the refresher while the OAuth server is still working on its request.

    The killed process's row lock dies with its connection; a second process that was queued
    on that lock gets it and refreshes with the still-stored refresh token while the server is
    still busy with the first request, so the portal stays active. The server sees the first
    client vanish (`token_aborted`) and, like the real one, goes on with it anyway: when it
    gets to it (after the 30 s hang, past this test) that refresh token is already spent and
    the request is refused, rotating nothing. Exactly one successful rotation overall.
    """
    member = stack.member("a")
    v0 = stack.expire_stored("a")
    stored_before = stack.store.credentials(member).refresh_token
    stack.sim.set_fault("oauth", "token", "hang", seconds=30, count=1)
    before = stack.token_stats()

    first = drivers(stack, member)
    second = drivers(stack, member)
    first.expect("ready", timeout=60)
    second.expect("ready", timeout=60)
    first.go()
    wait_until(lambda: stack.token_stats()["refresh"] == before["refresh"] + 1, 15,
               "the first process's refresh reached the OAuth server")
    second.go()  # queues behind the first process's lock
    if stack.svc.engine.dialect.name == "postgresql":
        wait_until(lambda: pg_backends_waiting_on_lock(stack) == 1, 10,
                   "the second process waits on the row lock")
    else:
        time.sleep(1.0)
    assert not second.has_output(), "the second process must wait for the lock holder"
    assert stack.token_stats()["refresh"] == before["refresh"] + 1

    first.signal(signal.SIGKILL)
    killed_at = time.monotonic()
    first.proc.wait(timeout=5)
    wait_until(lambda: stack.token_stats()["aborted"] == before["aborted"] + 1, 10,
               "the OAuth server saw the client vanish")
    done = second.expect("done", timeout=30)
    waited_after_kill = time.monotonic() - killed_at

    after = stack.token_stats()
    assert done["ok"] is True, done
    assert done["oauth_refresh_calls"] == 1
    assert after["refresh"] - before["refresh"] == 2  # the aborted one and the real one
    assert after["rotated"] - before["rotated"] == 1
    assert after["aborted"] - before["aborted"] == 1
    assert waited_after_kill < 5.0, f"lock released {waited_after_kill:.1f}s after the kill"
    portal = stack.store.get(member)
    assert portal.status == ACTIVE and portal.token_version == v0 + 1
    creds = stack.assert_stored_pair_current("a")
    assert creds.refresh_token != stored_before


@pytest.fixture
def own_instance_stack(database_url, tmp_path):
    """A stack whose processes keep their instance files (the grant journal) in tmp_path."""
    with running_stack(tmp_path, database_url, INSTANCE_PATH=str(tmp_path / "instance")) as s:
        yield s


def test_process_killed_after_the_answer_loses_nothing(own_instance_stack, drivers):
    """SIGKILL the refresher after the OAuth server answered, before the row was written.

    The server has rotated: the stored refresh token is spent and the answer, in the dead
    process, was the only valid pair. Before issue 10 (defect 5) the next refresh spent the
    spent token again → invalid_grant → `reauth_required`, an administrator had to open the
    app. Now the answer was journalled on this host first: the next process stores it from
    the journal, sends nothing to the OAuth server, and the portal stays active.
    """
    stack = own_instance_stack
    member = stack.member("a")
    v0 = stack.expire_stored("a")
    spent = stack.store.credentials(member).refresh_token
    before = stack.token_stats()

    victim = drivers(stack, member, pause_before_store=True)
    victim.expect("ready", timeout=60)
    victim.go()
    victim.expect("storing", timeout=30)
    assert stack.token_stats()["rotated"] == before["rotated"] + 1
    with stack.sim.world.lock:
        assert stack.sim.world.grants_by_refresh[spent].refresh_used  # spent at the server
    victim.signal(signal.SIGKILL)
    victim.proc.wait(timeout=5)
    portal = stack.store.get(member)
    assert portal.status == ACTIVE and portal.token_version == v0  # nothing was written

    nxt = drivers(stack, member)
    nxt.expect("ready", timeout=60)
    nxt.go()
    done = nxt.expect("done", timeout=30)
    assert done["ok"] is True, done
    assert done["oauth_refresh_calls"] == 0, "the spent refresh token was sent again"
    after = stack.token_stats()
    assert after["refresh"] == before["refresh"] + 1 and after["rotated"] == before["rotated"] + 1
    portal = stack.store.get(member)
    assert portal.status == ACTIVE and portal.token_version == v0 + 1
    stack.assert_stored_pair_current("a")
    assert not list((stack.tmp_path / "instance" / "grant-journal").glob("*.grant"))


def test_lost_refresh_response_is_reauth_then_reseeded_by_admin(stack, drivers):
    """Rotate-then-killed: the OAuth server rotated, the process never saw the answer.

    The simulator has no rotate-then-hang knob; the same situation is made with the real
    process: it is frozen (SIGSTOP) while the server delays its answer, the server finds the
    socket still open and rotates, then the process is SIGKILLed with the new pair unread in
    its socket buffer. The stored refresh token is now spent.

    Expected (threats.md §2.4 "Ambiguous outcome", scenario 7): the next refresh gets
    invalid_grant under the lock → `reauth_required`, row kept; no further refresh attempts
    while in that state; the viewer's card still renders (it uses AUTH_ID); an administrator
    opening the app page re-seeds the stored grant → `active`, and it refreshes normally again.
    """
    member = stack.member("a")
    v0 = stack.expire_stored("a")
    stack.sim.set_fault("oauth", "token", "hang", seconds=1.5, count=1)
    before = stack.token_stats()

    victim = drivers(stack, member)
    victim.expect("ready", timeout=60)
    victim.go()
    wait_until(lambda: stack.token_stats()["refresh"] == before["refresh"] + 1, 15,
               "the refresh reached the OAuth server")
    victim.signal(signal.SIGSTOP)
    wait_until(lambda: stack.token_stats()["rotated"] == before["rotated"] + 1, 10,
               "the OAuth server rotated the pair for the frozen process")
    victim.signal(signal.SIGKILL)
    victim.proc.wait(timeout=5)
    assert stack.token_stats()["aborted"] == before["aborted"]
    portal = stack.store.get(member)
    assert portal.status == ACTIVE and portal.token_version == v0  # nothing was written

    # The next stored call: invalid_grant under the lock → reauth_required, row kept.
    nxt = drivers(stack, member)
    nxt.expect("ready", timeout=60)
    nxt.go()
    done = nxt.expect("done", timeout=30)
    assert done["ok"] is False and done["code"] == "token_revoked", done
    portal = stack.store.get(member)
    assert portal.status == REAUTH_REQUIRED and portal.has_tokens
    assert portal.token_version == v0
    calls_after_reauth = stack.token_stats()["refresh"]
    assert calls_after_reauth == before["refresh"] + 2

    # Circuit open: more stored calls do not hammer the OAuth server (no refresh storm).
    for _ in range(3):
        with pytest.raises(errors.TokenRevoked):
            stack.svc.portal_api.call(member, "app.info", {}, deadline=Deadline.after(10))
    assert stack.token_stats()["refresh"] == calls_after_reauth, \
        "refresh storm after reauth_required"

    # Viewers keep working: the card reads with the viewer's own AUTH_ID.
    lead = stack.sim.sample_lead("a", "rich")
    response = stack.placement("a", user_id=2, lead_id=int(lead["ID"]))
    assert response.status_code == 200, response.text[:300]
    assert lead["TITLE"] in response.text

    # An administrator opens the app: the stored chain is re-seeded from their verified pair.
    url, form = stack.sim.app_request("a", user_id=1)
    response = stack.post(url, form)
    assert response.status_code == 200, response.text[:300]
    portal = stack.store.get(member)
    assert portal.status == ACTIVE and portal.token_version > v0
    creds = stack.assert_stored_pair_current("a")
    assert creds.refresh_token == form["REFRESH_ID"]

    # And the re-seeded grant renews normally when it expires.
    v1 = stack.expire_stored("a")
    mark = stack.token_stats()
    stack.svc.portal_api.call(member, "app.info", {}, deadline=Deadline.after(10))
    assert stack.token_stats()["rotated"] == mark["rotated"] + 1
    assert stack.store.get(member).token_version == v1 + 1
    stack.assert_stored_pair_current("a")
