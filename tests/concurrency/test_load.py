"""Load with faults: thousands of lead-tab views against gunicorn + the simulator.

Dozens of viewers (threads with requests sessions) open cards on portal a and, at the same
time, on portal b, through gunicorn (2 gthread workers x 8 threads, the embedded SQLite
default). The simulated portals inject faults on a few percent of REST requests (500 JSON,
502 HTML, 503 QUERY_LIMIT_EXCEEDED, dropped connections). Some frames arrive with an expired
AUTH_ID (viewer renewal), and every few seconds the stored grant of portal a expires and an
ONAPPUNINSTALL (then a stored-grant call) forces a stored refresh in the middle of the traffic.

Pass criteria:
- zero 500s; every 5xx is a designed 502/503/504 error page carrying a problem code;
- every 200 shows the requested lead, every 403 is a lead the viewer may not read;
- every token row decrypts afterwards; the stored pairs are the simulator's newest; one
  renewal per expired viewer pair, one rotation per stored refresh (nothing lost or doubled);
- gunicorn workers never died, their RSS stays flat (< 30 MB growth after warm-up);
- the whole test stays under 90 s.
"""

from __future__ import annotations

import collections
import random
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests
import sqlalchemy as sa
from markupsafe import escape

from leadcard.bitrix24.rest import Deadline
from leadcard.core.errors import LeadCardError
from leadcard.storage.tables import ACTIVE, portals, viewer_renewals
from tests.concurrency.concurrency_harness import DESIGNED_5XX, problem_code, rss_mb, running_stack

pytestmark = pytest.mark.slow

TOTAL_VIEWS = 2500
VIEWERS_A = 32
VIEWERS_B = 6
VIEWS_PER_FRAME = 8          # a user reloading the tab reuses the frame's AUTH_ID
EXPIRED_FRAME_SHARE = 0.03   # frames whose AUTH_ID expired before the POST (viewer renewal)
STORED_REFRESH_EVERY = 2.0   # seconds between forced stored-grant refreshes on portal a
FAULTS = [  # (kind, spec, probability) per portal REST request, portals a and b
    ("error", {"error": "INTERNAL_SERVER_ERROR", "status": 500}, 0.02),
    ("html", {"status": 502}, 0.01),
    # Rare: each one really pauses the portal for every worker (its counter is full, as far
    # as the app can tell), so at 2 % it would keep the portal paused most of the time.
    ("error", {"error": "QUERY_LIMIT_EXCEEDED", "status": 503}, 0.002),
    ("drop", {}, 0.01),
]
MAX_RSS_GROWTH_MB = 30.0
LEADS = {"a": [101, 102, 103, 104, 105, 106, 107], "b": [201, 202]}


# The app's own per-portal bucket (2/s by default, like Bitrix24) would make this a 20-minute
# test; it still runs on every request, just with room for the load. The in-process app of the
# stack (stored-grant calls) shares the bucket, so it gets the same allowance: a pause it sets
# after a QUERY_LIMIT_EXCEEDED counts the bucket as full at *its* burst.
LOAD_RATE = {"B24_RATE_PER_SECOND": "1000", "B24_RATE_BURST": "1000"}


@pytest.fixture
def stack(database_url, tmp_path):
    with running_stack(tmp_path, database_url, **LOAD_RATE) as s:
        yield s


