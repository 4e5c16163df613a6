"""GET /metrics over real HTTP against the simulator (issue 14): the token enforced, and the
series parsed with prometheus_client's parser moving with real views — ok, no access, not
found, not installed, a renewed viewer token — and their upstream calls."""

from __future__ import annotations

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from devtools.harness import serve_app
from tests.integration.harness import app_settings

TOKEN = "scrape-" + "i" * 32


@pytest.fixture
def metrics_app(sim, app_port, tmp_path):
    live = serve_app(app_settings(sim, app_port, tmp_path, METRICS_TOKEN=TOKEN), app_port)
    try:
        url, form = sim.install_request("a", user_id=1)
        assert live.post(url, form).status_code == 200
        assert sim.finish_install("a") in (200, 201)
        yield live
    finally:
        live.stop()


def scrape(live) -> dict[tuple[str, frozenset], float]:
    response = requests.get(live.url + "/metrics", timeout=10,
                            headers={"Authorization": f"Bearer {TOKEN}"})
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "no-store"
    return {(s.name, frozenset(s.labels.items())): s.value
            for family in text_string_to_metric_families(response.text)
            for s in family.samples}


def moved(before, after, name, **labels) -> float:
    key = (name, frozenset(labels.items()))
    return after.get(key, 0.0) - before.get(key, 0.0)


def view(sim, live, lead_id, user_id=1, portal="a", expire=False):
    url, form = sim.placement_request(portal, user_id=user_id, lead_id=lead_id)
    if expire:
        sim.expire_access_token(form["AUTH_ID"])
    return live.post(url, form)


def test_the_token_is_enforced_over_http(metrics_app):
    url = metrics_app.url + "/metrics"
    assert requests.get(url, timeout=10).status_code == 401
    assert requests.get(url, timeout=10,
                        headers={"Authorization": "Bearer " + "x" * 39}).status_code == 401
    assert requests.head(url, timeout=10).status_code == 401


def test_views_and_their_upstream_calls_are_counted(sim, metrics_app):
    rich, private = sim.sample_lead("a", "rich"), sim.sample_lead("a", "private")
    before = scrape(metrics_app)
    assert view(sim, metrics_app, rich["ID"]).status_code == 200
    assert view(sim, metrics_app, rich["ID"], expire=True).status_code == 200
    assert view(sim, metrics_app, private["ID"], user_id=2).status_code == 403
    assert view(sim, metrics_app, 987654).status_code == 404
    assert view(sim, metrics_app, rich["ID"], portal="b").status_code == 403  # not installed
    after = scrape(metrics_app)
    assert moved(before, after, "leadcard_views_total", outcome="ok") == 2
    assert moved(before, after, "leadcard_views_total", outcome="access_denied") == 1
    assert moved(before, after, "leadcard_views_total", outcome="not_found") == 1
    assert moved(before, after, "leadcard_views_total", outcome="not_installed") == 1
    assert moved(before, after, "leadcard_view_duration_seconds_count") == 5
    assert moved(before, after, "leadcard_token_refreshes_total", result="ok") == 1
    rest_ok = moved(before, after, "leadcard_upstream_requests_total",
                    service="rest", method="batch", outcome="ok")
    assert rest_ok >= 2
    assert moved(before, after, "leadcard_upstream_requests_total",
                 service="rest", method="batch", outcome="expired_token") == 1
    assert moved(before, after, "leadcard_upstream_duration_seconds_count",
                 service="rest", method="batch") >= rest_ok + 1
    assert moved(before, after, "leadcard_cache_requests_total", result="hit") > 0
    # Thousands of portals, no per-portal series.
    names = {value for key in after for _label, value in key[1]}
    assert not names & {p.member_id for p in sim.portals.values()}
