"""Install, ONAPPINSTALL and ONAPPUNINSTALL against the fake Bitrix24 (flows/lifecycle.py):
identity only from the OAuth server, only an administrator's grant stored, bindings made once,
an uninstall believed only when the OAuth server no longer accepts our grant."""

from __future__ import annotations

import hashlib

import pytest

from leadcard.bitrix24.payloads import parse_event, parse_frame
from leadcard.core import errors
from leadcard.flows import lifecycle
from tests.unit.fakes import FakeBitrix24, fake_services

APP_TOKEN = "apptoken" + "t" * 24


@pytest.fixture
def world(tmp_path):
    fake = FakeBitrix24()
    portal = fake.add_portal("a")
    portal.admins = {1}
    svc = fake_services(tmp_path, fake)
    return fake, portal, svc


def installer_frame(portal, access, refresh, member_id=None):
    form = {"member_id": member_id or portal.member_id, "AUTH_ID": access, "REFRESH_ID": refresh,
            "AUTH_EXPIRES": "3600", "APPLICATION_TOKEN": APP_TOKEN, "status": "F",
            "PLACEMENT": "DEFAULT"}
    return parse_frame({"DOMAIN": portal.domain, "PROTOCOL": "1", "LANG": "en"}, form)


def event(svc, name, portal, **auth):
    form = {"event": name, "auth[member_id]": portal.member_id,
            "auth[application_token]": APP_TOKEN, "data[LANGUAGE_ID]": "en"}
    form.update({f"auth[{k}]": v for k, v in auth.items()})
    body = repr(sorted(form.items())).encode()
    return lifecycle.handle_event(svc, parse_event(form), hashlib.sha256(body).hexdigest(),
                                  "203.0.113.7")


def test_install_verifies_checks_admin_stores_and_binds_once(world):
    fake, portal, svc = world
    result = lifecycle.install(svc, installer_frame(portal, *fake.issue(portal, 1)))
    assert result.ok and result.portal_domain == portal.domain
    assert fake.oauth_methods() == ["app.info"]
    assert fake.portal_methods() == ["profile", "placement.get", "placement.bind",
                                     "event.get", "event.bind"]
    stored = svc.store.get(portal.member_id)
    assert stored.status == "active" and stored.client_endpoint == portal.endpoint
    assert stored.placement_bound and stored.events_bound
    assert portal.placements == [{"placement": "CRM_LEAD_DETAIL_TAB",
                                  "handler": "https://leadcard.fake.test/placement",
                                  "title": "Lead Card"}]
    assert portal.events == [{"event": "ONAPPUNINSTALL",
                              "handler": "https://leadcard.fake.test/events"}]

    fake.requests.clear()
    assert lifecycle.install(svc, installer_frame(portal, *fake.issue(portal, 1))).ok
    assert fake.portal_methods() == ["profile", "placement.get", "event.get"]  # no second bind
    assert len(portal.placements) == 1 and len(portal.events) == 1


def test_install_by_a_non_administrator_stores_nothing(world):
    fake, portal, svc = world
    with pytest.raises(errors.NotAdmin):
        lifecycle.install(svc, installer_frame(portal, *fake.issue(portal, 2)))
    assert svc.store.get(portal.member_id) is None
    assert fake.portal_methods() == ["profile"]


def test_install_with_another_portals_token_is_refused(world):
    fake, portal, svc = world
    other = fake.add_portal("b")
    with pytest.raises(errors.VerificationFailed):
        lifecycle.install(svc, installer_frame(portal, *fake.issue(other, 1)))
    assert fake.portal_methods() == [] and svc.store.get(portal.member_id) is None


def test_onappinstall_is_accepted_when_the_oauth_server_vouches(world):
    fake, portal, svc = world
    access, refresh = fake.issue(portal, 1)
    assert event(svc, "ONAPPINSTALL", portal, access_token=access, refresh_token=refresh,
                 expires_in="3600") == "installed"
    assert svc.store.application_token_matches(portal.member_id, APP_TOKEN)
    assert svc.store.credentials(portal.member_id).access_token == access


def test_onappinstall_for_a_portal_where_the_app_is_not_installed_is_refused(world):
    fake, portal, svc = world
    access, refresh = fake.issue(portal, 1)
    portal.installed = False  # app.info: install.installed = false
    with pytest.raises(errors.VerificationFailed):
        event(svc, "ONAPPINSTALL", portal, access_token=access, refresh_token=refresh)
    assert svc.store.get(portal.member_id) is None
    assert fake.portal_methods() == []  # refused before the admin check


def installed(world):
    fake, portal, svc = world
    grant = fake.grant(portal)
    svc.store.save_grant(grant, installed_by=1, license_status="F", language="en",
                         application_token=APP_TOKEN)
    fake.requests.clear()
    return grant


def test_uninstall_confirmed_by_the_oauth_server_removes_the_portal(world):
    fake, portal, svc = world
    installed(world)
    fake.uninstall(portal)
    assert event(svc, "ONAPPUNINSTALL", portal) == "uninstalled"
    # app.info refuses the token; the one renewal is refused too: that is the proof.
    assert fake.oauth_methods() == ["app.info", "token"]
    assert svc.store.get(portal.member_id).status == "uninstalled"


def test_uninstall_the_oauth_server_does_not_confirm_keeps_the_portal(world):
    fake, portal, svc = world
    installed(world)
    assert event(svc, "ONAPPUNINSTALL", portal) == "kept: not confirmed"
    assert fake.oauth_methods() == ["app.info"]
    assert svc.store.get(portal.member_id).status == "active"


def test_an_expired_stored_token_is_renewed_once_before_believing_an_uninstall(world):
    fake, portal, svc = world
    grant = installed(world)
    fake.expire(grant.access_token)
    assert event(svc, "ONAPPUNINSTALL", portal) == "kept: not confirmed"
    assert fake.oauth_methods() == ["app.info", "token", "app.info"]


def test_uninstall_while_the_oauth_server_is_down_keeps_the_portal(world):
    fake, portal, svc = world
    installed(world)
    fake.fail("app.info", status=503)
    assert event(svc, "ONAPPUNINSTALL", portal) == "kept: not confirmed"
    assert svc.store.get(portal.member_id).status == "active"


def test_uninstall_with_a_wrong_application_token_is_refused_without_asking(world):
    fake, portal, svc = world
    installed(world)
    form = {"event": "ONAPPUNINSTALL", "auth[member_id]": portal.member_id,
            "auth[application_token]": "wrongtoken" + "w" * 20}
    with pytest.raises(errors.VerificationFailed):
        lifecycle.handle_event(svc, parse_event(form), "0" * 64, "203.0.113.7")
    assert fake.requests == []
