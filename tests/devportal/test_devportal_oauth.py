"""OAuth server of the simulator: token endpoint, rotation rules, auth codes, app.info."""

from __future__ import annotations

import time
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from tests.devportal.devportal_helpers import CLIENT_ID, CLIENT_SECRET

TOKEN_KEYS = {"access_token", "expires", "expires_in", "scope", "domain", "server_endpoint", "status",
              "client_endpoint", "member_id", "user_id", "refresh_token"}


def test_refresh_returns_documented_token_json(sim, refresh):
    first = sim.issue_tokens("a", 2)
    r = refresh(first["refresh_token"])
    assert r.status_code == 200
    body = r.json()
    assert set(body) == TOKEN_KEYS
    assert body["domain"] == f"127.0.0.1:{sim.world.oauth_port}"  # the OAuth host, not the portal
    assert body["server_endpoint"] == sim.oauth_url + "/rest/"
    assert body["client_endpoint"] == sim.portals["a"].client_endpoint
    assert body["member_id"] == sim.portals["a"].member_id
    assert body["user_id"] == 2 and body["expires_in"] == 3600
    assert abs(body["expires"] - (time.time() + 3600)) < 5
    assert body["access_token"] != first["access_token"] and body["refresh_token"] != first["refresh_token"]


def test_refresh_token_is_single_use(sim, refresh):
    rt = sim.issue_tokens("a", 1)["refresh_token"]
    assert refresh(rt).status_code == 200
    again = refresh(rt)
    assert again.status_code == 400
    assert again.json() == {"error": "invalid_grant"}


def test_refresh_by_get_query_also_works(sim, refresh):
    rt = sim.issue_tokens("b", 1)["refresh_token"]
    r = refresh(rt, method="GET")
    assert r.status_code == 200 and r.json()["member_id"] == sim.portals["b"].member_id


def test_old_access_token_stops_working_after_refresh(sim, refresh, rest):
    pair = sim.issue_tokens("a", 1)
    new = refresh(pair["refresh_token"]).json()
    old_call = rest("a", "profile", pair["access_token"])
    assert old_call.status_code == 401 and old_call.json()["error"] == "expired_token"
    assert rest("a", "profile", new["access_token"]).status_code == 200


def test_knob_keeps_old_access_token(sim, refresh, rest):
    sim.knobs(keep_old_access_on_refresh=True)
    pair = sim.issue_tokens("a", 1)
    assert refresh(pair["refresh_token"]).status_code == 200
    assert rest("a", "profile", pair["access_token"]).status_code == 200


def test_access_token_expires(sim, rest):
    tok = sim.issue_tokens("a", 1)["access_token"]
    assert rest("a", "profile", tok).status_code == 200
    sim.advance_clock(3601)
    r = rest("a", "profile", tok)
    assert r.status_code == 401
    assert r.json() == {"error": "expired_token", "error_description": "The access token provided has expired."}


def test_access_ttl_knob(sim, rest):
    sim.knobs(access_ttl=60)
    pair = sim.issue_tokens("a", 1)
    assert pair["expires_in"] == 60
    sim.advance_clock(61)
    assert rest("a", "profile", pair["access_token"]).json()["error"] == "expired_token"


def test_wrong_client_credentials(sim, refresh):
    rt = sim.issue_tokens("a", 1)["refresh_token"]
    bad_secret = refresh(rt, client_secret="nope")
    assert bad_secret.status_code == 400 and bad_secret.json() == {"error": "invalid_client"}
    bad_id = refresh(rt, client_id="local.other")
    assert bad_id.status_code == 200 and bad_id.json() == {"error": "wrong_client"}
    # neither attempt consumed the refresh token
    assert refresh(rt).status_code == 200


def test_missing_refresh_token_is_invalid_request(sim, refresh):
    r = refresh("")
    assert r.status_code == 400 and r.json()["error"] == "invalid_request"


def _authorize(sim, portal="a", state="xyz", user=1):
    r = requests.get(sim.authorize_url(portal, state=state, user_id=user), allow_redirects=False, timeout=5)
    return r


def test_authorization_code_flow(sim, fake_app):
    sim.world.portal("a").installed = True
    r = _authorize(sim, state="s-42", user=2)
    assert r.status_code == 302
    target = urlsplit(r.headers["Location"])
    assert f"{target.scheme}://{target.netloc}{target.path}" == fake_app.url + "/oauth/callback"
    q = {k: v[0] for k, v in parse_qs(target.query).items()}
    assert set(q) == {"code", "state", "domain", "member_id", "scope", "server_domain"}
    assert q["state"] == "s-42" and q["domain"] == sim.portals["a"].domain
    assert q["member_id"] == sim.portals["a"].member_id
    assert q["server_domain"] == f"127.0.0.1:{sim.world.oauth_port}"
    params = {"grant_type": "authorization_code", "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET,
              "code": q["code"]}
    tok = requests.get(sim.token_url, params=params, timeout=5)
    assert tok.status_code == 200 and tok.json()["user_id"] == 2
    again = requests.post(sim.token_url, data=params, timeout=5)
    assert again.status_code == 400 and again.json()["error"] == "invalid_grant"


