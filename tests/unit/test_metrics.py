"""GET /metrics (web/views/metrics.py, core/metrics.py): the token enforced, the exposition
parsed with prometheus_client's own parser, and the counters moving after real views over
the fake Bitrix24 (views, upstream calls, refreshes, bucket waits, cache, actions)."""

from __future__ import annotations

import json

import pytest
from prometheus_client.parser import text_string_to_metric_families

from app import create_app
from leadcard.bitrix24.rest import Deadline, RestClient
from leadcard.core import errors, metrics
from leadcard.core.ratelimit import RateLimited as BucketFull
from leadcard.web.views.placement import view_outcome
from tests.unit.fakes import FakeBitrix24, FakeBucket, fake_services

TOKEN = "scrape-" + "m" * 32
APP_TOKEN = "apptoken" + "t" * 24


def make_app(tmp_path, fake=None, **overrides):
    """A Flask app whose services talk to `fake` (the app's own settings stay for the rest)."""
    app = create_app({
        "B24_CLIENT_ID": "local.metrics", "B24_CLIENT_SECRET": "s" * 32,
        "APP_URL": "https://leadcard.example.test", "SECRET_KEY": "k" * 48,
        "DATABASE_URL": f"sqlite:///{tmp_path}/app.sqlite3",
        "INSTANCE_PATH": str(tmp_path / "app-instance"), "DB_AUTO_MIGRATE": "1",
    })
    app.extensions["leadcard"] = fake_services(tmp_path, fake or FakeBitrix24(), **overrides)
    return app


