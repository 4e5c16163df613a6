"""One lead-tab view against the fake Bitrix24: what goes upstream, renewal, moves, refusals.

The view's requests go through one PortalSession with the viewer's token (flows/lead_tab.py):
a cold view is one batch, a warm one one crm.lead.get; an expired AUTH_ID is renewed once
with REFRESH_ID; a moved portal is followed once, to the address the OAuth server confirms.
"""

from __future__ import annotations

import json

import pytest

from leadcard.bitrix24.payloads import parse_placement
from leadcard.core import errors
from leadcard.flows import lead_context
from leadcard.flows.lead_tab import open_lead
from tests.unit.fakes import FakeBitrix24, fake_services

APP_TOKEN = "apptoken" + "t" * 24
LEAD = {"ID": "7", "TITLE": "Seven", "ASSIGNED_BY_ID": "1", "CREATED_BY_ID": "2",
        "COMPANY_ID": "30", "CONTACT_ID": "0"}


@pytest.fixture
def world(tmp_path):
    fake = FakeBitrix24()
    portal = fake.add_portal("a", leads={7: dict(LEAD), 8: {"ID": "8", "TITLE": "Plain",
                                                            "ASSIGNED_BY_ID": "1"}},
                             users={"1": {"ID": "1", "NAME": "Ann"}, "2": {"ID": "2", "NAME": "Bo"}})
    portal.companies["30"] = {"ID": "30", "TITLE": "Acme"}
    svc = fake_services(tmp_path, fake)
    svc.store.save_grant(fake.grant(portal), installed_by=1, license_status="F", language="en",
                         application_token=APP_TOKEN)
    fake.requests.clear()
    return fake, portal, svc


def placement(portal, auth_id, refresh_id="", lead_id=7, app_token=APP_TOKEN):
    form = {"member_id": portal.member_id, "AUTH_ID": auth_id, "REFRESH_ID": refresh_id,
            "AUTH_EXPIRES": "3600", "APPLICATION_TOKEN": app_token, "status": "F",
            "PLACEMENT": "CRM_LEAD_DETAIL_TAB", "PLACEMENT_OPTIONS": json.dumps({"ID": str(lead_id)})}
    return parse_placement({"DOMAIN": portal.domain, "PROTOCOL": "1", "LANG": "en"}, form)


def view(world, user_id=1, **kw):
    fake, portal, svc = world
    auth, refresh = fake.issue(portal, user_id)
    return open_lead(svc, placement(portal, auth, refresh, **kw))


def test_cold_view_is_one_batch_with_every_lookup(world):
    fake, portal, _svc = world
    result = view(world)
    assert fake.portal_methods() == ["batch"]
    cmd = fake.requests[0].params["cmd"]
    assert set(cmd) == {"lead", "d_fields", "d_status.STATUS", "d_status.SOURCE",
                        "d_status.HONORIFIC", "d_currencies", "users", "company", "contact",
                        *lead_context.context_commands(7)}
    assert result.lead["TITLE"] == "Seven"
    assert set(result.reference.users) == {"1", "2"}
    assert result.reference.companies == {"30": {"ID": "30", "TITLE": "Acme"}}
    assert result.portal.client_endpoint == portal.endpoint
    assert fake.oauth_methods() == []  # a valid token is not introspected


def test_warm_view_of_a_lead_without_links_is_one_request(world):
    fake = world[0]
    view(world, lead_id=8)
    fake.requests.clear()
    result = view(world, lead_id=8)
    # One batch: the lead and its context panels, fresh; no dictionary, no user.get.
    assert fake.portal_methods() == ["batch"]
    assert set(fake.requests[0].params["cmd"]) == {"lead", *lead_context.context_commands(8)}
    assert result.reference.users == {"1": {"ID": "1", "NAME": "Ann"}}