def test_authorization_code_expires_after_30s(sim):
    sim.world.portal("a").installed = True
    code = parse_qs(urlsplit(_authorize(sim).headers["Location"]).query)["code"][0]
    sim.advance_clock(31)
    r = requests.post(sim.token_url, data={"grant_type": "authorization_code", "client_id": CLIENT_ID,
                                           "client_secret": CLIENT_SECRET, "code": code}, timeout=5)
    assert r.status_code == 400 and r.json()["error"] == "invalid_grant"


def test_authorize_refuses_when_not_installed_or_wrong_client(sim):
    r = _authorize(sim)
    assert r.status_code == 400 and "Location" not in r.headers
    sim.world.portal("a").installed = True
    bad = requests.get(sim.portals["a"].base_url + "/oauth/authorize/?client_id=nope&state=1",
                       allow_redirects=False, timeout=5)
    assert bad.status_code == 400 and "Location" not in bad.headers


def test_app_info_on_oauth_server(sim):
    sim.world.portal("b").installed = True
    tok = sim.issue_tokens("b", 2)["access_token"]
    r = requests.get(sim.oauth_url + "/rest/app.info", params={"auth": tok}, timeout=5)
    assert r.status_code == 200
    res = r.json()["result"]
    assert set(res) == {"client_id", "scope", "expires", "install", "user_id"}
    assert res["client_id"] == CLIENT_ID and res["user_id"] == 2
    assert res["install"] == {
        "installed": True, "version": 1, "status": "L", "scope": "crm,placement,user_brief",
        "domain": sim.portals["b"].domain, "uri": sim.portals["b"].base_url,
        "client_endpoint": sim.portals["b"].client_endpoint, "member_id": sim.portals["b"].member_id,
        "member_type": "user"}
    # POST with JSON body and form body too
    assert requests.post(sim.oauth_url + "/rest/app.info.json", json={"auth": tok}, timeout=5).status_code == 200
    assert requests.post(sim.oauth_url + "/rest/app.info", data={"auth": tok}, timeout=5).status_code == 200
    assert sim.stats()["oauth"]["app_info"] == 3


def test_app_info_errors(sim):
    r = requests.get(sim.oauth_url + "/rest/app.info", params={"auth": "junk"}, timeout=5)
    assert r.status_code == 401 and r.json()["error"] == "invalid_token"
    tok = sim.issue_tokens("a", 1)["access_token"]
    sim.advance_clock(4000)
    r = requests.get(sim.oauth_url + "/rest/app.info", params={"auth": tok}, timeout=5)
    assert r.status_code == 401 and r.json()["error"] == "expired_token"


def test_oauth_error_injection(sim, refresh):
    rt = sim.issue_tokens("a", 1)["refresh_token"]
    sim.inject_error("oauth", "token", "PAYMENT_REQUIRED", count=1)
    r = refresh(rt)
    assert r.status_code == 400 and r.json() == {"error": "PAYMENT_REQUIRED", "error_description": "Payment required"}
    sim.set_fault("oauth", "token", "html", status=500, count=1)
    r = refresh(rt)
    assert r.status_code == 500 and r.headers["Content-Type"].startswith("text/html")
    # the faults were one-shot and did not consume the refresh token
    assert refresh(rt).status_code == 200
    assert sim.stats()["oauth"]["token"]["refresh_token"] == 3


def test_abandoned_token_request_still_rotates(sim, refresh):
    """Client gives up while the server is slow -> the server finishes the request anyway, as
    the real one does: the pair rotates and the answer is lost (the refresh token is spent)."""
    rt = sim.issue_tokens("a", 1)["refresh_token"]
    sim.knobs(oauth_latency=1.0)
    with pytest.raises(requests.exceptions.ReadTimeout):
        requests.post(sim.token_url, data={"grant_type": "refresh_token", "client_id": CLIENT_ID,
                                           "client_secret": CLIENT_SECRET, "refresh_token": rt}, timeout=0.3)
    deadline = time.time() + 3
    while sim.stats()["oauth"]["token_rotated"] < 1 and time.time() < deadline:
        time.sleep(0.05)
    assert sim.stats()["oauth"]["token_aborted"] == 1
    assert sim.stats()["oauth"]["token_rotated"] == 1
    sim.knobs(oauth_latency=0.0)
    r = refresh(rt)
    assert r.status_code == 400 and r.json()["error"] == "invalid_grant"  # spent by the lost call


def test_patient_client_gets_rotation_under_latency(sim, refresh):
    rt = sim.issue_tokens("a", 1)["refresh_token"]
    sim.knobs(oauth_latency=0.3)
    start = time.time()
    assert refresh(rt).status_code == 200
    assert time.time() - start >= 0.3
    assert refresh(rt).status_code == 400  # now it was used


def test_expire_access_token_helper(sim, rest, refresh):
    pair = sim.issue_tokens("a", 2)
    sim.expire_access_token(pair["access_token"])
    assert rest("a", "profile", pair["access_token"]).json()["error"] == "expired_token"
    assert refresh(pair["refresh_token"]).status_code == 200
    assert sim.stats()["token_calls"] == {"refresh_token": 1}
