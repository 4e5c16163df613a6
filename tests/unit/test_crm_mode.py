"""flows/crm_mode: the home page's simple-CRM check (one call, short deadline, cached, fails open)."""

from __future__ import annotations

import pytest

from leadcard.flows import crm_mode
from tests.unit.fakes import FakeBitrix24, fake_services


@pytest.fixture
def world(tmp_path):
    fake = FakeBitrix24()
    portal = fake.add_portal("a")
    svc = fake_services(tmp_path, fake)
    svc.store.save_grant(fake.grant(portal))
    stored = svc.store.get(portal.member_id)
    access, _refresh = fake.issue(portal, user_id=1)
    return fake, portal, svc, stored, access


def mode_calls(fake: FakeBitrix24) -> int:
    return fake.portal_methods().count(crm_mode.METHOD)


@pytest.mark.parametrize(("answer", "simple"), [(1, False), (2, True), ("2", True), ("1", False)])
def test_the_portal_answer_decides(world, answer, simple):
    fake, portal, svc, stored, access = world
    portal.crm_mode = answer
    assert crm_mode.is_simple_crm(svc, stored, access) is simple
    assert mode_calls(fake) == 1
    sent = [r for r in fake.requests if r.method == crm_mode.METHOD][0]
    assert sent.url == portal.endpoint + crm_mode.METHOD  # the stored endpoint


def test_the_call_has_a_short_deadline(world):
    fake, portal, svc, stored, access = world
    before = len(fake.timeouts)
    crm_mode.is_simple_crm(svc, stored, access)
    connect, read = fake.timeouts[before]
    assert connect <= crm_mode.CHECK_SECONDS and read <= crm_mode.CHECK_SECONDS
    assert crm_mode.CHECK_SECONDS <= 3.0


def test_a_good_answer_is_cached_per_portal(world):
    fake, portal, svc, stored, access = world
    portal.crm_mode = 2
    assert crm_mode.is_simple_crm(svc, stored, access) is True
    portal.crm_mode = 1  # changed at the portal: the cached answer stands for a few minutes
    assert crm_mode.is_simple_crm(svc, stored, access) is True
    assert mode_calls(fake) == 1
    svc.cache.delete(crm_mode.cache_key(stored.member_id))
    assert crm_mode.is_simple_crm(svc, stored, access) is False
    assert mode_calls(fake) == 2


@pytest.mark.parametrize("fault", [
    {"status": 500},
    {"status": 401, "error": "expired_token"},
    {"status": 403, "error": "ACCESS_DENIED"},
    {"raises": TimeoutError},
])
def test_any_failure_is_no_note_and_not_cached(world, fault):
    fake, portal, svc, stored, access = world
    portal.crm_mode = 2
    fake.fail(crm_mode.METHOD, times=2, **fault)
    assert crm_mode.is_simple_crm(svc, stored, access) is False
    fake._faults.clear()
    assert crm_mode.is_simple_crm(svc, stored, access) is True  # the failure was not kept


@pytest.mark.parametrize("answer", [None, 3, "simple", {"ID": 2}, True, [2]])
def test_an_unknown_answer_is_no_note(world, answer):
    fake, portal, svc, stored, access = world
    portal.crm_mode = answer
    assert crm_mode.is_simple_crm(svc, stored, access) is False
    assert svc.cache.get(crm_mode.cache_key(stored.member_id)) is None
