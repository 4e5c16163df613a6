"""One upstream request per view: a cold view is one batch with the lookups, a warm one a
batch of the lead and its context panels only.

Counted at the simulator (real HTTP requests it received), with the in-process cache and,
when TEST_REDIS_URL is set, with the Redis cache shared by workers.
"""

from __future__ import annotations

import json
import os

import pytest

from devtools.harness import LiveApp, Served
from tests.integration.harness import app_settings


def portal_stats(sim, name="a"):
    return sim.stats()["portals"][name]


def view(sim, live, lead_id, user_id=1, lang="en"):
    url, form = sim.placement_request("a", user_id=user_id, lead_id=lead_id, lang=lang)
    response = live.post(url, form)
    assert response.status_code == 200, response.text[:300]
    return response


def requests_for(sim, fn):
    before = sim.stats()["rest_requests"]
    methods_before = dict(portal_stats(sim).get("rest_methods", {}))
    fn()
    after = portal_stats(sim).get("rest_methods", {})
    delta = {m: after.get(m, 0) - methods_before.get(m, 0) for m in after}
    return sim.stats()["rest_requests"] - before, {m: n for m, n in delta.items() if n}


# What a warm view must not ask again: the portal's dictionaries are cached (user.get is
# asked once per view, for the people the context panels show: lead_context.USER_REFS).
LOOKUPS = {"crm.lead.fields", "crm.status.list", "crm.currency.list"}


def sub_commands_for(sim, fn):
    """(requests, methods, batch sub-commands) that ``fn`` caused at portal "a"."""
    before = dict(portal_stats(sim).get("batch_commands", {}))
    n, methods = requests_for(sim, fn)
    after = portal_stats(sim).get("batch_commands", {})
    return n, methods, {m: c - before.get(m, 0) for m, c in after.items() if c - before.get(m, 0)}


def _check_cold_then_warm(sim, live):
    lead = sim.sample_lead("a", "rich")
    cold, cold_methods = requests_for(sim, lambda: view(sim, live, lead["ID"]))
    assert cold == 1 and cold_methods.get("batch") == 1, cold_methods
    warm, warm_methods = requests_for(sim, lambda: view(sim, live, lead["ID"]))
    # The rich lead links a company and a contact, whose titles depend on the viewer's
    # rights and are not cached: still exactly one request, a small batch.
    assert warm == 1, warm_methods
    plain = sim.sample_lead("a", "minimal")
    view(sim, live, plain["ID"])
    warm_plain, methods, subs = sub_commands_for(sim, lambda: view(sim, live, plain["ID"]))
    assert warm_plain == 1 and methods == {"batch": 1}, methods
    # The lead and its context panels, fresh; no dictionary and no user name (cached).
    assert subs == {"crm.lead.get": 1, "crm.activity.list": 2, "crm.timeline.comment.list": 1,
                    "crm.item.productrow.list": 1, "crm.duplicate.findbycomm": 2,
                    "crm.item.list": 6, "user.get": 1}, subs


def test_cold_view_is_one_batch_warm_view_one_small_batch(sim, live_app, installed):
    _check_cold_then_warm(sim, live_app)


def test_second_language_needs_its_own_dictionaries(sim, live_app, installed):
    lead = sim.sample_lead("a", "minimal")
    view(sim, live_app, lead["ID"], lang="en")
    n, methods = requests_for(sim, lambda: view(sim, live_app, lead["ID"], lang="de"))
    assert n == 1 and methods.get("batch") == 1  # captions are localized per language


