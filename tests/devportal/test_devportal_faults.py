"""Fault knobs: rate limit, injected errors, HTML pages, drops, hangs, latency, moves."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests


def test_rate_limit_503_after_burst(sim, token):
    t = token("a", 1)
    url = sim.portals["a"].client_endpoint + "profile"
    with requests.Session() as s:
        statuses = [s.post(url, json={"auth": t}, timeout=5) for _ in range(60)]
    codes = [r.status_code for r in statuses]
    ok = codes.count(200)
    # burst 50, draining 2/s while the loop runs (well under a second)
    assert 50 <= ok <= 53, codes
    assert codes[:50] == [200] * 50
    limited = next(r for r in statuses if r.status_code == 503)
    assert limited.json() == {"error": "QUERY_LIMIT_EXCEEDED", "error_description": "Too many requests"}
    assert sim.stats()["portals"]["a"]["rate_limited"] == 60 - ok
    # the bucket is per portal
    assert requests.post(sim.portals["b"].client_endpoint + "profile",
                         json={"auth": token("b", 1)}, timeout=5).status_code == 200


def test_rate_limit_knobs(sim, token):
    sim.knobs(portal="a", rate_burst=3, rate_drain=0.0)
    t = token("a", 1)
    codes = [requests.post(sim.portals["a"].client_endpoint + "profile", json={"auth": t}, timeout=5).status_code
             for _ in range(5)]
    assert codes == [200, 200, 200, 503, 503]
    sim.knobs(portal="a", rate_limit=False)
    assert requests.post(sim.portals["a"].client_endpoint + "profile", json={"auth": t}, timeout=5).status_code == 200


def test_injected_error_next_n_requests(sim, rest, token):
    t = token("a", 1)
    sim.inject_error("a", "crm.lead.get", "INTERNAL_SERVER_ERROR", count=2)
    r1, r2, r3 = (rest("a", "crm.lead.get", t, id=101) for _ in range(3))
    assert (r1.status_code, r2.status_code, r3.status_code) == (500, 500, 200)
    assert r1.json() == {"error": "INTERNAL_SERVER_ERROR", "error_description": "Internal server error"}
    # other methods and other portals unaffected
    sim.inject_error("a", "crm.lead.get", "PORTAL_DELETED", count=None)
    assert rest("a", "profile", t).status_code == 200
    assert rest("b", "crm.lead.get", token("b", 1), id=201).status_code == 200
    assert rest("a", "crm.lead.get", t, id=101).json()["error"] == "PORTAL_DELETED"


def test_fault_catalogue_defaults(sim, rest, token):
    t = token("b", 1)
    for code, status in [("user_access_error", 403), ("PAYMENT_REQUIRED", 401), ("OVERLOAD_LIMIT", 503),
                         ("QUERY_LIMIT_EXCEEDED", 503), ("expired_token", 401)]:
        sim.inject_error("b", "profile", code)
        r = rest("b", "profile", t)
        assert r.status_code == status and r.json()["error"] == code
    sim.inject_error("b", "profile", "CUSTOM_THING", status=418, description="teapot")
    assert rest("b", "profile", t).json() == {"error": "CUSTOM_THING", "error_description": "teapot"}


def test_probability_zero_never_fires(sim, rest, token):
    sim.set_fault("a", "profile", "error", error="INTERNAL_SERVER_ERROR", count=None, probability=0.0)
    t = token("a", 1)
    assert all(rest("a", "profile", t).status_code == 200 for _ in range(10))


def test_html_error_page(sim, rest, token):
    sim.set_fault("*", "crm.lead.get", "html", status=502)
    r = rest("b", "crm.lead.get", token("b", 1), id=201)
    assert r.status_code == 502 and r.headers["Content-Type"].startswith("text/html")
    with pytest.raises(ValueError):
        r.json()


def test_connection_drop(sim, rest, token):
    sim.set_fault("a", "*", "drop")
    with pytest.raises(requests.exceptions.ConnectionError):
        rest("a", "profile", token("a", 1))
    assert sim.stats()["portals"]["a"]["dropped"] == 1
    assert rest("a", "profile", token("a", 1)).status_code == 200


def test_hang_then_answer(sim, token):
    sim.set_fault("a", "profile", "hang", seconds=1.0)
    t = token("a", 1)
    with pytest.raises(requests.exceptions.ReadTimeout):
        requests.post(sim.portals["a"].client_endpoint + "profile", json={"auth": t}, timeout=0.3)
    assert requests.post(sim.portals["a"].client_endpoint + "profile", json={"auth": t}, timeout=5).status_code == 200


def test_latency_knobs(sim, rest, token):
    t = token("a", 1)
    sim.knobs(portal="a", latency=0.2, method_latency={"crm.lead.get": 0.2})
    start = time.time()
    rest("a", "profile", t)
    mid = time.time()
    rest("a", "crm.lead.get", t, id=101)
    end = time.time()
    assert 0.2 <= mid - start < 0.6 and 0.4 <= end - mid < 0.9
    a_profile = mid - start
    start = time.time()
    rest("b", "profile", token("b", 1))
    # Portal b has no latency knob: faster than a's same call by most of a's 0.2 s (relative,
    # so a busy machine that slows both does not fail it).
    assert time.time() - start < a_profile - 0.1


def test_operation_time_limit(sim, rest, token):
    sim.knobs(portal="a", operation_time_limit=["crm.lead.get"])
    t = token("a", 1)
    r = rest("a", "crm.lead.get", t, id=101)
    assert r.status_code == 429
    assert r.json() == {"error": "OPERATION_TIME_LIMIT", "error_description": "Method is blocked due to operation time limit."}
    res = rest("a", "batch", t, cmd={"lead": "crm.lead.get?id=101", "me": "profile"}).json()["result"]
    assert res["result_error"]["lead"]["error"] == "OPERATION_TIME_LIMIT" and "me" in res["result"]


def test_injected_error_reaches_batch_sub_commands(sim, rest, token):
    sim.inject_error("a", "crm.lead.get", "INTERNAL_SERVER_ERROR", count=1)
    res = rest("a", "batch", token("a", 1), cmd={"x": "crm.lead.get?id=101", "y": "crm.lead.get?id=102"}).json()
    assert res["result"]["result_error"]["x"]["error"] == "INTERNAL_SERVER_ERROR"
    assert "y" in res["result"]["result"]


def test_portal_moved(sim, rest, token, refresh):
    old_base = sim.portals["b"].base_url
    old_port = sim.portals["b"].port
    pair = sim.issue_tokens("b", 1)
    new_base = sim.move_portal("b")  # stays moved for the rest of the session
    assert new_base != old_base and sim.portals["b"].base_url == new_base
    r = requests.post(old_base + "/rest/crm.lead.get?id=201", json={"auth": pair["access_token"]},
                      allow_redirects=False, timeout=5)
    assert r.status_code == 302
    assert r.headers["Location"] == new_base + "/rest/crm.lead.get?id=201"
    again = requests.post(r.headers["Location"], json={"auth": pair["access_token"]}, timeout=5)
    assert again.status_code == 200 and again.json()["result"]["ID"] == "201"
    body = refresh(pair["refresh_token"]).json()
    assert body["client_endpoint"] == new_base + "/rest/"
    info = requests.get(sim.oauth_url + "/rest/app.info", params={"auth": body["access_token"]}, timeout=5)
    assert info.json()["result"]["install"]["client_endpoint"] == new_base + "/rest/"
    st = sim.stats()["portals"]["b"]
    assert st["by_port"][str(old_port)] == 1 and st["redirects"] == 1


def test_parallel_requests_are_served(sim, token):
    t = token("b", 1)
    sim.knobs(portal="b", latency=0.3)
    url = sim.portals["b"].client_endpoint + "profile"
    start = time.time()
    with ThreadPoolExecutor(8) as ex:
        codes = list(ex.map(lambda _: requests.post(url, json={"auth": t}, timeout=5).status_code, range(8)))
    assert codes == [200] * 8 and time.time() - start < 1.5
