"""A spent rate limit answers fast; Bitrix24's refusals pause the portal (issue 10, defect 6).

Real gunicorn (one host, 2 gthread workers x 8 threads, SQLite), the simulator's leaky-bucket
limit on (2 req/s, burst 50, its default), 40 viewers opening cards of portal a for a few
seconds (bounded in views and time).

- With the app's default bucket (2/s, 50, like the portal): every answer is the card or the
  designed busy page (503 ``rate_limited`` with ``Retry-After``), each well inside the 10 s
  view budget. Before: after the burst every view waited 20 s (bucket sleep + gunicorn queue).
- With the app's bucket above the portal's real limit (20/s, burst 200): Bitrix24's
  QUERY_LIMIT_EXCEEDED pauses the portal for every worker, so refusals counted at the
  simulator stay a small fraction of the busy pages. Before: each refused view made 3 requests.
"""

from __future__ import annotations

import collections
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from markupsafe import escape

from tests.concurrency.concurrency_harness import gunicorns, problem_code, running_stack

pytestmark = pytest.mark.slow

VIEWERS = 40
MAX_VIEWS = 400
TRAFFIC_SECONDS = 8.0
# Budget 10 s; the slot wait is capped at 2 s per upstream request. Generous for a loaded
# 2-core machine, far below the 20 s of issue 10.
ANSWER_BOUND = 7.0
LEADS = [101, 102, 103, 104, 105, 106, 107]


def _traffic(stack):
    """VIEWERS threads viewing cards of portal a until MAX_VIEWS or TRAFFIC_SECONDS."""
    import requests

    sim = stack.sim
    with sim.world.lock:
        titles = {lead: str(escape(sim.world.portal("a").leads[lead]["TITLE"])) for lead in LEADS}
    lock = threading.Lock()
    results: list[tuple[str, float, str]] = []
    issued = 0
    stop_at = time.monotonic() + TRAFFIC_SECONDS

    def viewer(seed: int) -> None:
        nonlocal issued
        session = requests.Session()
        try:
            while True:
                with lock:
                    if issued >= MAX_VIEWS or time.monotonic() > stop_at:
                        return
                    issued += 1
                lead = LEADS[(seed + issued) % len(LEADS)]
                url, form = sim.placement_request("a", user_id=1, lead_id=lead)
                started = time.monotonic()
                try:
                    r = session.post(url, data=form, timeout=25, allow_redirects=False)
                except requests.RequestException as exc:
                    kind = f"no answer ({type(exc).__name__})"
                else:
                    if r.status_code == 200 and titles[lead] in r.text:
                        kind = "card"
                    elif (r.status_code == 503 and problem_code(r.text) == "rate_limited"
                          and int(r.headers.get("Retry-After", "0")) >= 1):
                        kind = "busy"
                    else:
                        kind = f"{r.status_code} {problem_code(r.text)} {r.text[:120]!r}"
                with lock:
                    results.append((kind, time.monotonic() - started, str(lead)))
        finally:
            session.close()

    with ThreadPoolExecutor(VIEWERS) as pool:
        for f in [pool.submit(viewer, i) for i in range(VIEWERS)]:
            f.result(timeout=120)
    return results


def _summary(results, sim):
    kinds = collections.Counter(k for k, _, _ in results)
    slowest = max(e for _, e, _ in results)
    stats = sim.stats()["portals"]["a"]
    return kinds, slowest, stats, (f"{len(results)} views: {dict(kinds)}; slowest "
                                   f"{slowest:.2f}s; simulator refused {stats['rate_limited']} "
                                   f"of {stats['rest_requests'] if 'rest_requests' in stats else '?'}")


def test_spent_limit_answers_the_busy_page_fast(tmp_path):
    with running_stack(tmp_path, f"sqlite:///{tmp_path}/leadcard.sqlite3") as stack, \
            gunicorns(stack) as start:
        g = start(workers=2, threads=8)
        results = _traffic(stack)
        kinds, slowest, _stats, summary = _summary(results, stack.sim)
        print("\nBUSY:", summary)
        assert set(kinds) <= {"card", "busy"}, summary
        assert kinds["card"] > 0 and kinds["busy"] > 0, summary  # the limit really ran out
        assert slowest < ANSWER_BOUND, summary
        log = g.log()
        assert "Traceback" not in log and "WORKER TIMEOUT" not in log


def test_refusals_by_bitrix24_pause_the_portal_for_every_worker(tmp_path):
    with running_stack(tmp_path, f"sqlite:///{tmp_path}/leadcard.sqlite3") as stack, \
            gunicorns(stack) as start:
        start(workers=2, threads=8, B24_RATE_PER_SECOND="20", B24_RATE_BURST="200")
        refused_before = stack.sim.stats()["portals"]["a"]["rate_limited"]
        results = _traffic(stack)
        kinds, slowest, stats, summary = _summary(results, stack.sim)
        print("\nPAUSE:", summary)
        refused = stats["rate_limited"] - refused_before
        assert set(kinds) <= {"card", "busy"}, summary
        assert kinds["busy"] > 0 and refused > 0, summary  # the app's rate really was too high
        # Each refusal pauses the portal: at most one refused request per two busy pages
        # (before the fix, more than three per busy page).
        assert refused <= max(20, kinds["busy"] // 2), summary
        assert slowest < ANSWER_BOUND, summary
