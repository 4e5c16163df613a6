"""The upstream-call seam (bitrix24/observe.py): one report per HTTP attempt, from portal
REST and the OAuth server alike, with the portal, method, status, error code and timing —
the REST log and the metrics are built on it."""

from __future__ import annotations

import pytest

from leadcard.bitrix24 import observe
from leadcard.bitrix24.http import ReadTimedOut
from leadcard.bitrix24.oauth import OAuthClient
from leadcard.bitrix24.rest import Deadline, RestClient
from leadcard.core import errors
from tests.unit.fakes import FakeBitrix24, FakeBucket, fake_settings


@pytest.fixture
def world(tmp_path):
    fake = FakeBitrix24()
    portal = fake.add_portal("a", leads={7: {"ID": "7", "TITLE": "Seven"}})
    seen: list[observe.UpstreamCall] = []
    rest = RestClient(fake, FakeBucket(), connect_timeout=3.05, read_timeout=6.0,
                      allow_http=False, sleep=lambda _s: None, observers=[seen.append])
    oauth = OAuthClient(fake_settings(tmp_path), fake, observers=[seen.append])
    return fake, portal, rest, oauth, seen


def _get(rest, portal, token, lead=7):
    return rest.call(portal.endpoint, "crm.lead.get", {"id": lead}, token,
                     bucket_key=portal.member_id, deadline=Deadline.after(10))


def test_a_successful_call_is_reported_with_its_portal_method_and_answer(world):
    fake, portal, rest, _oauth, seen = world
    token, _ = fake.issue(portal)
    _get(rest, portal, token)
    (call,) = seen
    assert (call.service, call.member_id, call.method) == ("rest", portal.member_id,
                                                           "crm.lead.get")
    assert (call.http_status, call.error_code) == (200, "")
    assert call.params["id"] == 7 and b'"Seven"' in call.response
    assert call.duration >= 0 and call.started_at > 1.7e9


def test_an_error_answer_is_reported_with_bitrix24s_code(world):
    fake, portal, rest, _oauth, seen = world
    token, _ = fake.issue(portal)
    fake.fail("crm.lead.get", status=403, error="ACCESS_DENIED")
    with pytest.raises(errors.AccessDenied):
        _get(rest, portal, token)
    assert [(c.http_status, c.error_code) for c in seen] == [(403, "ACCESS_DENIED")]


def test_every_attempt_is_reported_and_a_timeout_has_no_status(world):
    fake, portal, rest, _oauth, seen = world
    token, _ = fake.issue(portal)
    fake.fail("crm.lead.get", status=502)  # a read: retried once
    _get(rest, portal, token)
    assert [c.http_status for c in seen] == [502, 200]
    fake.fail("crm.lead.get", raises=ReadTimedOut)
    with pytest.raises(errors.PortalTimeout):
        _get(rest, portal, token)
    assert (seen[-1].http_status, seen[-1].error_code) == (None, observe.READ_TIMEOUT)


def test_oauth_calls_name_the_portal_from_the_answer_or_the_bound_context(world):
    fake, portal, _rest, oauth, seen = world
    _token, refresh = fake.issue(portal)
    oauth.refresh(refresh)
    assert (seen[-1].service, seen[-1].method, seen[-1].member_id) == (
        "oauth", "oauth.refresh_token", portal.member_id)
    with observe.portal(portal.member_id), pytest.raises(errors.LeadCardError):
        oauth.refresh(refresh)  # spent: the answer names no portal
    assert (seen[-1].member_id, seen[-1].error_code) == (portal.member_id, "invalid_grant")
    with pytest.raises(errors.LeadCardError):
        oauth.refresh(refresh)
    assert seen[-1].member_id is None


def test_a_failing_observer_never_fails_the_call(world, caplog):
    fake, portal, rest, _oauth, _seen = world
    token, _ = fake.issue(portal)

    def broken(_call):
        raise RuntimeError("observer bug")

    rest.observers.append(broken)
    assert _get(rest, portal, token)["TITLE"] == "Seven"
    assert "observer" in caplog.text
