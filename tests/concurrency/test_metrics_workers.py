"""GET /metrics under real gunicorn with 2 workers (gunicorn.conf.py's multiprocess set-up):
views served by both workers are summed in every scrape, whichever worker answers it."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from tests.concurrency.concurrency_harness import PID_ACCESS_LOG, served_by, wait_until

pytestmark = pytest.mark.slow

TOKEN = "scrape-" + "w" * 32


def scraped_views(url: str) -> tuple[float, float]:
    """(leadcard_views_total{outcome="ok"}, upstream crm attempts) of one scrape."""
    response = requests.get(url + "/metrics", headers={"Authorization": f"Bearer {TOKEN}"},
                            timeout=10)
    assert response.status_code == 200, response.text[:300]
    views = upstream = 0.0
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            if sample.name == "leadcard_views_total" and sample.labels == {"outcome": "ok"}:
                views += sample.value
            if sample.name == "leadcard_upstream_requests_total" and \
                    sample.labels.get("service") == "rest":
                upstream += sample.value
    return views, upstream


def test_counts_from_both_workers_are_summed(stack, gunicorn_factory):
    workers, threads = 2, 2
    g = gunicorn_factory(workers=workers, threads=threads, METRICS_TOKEN=TOKEN, **PID_ACCESS_LOG)
    assert requests.get(g.url + "/metrics", timeout=10).status_code == 401
    # A worker takes only as many connections as it has threads (gunicorn.conf.py), so a
    # burst of workers × threads slow views is served by both workers.
    stack.sim.knobs(latency=0.5)
    burst = workers * threads
    forms = [stack.sim.placement_request("a", user_id=1, lead_id=101) for _ in range(burst)]
    barrier = threading.Barrier(burst)

    def view(i: int) -> int:
        url, form = forms[i]
        barrier.wait(timeout=10)
        return requests.post(url, data=form, timeout=30, allow_redirects=False).status_code

    with ThreadPoolExecutor(burst) as pool:
        assert list(pool.map(view, range(burst))) == [200] * burst
    stack.sim.knobs(latency=0.0)
    served = wait_until(lambda: (c := served_by([g])) and sum(c.values()) == burst and c, 5,
                        "access log lines for every view")
    assert len(served) == workers, dict(served)  # both workers served views
    # Every scrape (each served by one worker or the other) sees the sum of both.
    for _ in range(6):
        views, upstream = scraped_views(g.url)
        assert views == burst
        assert upstream >= burst
    # gunicorn writes an access-log line after its answer is sent: wait for the last one.
    scrapers = wait_until(lambda: (c := served_by([g], path="/metrics"))
                          and sum(c.values()) == 7 and c, 5, "access log lines for every scrape")
    assert sum(scrapers.values()) == 7