def test_thousands_of_views_with_faults(stack, gunicorn_factory):
    started = time.monotonic()
    sim = stack.sim
    for portal in ("a", "b"):
        sim.knobs(portal, rate_limit=False)
        for kind, spec, probability in FAULTS:
            sim.set_fault(portal, "*", kind, probability=probability, count=None, **spec)
    g = gunicorn_factory(workers=2, threads=8, **LOAD_RATE)
    workers = g.worker_pids()
    member_a = stack.member("a")
    v0 = stack.store.get(member_a).token_version
    tokens0 = stack.token_stats()

    expected = {}  # (portal, user, lead) -> (readable, escaped title)
    with sim.world.lock:
        for portal, leads in LEADS.items():
            p = sim.world.portal(portal)
            for user in (1, 2):
                for lead in leads:
                    record = p.leads[lead]
                    expected[(portal, user, lead)] = (p.can_read(user, record),
                                                      str(escape(record["TITLE"])))

    lock = threading.Lock()
    issued = 0
    results: list[tuple[str, int, int, int, str | None, bool, float]] = []
    unexpected: list[str] = []
    expired_frames = 0
    rss_warm: dict[int, float] = {}

    def next_view() -> bool:
        nonlocal issued
        with lock:
            if issued >= TOTAL_VIEWS:
                return False
            issued += 1
            if issued == TOTAL_VIEWS // 10:
                for pid in workers:
                    rss_warm[pid] = rss_mb(pid)
            return True

    def viewer(portal: str, seed: int) -> None:
        nonlocal expired_frames
        rng = random.Random(seed)
        user = 1 + seed % 2
        session = requests.Session()
        frame: tuple[str, dict] | None = None
        uses = 0
        try:
            while next_view():
                if frame is None or uses >= VIEWS_PER_FRAME:
                    lead = rng.choice(LEADS[portal])
                    url, form = sim.placement_request(portal, user_id=user, lead_id=lead)
                    if rng.random() < EXPIRED_FRAME_SHARE:
                        sim.expire_access_token(form["AUTH_ID"])
                        with lock:
                            expired_frames += 1
                    frame, uses = (url, form), 0
                uses += 1
                url, form = frame
                lead = int(form["PLACEMENT_OPTIONS"].split('"')[3])
                t0 = time.monotonic()
                try:
                    r = session.post(url, data=form, timeout=30, allow_redirects=False)
                except requests.RequestException as exc:
                    with lock:
                        unexpected.append(f"{portal} lead {lead}: no answer ({type(exc).__name__})")
                    continue
                elapsed = time.monotonic() - t0
                code = problem_code(r.text) if r.status_code != 200 else None
                readable, title = expected[(portal, user, lead)]
                good = (
                    (r.status_code == 200 and readable and title in r.text)
                    or (r.status_code == 403 and not readable and code == "access_denied")
                    or (r.status_code in DESIGNED_5XX and code not in (None, "internal"))
                )
                with lock:
                    results.append((portal, user, lead, r.status_code, code, good, elapsed))
                    if not good:
                        unexpected.append(f"{portal} user {user} lead {lead}: {r.status_code} "
                                          f"{code} {r.text[:160]!r}")
        finally:
            session.close()

    stop_ops = threading.Event()
    stored_refreshes: list[int] = []

    def operations() -> None:
        """Every few seconds the stored grant of a expires and something needs it: first an
        ONAPPUNINSTALL through gunicorn, then (the app meters uninstall confirmations per
        portal, attempts.py) a stored-grant call as `portals check` makes it, from this
        process on the same database."""
        event = sim.onappuninstall_form("a")
        first = True
        while not stop_ops.wait(STORED_REFRESH_EVERY):
            stack.expire_stored("a")
            if first:
                first = False
                r = stack.post("/events", event, timeout=30)
                stored_refreshes.append(r.status_code)
                if r.status_code != 200 or r.json().get("result") != "kept: not confirmed":
                    with lock:
                        unexpected.append(f"ONAPPUNINSTALL with expired stored grant: "
                                          f"{r.status_code} {r.text[:160]}")
                continue
            try:
                stack.svc.portal_api.call(stack.member("a"), "app.info", {},
                                          deadline=Deadline.after(20))
                stored_refreshes.append(200)
            except LeadCardError as exc:
                with lock:
                    unexpected.append(f"stored call with an expired grant: {exc.code}")

    ops = threading.Thread(target=operations, daemon=True)
    load_started = time.monotonic()
    ops.start()
    try:
        with ThreadPoolExecutor(VIEWERS_A + VIEWERS_B) as pool:
            futures = [pool.submit(viewer, "a", i) for i in range(VIEWERS_A)]
            futures += [pool.submit(viewer, "b", 1000 + i) for i in range(VIEWERS_B)]
            for f in futures:
                f.result(timeout=120)
    finally:
        stop_ops.set()
        ops.join(timeout=40)
    load_seconds = time.monotonic() - load_started
    rss_end = {pid: rss_mb(pid) for pid in workers if pid in g.worker_pids()}

    # --- answers ---------------------------------------------------------------------------
    statuses = collections.Counter(r[3] for r in results)
    problems = collections.Counter(r[4] for r in results if r[4])
    latencies = sorted(r[6] for r in results)
    p50 = latencies[len(latencies) // 2]
    p95 = latencies[int(len(latencies) * 0.95)]
    per_portal = collections.Counter(r[0] for r in results)
    rate = len(results) / load_seconds
    summary = (f"{len(results)} views in {load_seconds:.1f}s ({rate:.0f}/s); "
               f"statuses {dict(statuses)}; problems {dict(problems)}; "
               f"per portal {dict(per_portal)}; p50 {p50 * 1000:.0f} ms p95 {p95 * 1000:.0f} ms "
               f"max {latencies[-1] * 1000:.0f} ms; "
               f"expired frames {expired_frames}; stored refreshes {len(stored_refreshes)}; "
               f"RSS warm {rss_warm} end {rss_end}")
    print("\nLOAD:", summary)
    assert not unexpected, f"{len(unexpected)} unexpected answers, e.g. {unexpected[:5]}\n{summary}"
    assert len(results) == TOTAL_VIEWS
    assert statuses[500] == 0
    assert all(s == 200 or s == 403 or s in DESIGNED_5XX for s in statuses), summary
    assert per_portal["b"] > 0 and per_portal["a"] > 0
    # The faults really happened and were absorbed: most views still render.
    portal_stats = sim.stats()["portals"]
    injected = sum(portal_stats[p]["statuses"].get(k, 0)
                   for p in ("a", "b") for k in ("500", "502", "503"))
    injected += sum(portal_stats[p]["dropped"] for p in ("a", "b"))
    assert injected > 50, f"only {injected} faults were injected: {summary}"
    readable = [r for r in results if expected[(r[0], r[1], r[2])][0]]
    rendered = sum(1 for r in readable if r[3] == 200)
    assert rendered >= 0.95 * len(readable), summary

    # --- processes --------------------------------------------------------------------------
    assert sorted(g.worker_pids()) == sorted(workers), "a gunicorn worker died or was replaced"
    log = g.log()
    assert "Traceback" not in log and "unexpected error" not in log and "WORKER TIMEOUT" not in log
    for pid in workers:
        growth = rss_end[pid] - rss_warm[pid]
        assert growth < MAX_RSS_GROWTH_MB, f"worker {pid} RSS grew {growth:.1f} MB: {summary}"

    # --- tokens -----------------------------------------------------------------------------
    tokens = stack.token_stats()
    assert stored_refreshes and set(stored_refreshes) == {200}
    assert tokens["refresh"] - tokens0["refresh"] == expired_frames + len(stored_refreshes), \
        "exactly one renewal per expired viewer pair and per stored refresh"
    assert tokens["rotated"] - tokens0["rotated"] == expired_frames + len(stored_refreshes)
    keys = stack.svc.keyring
    with stack.svc.engine.connect() as conn:
        rows = conn.execute(sa.select(portals)).all()
        renewals = conn.execute(sa.select(viewer_renewals)).all()
    assert len(rows) == 2
    for row in rows:
        m = row._mapping
        assert m["status"] == ACTIVE
        for column in ("access_token", "refresh_token", "application_token"):
            assert keys.decrypt(m[column])
    assert len(renewals) == expired_frames
    for row in renewals:
        assert keys.decrypt(row.access_token) and keys.decrypt(row.refresh_token)
    assert stack.store.get(member_a).token_version == v0 + len(stored_refreshes)
    stack.assert_stored_pair_current("a")
    stack.assert_stored_pair_current("b")

    total = time.monotonic() - started
    assert total < 90, f"the load test took {total:.0f}s"
