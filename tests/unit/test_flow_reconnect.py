"""The reconnect flow (flows/reconnect.py) against the fake Bitrix24: a state per request,
metered; the code exchanged only at the pinned OAuth server; only an administrator's grant
stored; a spent, forged or foreign state changes nothing."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest

from leadcard.core import errors
from leadcard.flows import reconnect
from tests.unit.fakes import OAUTH_URL, FakeBitrix24, fake_services


@pytest.fixture
def world(tmp_path):
    fake = FakeBitrix24()
    portal = fake.add_portal("a")
    portal.admins = {1}
    svc = fake_services(tmp_path, fake)
    svc.store.save_grant(fake.grant(portal, user_id=1))
    return fake, portal, svc


def state_of(url: str) -> str:
    return parse_qs(urlsplit(url).query)["state"][0]


def test_an_administrator_reconnects_and_the_new_grant_is_stored(world):
    fake, portal, svc = world
    before = svc.store.credentials(portal.member_id)
    url = reconnect.begin(svc, portal.member_id, "203.0.113.5")
    assert url.startswith(portal.endpoint.rsplit("/rest", 1)[0] + "/oauth/authorize/?")
    saved = reconnect.complete(svc, fake.code(portal, user_id=1), state_of(url), portal.member_id)
    assert saved.member_id == portal.member_id and saved.token_version == before.version + 1
    assert svc.store.credentials(portal.member_id).access_token != before.access_token
    # The code went to the pinned OAuth server only, with the secret in the body.
    exchanges = [s for s in fake.requests if s.method == "token"]
    assert len(exchanges) == 1 and exchanges[0].url.startswith(OAUTH_URL + "/oauth/token")
    assert exchanges[0].params["grant_type"] == "authorization_code"
    assert exchanges[0].params["client_secret"]
    assert not any("client_secret" in s.params for s in fake.requests if s not in exchanges)


def test_a_sales_rep_authorizing_the_app_replaces_nothing(world):
    fake, portal, svc = world
    before = svc.store.credentials(portal.member_id)
    url = reconnect.begin(svc, portal.member_id, "203.0.113.5")
    with pytest.raises(errors.NotAdmin):
        reconnect.complete(svc, fake.code(portal, user_id=2), state_of(url), portal.member_id)
    after = svc.store.credentials(portal.member_id)
    assert (after.access_token, after.version) == (before.access_token, before.version)


@pytest.mark.parametrize("case", ["spent", "forged", "other_portal", "no_code", "too_long"])
def test_a_bad_state_or_code_stores_nothing(world, case):
    fake, portal, svc = world
    before = svc.store.credentials(portal.member_id)
    url = reconnect.begin(svc, portal.member_id, "203.0.113.5")
    state, code, member = state_of(url), fake.code(portal), portal.member_id
    expected: type[errors.LeadCardError] = errors.VerificationFailed
    if case == "spent":
        reconnect.complete(svc, code, state, member)
        before = svc.store.credentials(member)
        code = fake.code(portal)
    elif case == "forged":
        state = "made-up-state-" + "x" * 20
    elif case == "other_portal":
        member = "f" * 32
    elif case == "no_code":
        code, expected = "", errors.BadPayload
    else:
        code, expected = "c" * 300, errors.BadPayload
    sent = len(fake.oauth_methods())
    with pytest.raises(expected):
        reconnect.complete(svc, code, state, member)
    assert svc.store.credentials(portal.member_id).version == before.version
    assert len(fake.oauth_methods()) == sent  # nothing was exchanged


def test_reconnects_are_metered_and_need_a_known_portal(world):
    _fake, portal, svc = world
    with pytest.raises(errors.NotInstalled):
        reconnect.begin(svc, "f" * 32, "203.0.113.5")
    with pytest.raises(errors.NotInstalled):
        reconnect.begin(svc, "../etc", "203.0.113.5")
    for _ in range(5):
        reconnect.begin(svc, portal.member_id, "203.0.113.5")
    with pytest.raises(errors.TooManyAttempts):
        reconnect.begin(svc, portal.member_id, "203.0.113.5")
    reconnect.begin(svc, portal.member_id, "198.51.100.9")  # another client has its own