def test_expired_viewer_token_is_renewed_once_and_the_request_sent_again(world):
    fake, portal, svc = world
    auth, refresh = fake.issue(portal)
    fake.expire(auth)
    result = open_lead(svc, placement(portal, auth, refresh))
    assert result.lead["ID"] == "7"
    assert fake.portal_methods() == ["batch", "batch"] and fake.oauth_methods() == ["token"]
    # A second request carrying the same pair uses the same renewal (single-flight).
    fake.requests.clear()
    open_lead(svc, placement(portal, auth, refresh))
    assert fake.oauth_methods() == [] and fake.portal_methods() == ["batch", "batch"]


def test_expired_twice_is_session_expired(world):
    fake, portal, svc = world
    auth, refresh = fake.issue(portal)
    fake.fail("batch", times=2, status=401, error="expired_token")
    with pytest.raises(errors.SessionExpired):
        open_lead(svc, placement(portal, auth, refresh))
    assert fake.portal_methods() == ["batch", "batch"] and fake.oauth_methods() == ["token"]


def test_expired_without_refresh_id_is_session_expired_without_renewal(world):
    fake, portal, svc = world
    auth, _refresh = fake.issue(portal)
    fake.expire(auth)
    with pytest.raises(errors.SessionExpired):
        open_lead(svc, placement(portal, auth, ""))
    assert fake.portal_methods() == ["batch"] and fake.oauth_methods() == []


def test_refused_viewer_refresh_is_session_expired(world):
    fake, portal, svc = world
    auth, refresh = fake.issue(portal)
    fake.expire(auth)
    fake.refresh[refresh].spent = True
    with pytest.raises(errors.SessionExpired):
        open_lead(svc, placement(portal, auth, refresh))


def test_an_invalid_token_is_not_renewed(world):
    fake, portal, svc = world
    with pytest.raises(errors.InvalidToken):
        open_lead(svc, placement(portal, "forged-token-00000000", "forged-refresh-0000000"))
    assert fake.oauth_methods() == []


def test_a_moved_portal_is_followed_once_to_the_address_the_oauth_server_confirms(world):
    fake, portal, svc = world
    old = portal.endpoint
    fake.move(portal, "https://renamed.bitrix24.fake.test/rest/")
    result = view(world)
    assert [r.url.rsplit("/", 1)[0] + "/" for r in fake.requests if not r.oauth] == [
        old, "https://renamed.bitrix24.fake.test/rest/"]
    assert fake.oauth_methods() == ["app.info"]
    assert not any("elsewhere" in r.url for r in fake.requests)  # never the Location
    assert result.portal.client_endpoint == portal.endpoint
    assert svc.store.get(portal.member_id).client_endpoint == portal.endpoint
    fake.requests.clear()
    view(world)  # the stored address is used from now on
    assert fake.requests[0].url.startswith(portal.endpoint)


def test_a_redirect_the_oauth_server_does_not_confirm_is_portal_moved(world):
    fake, portal, svc = world
    old = portal.endpoint
    fake.fail("batch", location="https://evil.fake.test/rest/batch")
    with pytest.raises(errors.PortalMoved):
        view(world)
    assert fake.oauth_methods() == ["app.info"] and len(fake.portal_methods()) == 1
    assert svc.store.get(portal.member_id).client_endpoint == old


def test_a_second_redirect_is_portal_moved(world):
    fake, portal, _svc = world
    fake.move(portal, "https://renamed.bitrix24.fake.test/rest/")
    fake.fail("batch", times=2, location="https://evil.fake.test/rest/batch")
    with pytest.raises(errors.PortalMoved):
        view(world)
    assert fake.portal_methods() == ["batch", "batch"] and fake.oauth_methods() == ["app.info"]


def test_a_lead_the_viewer_may_not_read_is_access_denied(world):
    _fake, portal, _svc = world
    portal.readers[7] = {1}
    with pytest.raises(errors.AccessDenied):
        view(world, user_id=2)


def test_a_missing_lead_is_not_found(world):
    with pytest.raises(errors.LeadNotFound):
        view(world, lead_id=99)


def test_a_wrong_application_token_is_refused_before_any_request(world):
    fake, portal, svc = world
    auth, refresh = fake.issue(portal)
    with pytest.raises(errors.VerificationFailed):
        open_lead(svc, placement(portal, auth, refresh, app_token="wrongtoken" + "w" * 20))
    assert fake.requests == []