@pytest.mark.skipif(not os.environ.get("TEST_REDIS_URL"), reason="needs TEST_REDIS_URL (set by bin/test)")
def test_redis_cache_is_shared_between_app_instances(sim, app_port, tmp_path, installed, live_app):
    """A second app instance (another worker or host) finds the cache warm."""
    from app import create_app

    prefix_db = os.environ["TEST_REDIS_URL"]
    settings = app_settings(sim, app_port, tmp_path, REDIS_URL=prefix_db)
    settings["DATABASE_URL"] = live_app.services.settings.database_url
    settings["TOKEN_KEYS"] = live_app.services.settings.token_keys
    first = create_app(settings)
    second = create_app(settings)
    first.extensions["leadcard"].cache.delete_prefix(f"{installed.member_id}:")
    lead = sim.sample_lead("a", "minimal")
    servers = []
    try:
        lives = []
        for app in (first, second):
            servers.append(Served(app))
            lives.append(LiveApp(app, servers[-1]))
        view(sim, lives[0], lead["ID"])
        view(sim, lives[0], lead["ID"])
        n, methods, subs = sub_commands_for(sim, lambda: view(sim, lives[1], lead["ID"]))
        assert n == 1 and methods == {"batch": 1}, methods
        assert not LOOKUPS & set(subs), subs  # the other instance found them in Redis
        assert subs.get("user.get") == 1, subs  # the panels' people only, not the lead's
    finally:
        for server in servers:
            server.stop()
        first.extensions["leadcard"].cache.delete_prefix(f"{installed.member_id}:")


class _WriteCounter:
    """Wraps the app's cache and counts what a view writes back (reads pass through)."""

    def __init__(self, cache):
        self._cache = cache
        self.written: list[str] = []

    def __getattr__(self, name):
        return getattr(self._cache, name)

    def set(self, key, value, ttl):
        self.written.append(key)
        self._cache.set(key, value, ttl)

    def set_many(self, mapping, ttl):
        self.written.extend(mapping)
        self._cache.set_many(mapping, ttl)


def test_warm_view_of_an_unchanged_lead_writes_nothing_to_the_cache(sim, live_app, installed,
                                                                    monkeypatch):
    lead = sim.sample_lead("a", "minimal")
    view(sim, live_app, lead["ID"])  # cold: dictionaries, users and lead refs are stored
    counter = _WriteCounter(live_app.services.cache)
    monkeypatch.setattr(live_app.services, "cache", counter)
    view(sim, live_app, lead["ID"])
    assert counter.written == []
    # The lead (all by user 1) gets user 2 as responsible: its refs and that user are
    # written, nothing else.
    assert lead["ASSIGNED_BY_ID"] == "1"
    sim.world.portal("a").leads[int(lead["ID"])]["ASSIGNED_BY_ID"] = "2"
    view(sim, live_app, lead["ID"])
    assert sorted(k.split(":", 1)[1] for k in counter.written) == [
        f"leadrefs:{lead['ID']}", "user:2"]


def test_views_never_change_the_shared_cached_values(sim, live_app, installed):
    """MemoryCache hands out shared objects (cache.py): no view may mutate one."""
    from devtools.devportal.data import SAMPLE_LEAD_KINDS
    from leadcard.storage.cache import CountedCache, MemoryCache

    cache = live_app.services.cache
    if isinstance(cache, CountedCache):  # the metrics' counting wrapper (services.py)
        cache = cache.inner
    if not isinstance(cache, MemoryCache):
        pytest.skip("the shared-object trade is MemoryCache's")
    leads = sorted(SAMPLE_LEAD_KINDS["a"].values())
    url, form = sim.placement_request("a", user_id=1, lead_id=leads[0])
    live_app.post(url, form)  # cold: stores the dictionaries; nobody has read them yet
    snapshot = {key: json.dumps(value, sort_keys=True) for key, (_, value) in cache._data.items()}
    assert any(key.endswith(":fields") for key in snapshot)
    for user_id in (1, 2):
        for lead_id in leads:
            url, form = sim.placement_request("a", user_id=user_id, lead_id=lead_id)
            live_app.post(url, form)
    changed = [key for key, text in snapshot.items()
               if key in cache._data and json.dumps(cache._data[key][1], sort_keys=True) != text]
    assert changed == []
