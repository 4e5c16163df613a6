"""The OAuth server client over the fake transport: token refresh, code exchange, app.info,
and how their answers map to the error family."""

from __future__ import annotations

import pytest

from leadcard.bitrix24.http import ConnectFailed, ReadTimedOut
from leadcard.bitrix24.oauth import OAuthClient
from leadcard.core import errors
from tests.unit.fakes import CLIENT_ID, CLIENT_SECRET, OAUTH_URL, FakeBitrix24, fake_settings


@pytest.fixture
def world(tmp_path):
    fake = FakeBitrix24()
    portal = fake.add_portal("a")
    return fake, portal, OAuthClient(fake_settings(tmp_path), fake)


def test_refresh_posts_the_secret_in_the_form_body_of_the_pinned_server(world):
    fake, portal, oauth = world
    _access, refresh = fake.issue(portal, user_id=3)
    grant = oauth.refresh(refresh)
    assert grant.member_id == portal.member_id and grant.client_endpoint == portal.endpoint
    assert grant.user_id == 3 and grant.refresh_token != refresh
    assert grant.access_token in fake.access
    (sent,) = fake.requests
    assert sent.url == OAUTH_URL + "/oauth/token/" and CLIENT_SECRET not in sent.url
    assert sent.params == {"grant_type": "refresh_token", "refresh_token": refresh,
                           "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET}
    assert oauth.calls["refresh_token"] == 1


def test_a_spent_refresh_token_is_revoked(world):
    fake, portal, oauth = world
    _access, refresh = fake.issue(portal)
    oauth.refresh(refresh)
    with pytest.raises(errors.TokenRevoked):
        oauth.refresh(refresh)


def test_code_exchange(world):
    fake, portal, oauth = world
    grant = oauth.exchange_code(fake.code(portal, user_id=1))
    assert grant.member_id == portal.member_id
    assert fake.requests[0].params["grant_type"] == "authorization_code"
    assert fake.requests[0].params["client_secret"] == CLIENT_SECRET
    with pytest.raises(errors.TokenRevoked):  # bad_verification_code / invalid_grant
        oauth.exchange_code("code-never-issued-0000")


@pytest.mark.parametrize("code,expected", [
    ("invalid_grant", errors.TokenRevoked),
    ("NOT_INSTALLED", errors.AppNotInstalled),
    ("PAYMENT_REQUIRED", errors.PaymentRequired),
    ("wrong_client", errors.AppNotInstalled),
    ("temporarily_unavailable", errors.OAuthUnavailable),
    ("something_new", errors.OAuthRejected),
])
def test_token_endpoint_errors_map_to_the_family(world, code, expected):
    fake, portal, oauth = world
    fake.fail("token", status=400, error=code)
    with pytest.raises(expected):
        oauth.refresh(fake.issue(portal)[1])


@pytest.mark.parametrize("fault", [dict(status=502), dict(status=503, error="invalid_grant"),
                                   dict(location="https://evil.fake.test/"),
                                   dict(raises=ConnectFailed), dict(raises=ReadTimedOut)])
def test_a_failing_token_endpoint_is_unavailable_not_a_refusal(world, fault):
    fake, portal, oauth = world
    fake.fail("token", **fault)
    with pytest.raises(errors.OAuthUnavailable):
        oauth.refresh(fake.issue(portal)[1])
    assert len(fake.requests) == 1  # never retried: a refresh token is single-use


def test_a_token_answer_without_a_usable_endpoint_is_refused(world):
    fake, portal, oauth = world
    portal.endpoint = "http://a.bitrix24.fake.test/rest/"  # plain http, allow_http is off
    with pytest.raises(errors.OAuthRejected):
        oauth.refresh(fake.issue(portal)[1])


def test_app_info_names_the_portal_of_the_token(world):
    fake, portal, oauth = world
    access, _refresh = fake.issue(portal, user_id=5)
    info = oauth.app_info(access)
    assert (info.client_id, info.member_id, info.client_endpoint, info.domain, info.installed,
            info.user_id) == (CLIENT_ID, portal.member_id, portal.endpoint, portal.domain,
                              True, 5)
    assert fake.requests[0].url == OAUTH_URL + "/rest/app.info"
    assert fake.requests[0].params == {"auth": access}


@pytest.mark.parametrize("fault,expected", [
    (None, errors.TokenRevoked),                                     # invalid_token, 401
    (dict(status=401, error="expired_token"), errors.TokenRevoked),
    (dict(status=400, error="NOT_INSTALLED"), errors.AppNotInstalled),
    (dict(status=500, error="invalid_token"), errors.OAuthUnavailable),  # 5xx: failing (F18)
    (dict(status=200, body=b"[]"), errors.OAuthUnavailable),
    (dict(raises=ReadTimedOut), errors.OAuthUnavailable),
])
def test_app_info_errors_map_to_the_family(world, fault, expected):
    fake, portal, oauth = world
    access = fake.issue(portal)[0] if fault else "never-issued-token-0000"
    if fault:
        fake.fail("app.info", **fault)
    with pytest.raises(expected):
        oauth.app_info(access)
