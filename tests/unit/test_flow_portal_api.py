"""REST with a portal's stored grant against the fake Bitrix24 (flows/portal_api.py): renewed
once on expired_token and never before (unless already past its expiry), moves followed
once to the address the OAuth server confirms, and stored."""

from __future__ import annotations

import pytest

from leadcard.bitrix24.rest import Deadline
from leadcard.core import errors
from tests.unit.fakes import FakeBitrix24, fake_services

NEW_HOME = "https://renamed.bitrix24.fake.test/rest/"


@pytest.fixture
def world(tmp_path):
    fake = FakeBitrix24()
    portal = fake.add_portal("a")
    svc = fake_services(tmp_path, fake)
    return fake, portal, svc


def seed(world, expires_in=3600):
    fake, portal, svc = world
    grant = fake.grant(portal, expires_in=expires_in)
    svc.store.save_grant(grant, installed_by=1, license_status="F", language="en",
                         application_token="apptoken" + "t" * 24)
    fake.requests.clear()
    return grant


def call(world, method="profile"):
    _fake, portal, svc = world
    return svc.portal_api.call(portal.member_id, method, {}, deadline=Deadline.after(10))


def test_a_valid_stored_grant_is_never_renewed_before_a_call(world):
    fake, portal, svc = world
    grant = seed(world)
    assert call(world)["ADMIN"] is True
    assert fake.portal_methods() == ["profile"] and fake.oauth_methods() == []
    assert svc.store.credentials(portal.member_id).access_token == grant.access_token


def test_expired_token_renews_the_stored_grant_once_and_sends_again(world):
    fake, portal, svc = world
    grant = seed(world)
    version = svc.store.credentials(portal.member_id).version
    fake.expire(grant.access_token)
    assert call(world)["ID"] == "1"
    assert fake.portal_methods() == ["profile", "profile"] and fake.oauth_methods() == ["token"]
    creds = svc.store.credentials(portal.member_id)
    assert creds.version == version + 1 and creds.access_token != grant.access_token
    assert fake.requests[-1].params == {}  # sent with the renewed token (taken by the fake)
    fake.requests.clear()
    call(world)  # the renewed pair is stored: no second refresh
    assert fake.oauth_methods() == []


def test_expired_again_after_the_renewal_is_raised(world):
    fake, _portal, _svc = world
    seed(world)
    fake.fail("profile", times=2, status=401, error="expired_token")
    with pytest.raises(errors.ExpiredToken):
        call(world)
    assert fake.portal_methods() == ["profile", "profile"] and fake.oauth_methods() == ["token"]


def test_a_grant_past_its_expiry_is_renewed_before_the_first_request(world):
    fake, _portal, _svc = world
    seed(world, expires_in=-10)
    call(world)
    assert fake.oauth_methods() == ["token"] and fake.portal_methods() == ["profile"]


def test_a_refused_refresh_marks_the_portal_for_reauthorization(world):
    fake, portal, svc = world
    grant = seed(world)
    fake.expire(grant.access_token)
    fake.refresh[grant.refresh_token].spent = True
    with pytest.raises(errors.TokenRevoked):
        call(world)
    assert svc.store.get(portal.member_id).status == "reauth_required"


def test_a_move_is_followed_once_confirmed_by_the_oauth_server_and_stored(world):
    fake, portal, svc = world
    seed(world)
    fake.move(portal, NEW_HOME)
    assert call(world)["ID"] == "1"
    assert fake.oauth_methods() == ["app.info"]
    assert [r.url for r in fake.requests if not r.oauth][-1] == NEW_HOME + "profile"
    stored = svc.store.get(portal.member_id)
    assert stored.client_endpoint == NEW_HOME and stored.domain == portal.domain


def test_a_move_the_oauth_server_does_not_confirm_is_portal_moved(world):
    fake, portal, svc = world
    seed(world)
    old = portal.endpoint
    fake.fail("profile", location="https://evil.fake.test/rest/profile")
    with pytest.raises(errors.PortalMoved):
        call(world)
    assert svc.store.get(portal.member_id).client_endpoint == old


def test_the_endpoint_a_refresh_answers_is_followed(world):
    fake, portal, svc = world
    grant = seed(world)
    fake.move(portal, NEW_HOME)
    fake.expire(grant.access_token)
    fake.fail("profile", status=401, error="expired_token")  # the old host still answers
    call(world)
    assert fake.requests[-1].url == NEW_HOME + "profile"
    assert fake.oauth_methods() == ["token"]  # no app.info: the token answer named it
    assert svc.store.credentials(portal.member_id).client_endpoint == NEW_HOME


def test_one_renewal_and_one_move_in_the_same_call(world):
    fake, portal, svc = world
    grant = seed(world)
    fake.move(portal, NEW_HOME)
    fake.expire(grant.access_token)
    call(world)
    # The old host redirects; app.info refuses the expired token; the one renewal; app.info
    # confirms the new address; the request goes there.
    assert fake.oauth_methods() == ["app.info", "token", "app.info"]
    assert [r.url for r in fake.requests if not r.oauth] == [
        grant.client_endpoint + "profile", NEW_HOME + "profile"]
    assert svc.store.get(portal.member_id).client_endpoint == NEW_HOME


def test_after_the_one_renewal_a_refused_confirmation_is_raised(world):
    fake, portal, _svc = world
    seed(world)
    fake.fail("profile", status=401, error="expired_token")  # spends the renewal first
    fake.fail("profile", location="https://evil.fake.test/rest/profile")
    fake.fail("app.info", status=401, error="expired_token")
    with pytest.raises(errors.TokenRevoked):
        call(world)
    assert fake.oauth_methods() == ["token", "app.info"]
