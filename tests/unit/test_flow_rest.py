"""The portal REST client's retry policy, over the fake transport (no sockets, no waiting).

- QUERY_LIMIT_EXCEEDED: the portal is paused in the shared bucket (0.5 s, then 1 s), the
  refused request is sent again in its turn, at most 3 attempts in all — writes too, since
  Bitrix24 never executed it (threats.md F3);
- a 5xx or a failed connection: one retry for reads, none for writes;
- a read timeout: never retried (the portal may still be executing the request);
- a redirect is never followed by the client (the session decides: test_flow_portal_api).
"""

from __future__ import annotations

import pytest

from leadcard.bitrix24.http import ConnectFailed, ReadTimedOut
from leadcard.bitrix24.rest import Deadline, PortalRedirect, RestClient
from leadcard.core import errors
from tests.unit.fakes import FakeBitrix24, FakeBucket


@pytest.fixture
def world():
    fake = FakeBitrix24()
    portal = fake.add_portal("a", leads={7: {"ID": "7", "TITLE": "Seven"}})
    token, _refresh = fake.issue(portal)
    bucket = FakeBucket()
    slept: list[float] = []
    rest = RestClient(fake, bucket, connect_timeout=3.05, read_timeout=6.0, allow_http=False,
                      sleep=slept.append)
    return fake, portal, token, bucket, slept, rest


def call(world, method="crm.lead.get", params=None, idempotent=True):
    fake, portal, token, _bucket, _slept, rest = world
    return rest.call(portal.endpoint, method, params if params is not None else {"id": 7}, token,
                     bucket_key=portal.member_id, deadline=Deadline.after(10),
                     idempotent=idempotent)


def test_a_call_posts_the_token_in_the_json_body_never_the_url(world):
    fake, portal, token = world[:3]
    assert call(world)["TITLE"] == "Seven"
    (sent,) = fake.requests
    assert sent.url == portal.endpoint + "crm.lead.get" and token not in sent.url
    assert sent.params == {"id": 7}  # `auth` was in the body (the fake took it out)
    assert fake.timeouts == [(3.05, 6.0)]


def test_query_limit_exceeded_pauses_the_portal_and_retries_in_turn(world):
    fake, portal, _token, bucket, _slept, _rest = world
    fake.fail("crm.lead.get", times=2, status=503, error="QUERY_LIMIT_EXCEEDED")
    assert call(world)["ID"] == "7"
    assert fake.portal_methods() == ["crm.lead.get"] * 3
    assert bucket.pauses == [(portal.member_id, 0.5), (portal.member_id, 1.0)]


def test_query_limit_exceeded_gives_up_after_three_attempts(world):
    fake, _portal, _token, bucket, _slept, _rest = world
    fake.fail("crm.lead.get", times=5, status=503, error="QUERY_LIMIT_EXCEEDED")
    with pytest.raises(errors.RateLimited) as caught:
        call(world)
    assert len(fake.portal_methods()) == 3
    assert [p for _k, p in bucket.pauses] == [0.5, 1.0, 2.0]
    assert caught.value.retry_after >= 1.0  # the busy page's Retry-After


def test_query_limit_exceeded_is_retried_for_writes_too(world):
    fake = world[0]
    fake.fail("placement.bind", status=503, error="QUERY_LIMIT_EXCEEDED")
    assert call(world, "placement.bind", {"PLACEMENT": "X", "HANDLER": "h", "TITLE": "t"},
                idempotent=False) is True
    assert fake.portal_methods() == ["placement.bind"] * 2


def test_retry_after_from_the_answer_sets_the_pause(world):
    fake, _portal, _token, bucket, _slept, _rest = world
    fake.fail("crm.lead.get", status=503, error="QUERY_LIMIT_EXCEEDED",
              headers={"retry-after": "1.5"})
    call(world)
    assert [p for _k, p in bucket.pauses] == [1.5]


@pytest.mark.parametrize("fault", [dict(status=500, error="INTERNAL_SERVER_ERROR"),
                                   dict(status=502), dict(raises=ConnectFailed)])
def test_a_read_is_retried_once_after_a_5xx_or_a_failed_connection(world, fault):
    fake, _portal, _token, _bucket, slept, _rest = world
    fake.fail("crm.lead.get", **fault)
    assert call(world)["ID"] == "7"
    assert fake.portal_methods() == ["crm.lead.get"] * 2
    assert len(slept) == 1 and 0.1 <= slept[0] <= 0.3


def test_a_read_fails_after_its_one_retry(world):
    fake = world[0]
    fake.fail("crm.lead.get", times=3, status=502)
    with pytest.raises(errors.PortalError):
        call(world)
    assert len(fake.portal_methods()) == 2


@pytest.mark.parametrize("fault", [dict(status=500, error="INTERNAL_SERVER_ERROR"),
                                   dict(raises=ConnectFailed)])
def test_a_write_is_never_retried_after_a_5xx(world, fault):
    fake = world[0]
    fake.fail("event.bind", **fault)
    with pytest.raises(errors.PortalError):
        call(world, "event.bind", {"event": "ONAPPUNINSTALL", "handler": "h"}, idempotent=False)
    assert fake.portal_methods() == ["event.bind"]


def test_a_read_timeout_is_never_retried(world):
    fake = world[0]
    fake.fail("crm.lead.get", raises=ReadTimedOut)
    with pytest.raises(errors.PortalTimeout):
        call(world)
    assert fake.portal_methods() == ["crm.lead.get"]


def test_a_redirect_is_raised_not_followed(world):
    fake = world[0]
    fake.fail("crm.lead.get", location="https://evil.fake.test/rest/crm.lead.get")
    with pytest.raises(PortalRedirect) as caught:
        call(world)
    assert caught.value.location.startswith("https://evil.fake.test/")
    assert len(fake.requests) == 1  # nothing went to the Location


def test_a_non_json_200_is_a_portal_error_not_echoed(world):
    fake = world[0]
    fake.fail("crm.lead.get", times=2, status=200, body=b"<html>secret page</html>")
    with pytest.raises(errors.PortalError) as caught:
        call(world)
    assert "secret" not in str(caught.value)


def test_batch_collects_per_command_results_and_errors(world):
    fake, portal, token, _bucket, _slept, rest = world
    result = rest.batch(portal.endpoint, {"ok": ("crm.lead.get", {"id": 7}),
                                          "missing": ("crm.lead.get", {"id": 8})}, token,
                        bucket_key=portal.member_id, deadline=Deadline.after(10))
    assert result.get("ok")["TITLE"] == "Seven"
    with pytest.raises(errors.LeadNotFound):
        result.get("missing")
    assert fake.portal_methods() == ["batch"]


def test_an_unusable_endpoint_scheme_is_refused_before_sending(world):
    fake, _portal, token, _bucket, _slept, rest = world
    with pytest.raises(errors.VerificationFailed):
        rest.call("http://a.bitrix24.fake.test/rest/", "profile", {}, token,
                  bucket_key="m", deadline=Deadline.after(10))
    assert fake.requests == []