def scrape(client) -> dict[tuple[str, frozenset], float]:
    """Every sample of an authorised scrape: (sample name, labels) → value."""
    response = client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    assert response.status_code == 200
    samples = {}
    for family in text_string_to_metric_families(response.get_data(as_text=True)):
        for sample in family.samples:
            samples[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return samples


def value(samples, name, **labels) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def moved(before, after, name, **labels) -> float:
    return value(after, name, **labels) - value(before, name, **labels)


# --- the token --------------------------------------------------------------------------

def test_no_metrics_token_means_no_route(tmp_path):
    client = make_app(tmp_path).test_client()
    assert client.get("/metrics").status_code == 404
    assert client.get("/metrics", headers={"Authorization": "Bearer anything"}).status_code == 404


@pytest.mark.parametrize("header", [None, "", "Bearer", "Bearer ", f"Basic {TOKEN}",
                                    "Bearer wrong", f"Bearer {TOKEN}x", f"Bearer {TOKEN[:-1]}",
                                    f"Token {TOKEN}"])
def test_a_missing_or_wrong_token_is_401(tmp_path, header):
    client = make_app(tmp_path, metrics_token=TOKEN).test_client()
    headers = {} if header is None else {"Authorization": header}
    response = client.get("/metrics", headers=headers)
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert "leadcard_" not in response.get_data(as_text=True)


def test_the_right_token_gets_the_exposition_never_cached(tmp_path):
    client = make_app(tmp_path, metrics_token=TOKEN).test_client()
    for scheme in ("Bearer", "bearer"):
        response = client.get("/metrics", headers={"Authorization": f"{scheme} {TOKEN}"})
        assert response.status_code == 200
        assert response.headers["Content-Type"].startswith("text/plain; version=")
        assert response.headers["Cache-Control"] == "no-store"
    names = {family.name for family in
             text_string_to_metric_families(response.get_data(as_text=True))}
    assert {"leadcard_views", "leadcard_view_duration_seconds", "leadcard_upstream_requests",
            "leadcard_upstream_duration_seconds", "leadcard_token_refreshes",
            "leadcard_rate_limit_waits", "leadcard_rate_limit_wait_seconds",
            "leadcard_cache_requests", "leadcard_actions"} <= names


def test_the_token_comes_from_the_environment():
    from leadcard.core.config import load_settings

    env = {"B24_CLIENT_ID": "x", "B24_CLIENT_SECRET": "y", "APP_URL": "https://a.example",
           "SECRET_KEY": "z" * 40}
    assert load_settings(environ=env).metrics_token == ""
    assert load_settings(environ={**env, "METRICS_TOKEN": f" {TOKEN} "}).metrics_token == TOKEN


# --- counters moving after views ---------------------------------------------------------

@pytest.fixture
def world(tmp_path):
    fake = FakeBitrix24()
    portal = fake.add_portal("a", leads={7: {"ID": "7", "TITLE": "Seven", "ASSIGNED_BY_ID": "1"}},
                             users={"1": {"ID": "1", "NAME": "Ann"}})
    app = make_app(tmp_path, fake, metrics_token=TOKEN)
    app.extensions["leadcard"].store.save_grant(
        fake.grant(portal), installed_by=1, license_status="F", language="en",
        application_token=APP_TOKEN)
    return fake, portal, app.test_client()


def post_view(world, lead_id=7, member_id=None, expire=False):
    fake, portal, client = world
    auth, refresh = fake.issue(portal)
    if expire:
        fake.expire(auth)
    form = {"member_id": member_id or portal.member_id, "AUTH_ID": auth, "REFRESH_ID": refresh,
            "AUTH_EXPIRES": "3600", "APPLICATION_TOKEN": APP_TOKEN, "status": "F",
            "PLACEMENT": "CRM_LEAD_DETAIL_TAB",
            "PLACEMENT_OPTIONS": json.dumps({"ID": str(lead_id)})}
    query = f"?DOMAIN={portal.domain}&PROTOCOL=1&LANG=en"
    return client.post("/placement" + query, data=form)


def test_a_view_moves_the_view_upstream_and_cache_series(world):
    client = world[2]
    before = scrape(client)
    assert post_view(world).status_code == 200  # cold: the dictionaries are missed
    cold = scrape(client)
    assert moved(before, cold, "leadcard_views_total", outcome="ok") == 1
    assert moved(before, cold, "leadcard_view_duration_seconds_count") == 1
    assert moved(before, cold, "leadcard_upstream_requests_total",
                 service="rest", method="batch", outcome="ok") == 1
    assert moved(before, cold, "leadcard_upstream_duration_seconds_count",
                 service="rest", method="batch") == 1
    assert moved(before, cold, "leadcard_cache_requests_total", result="miss") > 0
    assert post_view(world).status_code == 200  # warm: they are hit
    warm = scrape(client)
    assert moved(cold, warm, "leadcard_views_total", outcome="ok") == 1
    assert moved(cold, warm, "leadcard_cache_requests_total", result="hit") > 0
    # No per-portal label anywhere.
    portal = world[1]
    assert all(portal.member_id not in str(labels) and portal.domain not in str(labels)
               for _name, labels in warm)


def test_error_pages_count_as_their_outcome(world):
    fake, _portal, client = world
    before = scrape(client)
    assert post_view(world, lead_id=999).status_code == 404
    assert post_view(world, member_id="0" * 32).status_code in (401, 403, 404, 409)
    fake.fail("batch", status=503, error="QUERY_LIMIT_EXCEEDED", times=3)
    assert post_view(world).status_code == 503
    after = scrape(client)
    assert moved(before, after, "leadcard_views_total", outcome="not_found") == 1
    assert moved(before, after, "leadcard_views_total", outcome="not_installed") == 1
    assert moved(before, after, "leadcard_views_total", outcome="rate_limited") == 1
    assert moved(before, after, "leadcard_upstream_requests_total",
                 service="rest", method="batch", outcome="rate_limited") == 3
    assert moved(before, after, "leadcard_view_duration_seconds_count") == 3


def test_a_renewed_viewer_token_counts_a_refresh(world):
    client = world[2]
    before = scrape(client)
    assert post_view(world, expire=True).status_code == 200
    after = scrape(client)
    assert moved(before, after, "leadcard_token_refreshes_total", result="ok") == 1
    assert moved(before, after, "leadcard_upstream_requests_total", service="rest",
                 method="batch", outcome="expired_token") == 1
    assert moved(before, after, "leadcard_upstream_requests_total", service="oauth",
                 method="oauth.refresh_token", outcome="ok") == 1


def test_bucket_waits_and_refusals_are_counted(tmp_path):
    fake = FakeBitrix24()
    portal = fake.add_portal("a", leads={7: {"ID": "7", "TITLE": "Seven"}})
    token, _refresh = fake.issue(portal)

    class Waiting(FakeBucket):
        """Its next slot is `delay` seconds off: waited for, or refused beyond max_wait."""

        def __init__(self, delay):
            super().__init__()
            self.delay = delay

        def acquire(self, key, max_wait):
            if self.delay > max_wait:
                raise BucketFull(self.delay)
            return self.delay

    client = make_app(tmp_path, fake, metrics_token=TOKEN).test_client()
    before = scrape(client)
    for delay in (0.3, 99.0):
        rest = RestClient(fake, Waiting(delay), connect_timeout=3.05, read_timeout=6.0,
                          allow_http=False, sleep=lambda _s: None)
        try:
            rest.call(portal.endpoint, "crm.lead.get", {"id": 7}, token,
                      bucket_key=portal.member_id, deadline=Deadline.after(10))
        except errors.RateLimited:
            assert delay == 99.0
    after = scrape(client)
    assert moved(before, after, "leadcard_rate_limit_waits_total", result="waited") == 1
    assert moved(before, after, "leadcard_rate_limit_waits_total", result="refused") == 1
    assert moved(before, after, "leadcard_rate_limit_wait_seconds_sum") == pytest.approx(0.3)


def test_actions_are_counted_with_bounded_labels(tmp_path):
    client = make_app(tmp_path, metrics_token=TOKEN).test_client()
    before = scrape(client)
    metrics.observe_action("comment", "ok")
    metrics.observe_action("stage", "denied")
    metrics.observe_action("<script>", "something new")
    after = scrape(client)
    assert moved(before, after, "leadcard_actions_total", kind="comment", outcome="ok") == 1
    assert moved(before, after, "leadcard_actions_total", kind="stage", outcome="denied") == 1
    assert moved(before, after, "leadcard_actions_total", kind="other", outcome="error") == 1


# --- bounded label values ---------------------------------------------------------------

@pytest.mark.parametrize(("status", "code", "outcome"), [
    (200, None, "ok"), (500, None, "error"),
    (404, "lead_not_found", "not_found"), (403, "access_denied", "access_denied"),
    (404, "not_installed", "not_installed"), (409, "app_not_installed", "not_installed"),
    (503, "rate_limited", "rate_limited"), (503, "busy", "rate_limited"),
    (500, "internal", "error"), (401, "session_expired", "session_expired"),
    (500, "made_up_code", "error"),
])
def test_view_outcomes(status, code, outcome):
    assert view_outcome(status, code) == outcome


@pytest.mark.parametrize(("status", "code", "outcome"), [
    (200, "", "ok"), (None, "read_timeout", "timeout"), (None, "unreachable", "unreachable"),
    (401, "expired_token", "expired_token"), (403, "ACCESS_DENIED", "access_denied"),
    (503, "QUERY_LIMIT_EXCEEDED", "rate_limited"), (400, "Some_New_Code", "error"),
    (502, "", "http_5xx"), (404, "", "http_4xx"),
])
def test_upstream_outcomes(status, code, outcome):
    assert metrics.upstream_outcome(status, code) == outcome


def test_odd_method_names_are_folded():
    before = metrics.UPSTREAM.labels("rest", "other", "ok")._value.get()
    metrics.observe_upstream("rest", "crm.lead.get?x=<1>", 200, "", 0.01)
    assert metrics.UPSTREAM.labels("rest", "other", "ok")._value.get() == before + 1
