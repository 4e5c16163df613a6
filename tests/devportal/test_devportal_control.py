"""The /_sim/ HTTP control API (drives a simulator running in another process)."""

from __future__ import annotations

import requests


def test_control_api_roundtrip(sim, rest):
    ctl = sim.oauth_url + "/_sim"
    portals = requests.get(ctl + "/portals", timeout=5).json()
    assert [p["name"] for p in portals["portals"]] == ["a", "b"]
    a = portals["portals"][0]
    assert a["member_id"] == sim.portals["a"].member_id and 101 in a["leads"]
    assert a["users"]["1"]["admin"] is True and a["users"]["2"]["admin"] is False

    tok = requests.post(ctl + "/tokens", json={"portal": "a", "user_id": 2}, timeout=5).json()
    assert tok["user_id"] == 2
    assert rest("a", "profile", tok["access_token"]).status_code == 200

    knobs = requests.post(ctl + "/knobs", json={"portal": "a", "rate_burst": 7}, timeout=5).json()
    assert knobs["rate_burst"] == 7
    assert requests.post(ctl + "/knobs", json={"nonsense": 1}, timeout=5).status_code == 400

    f = requests.post(ctl + "/faults", json={"target": "a", "method": "profile", "error": "OVERLOAD_LIMIT"},
                      timeout=5).json()
    assert len(f["ids"]) == 1
    assert rest("a", "profile", tok["access_token"]).json()["error"] == "OVERLOAD_LIMIT"
    assert requests.get(ctl + "/faults", timeout=5).json()[0]["fired"] == 1
    requests.delete(ctl + "/faults", json={}, timeout=5)
    assert requests.get(ctl + "/faults", timeout=5).json() == []

    stats = requests.get(ctl + "/stats", timeout=5).json()
    assert stats["portals"]["a"]["rest_methods"]["profile"] == 2
    assert stats["oauth"]["http_requests"] == 0    # control calls are not counted as OAuth traffic
    requests.post(ctl + "/reset", json={}, timeout=5)
    assert requests.get(ctl + "/stats", timeout=5).json()["portals"]["a"]["http_requests"] == 0

    pr = requests.post(ctl + "/placement_request", json={"portal": "b", "user_id": 1, "lead_id": 201}, timeout=5)
    assert pr.json()["form"]["PLACEMENT_OPTIONS"] == '{"ID":"201"}'
    requests.post(ctl + "/clock", json={"advance": 4000}, timeout=5)
    assert rest("a", "profile", tok["access_token"]).json()["error"] == "expired_token"
    assert requests.post(ctl + "/tokens", json={"portal": "zz"}, timeout=5).status_code == 400


def test_edit_lead_changes_what_crm_lead_get_answers(sim, rest):
    ctl = sim.oauth_url + "/_sim"
    tok = requests.post(ctl + "/tokens", json={"portal": "a", "user_id": 1}, timeout=5).json()
    before = rest("a", "crm.lead.get", tok["access_token"], id=102).json()["result"]
    r = requests.post(ctl + "/edit_lead", json={"portal": "a", "lead_id": 102,
                                                "fields": {"TITLE": "Renamed"}}, timeout=5)
    assert r.status_code == 200
    after = rest("a", "crm.lead.get", tok["access_token"], id=102).json()["result"]
    assert after["TITLE"] == "Renamed" and before["TITLE"] != "Renamed"
    assert after["DATE_MODIFY"] == r.json()["DATE_MODIFY"] != before["DATE_MODIFY"]
    # Only existing scalar fields; unknown leads and fields are refused, nothing changes.
    for bad in ({"lead_id": 102, "fields": {"PHONE": "x"}}, {"lead_id": 102, "fields": {"NOPE": 1}},
                {"lead_id": 102, "fields": "TITLE"},
                {"lead_id": 102, "fields": {"TITLE": "half an edit", "NOPE": 1}}):
        assert requests.post(ctl + "/edit_lead", json=bad, timeout=5).status_code == 400
    assert requests.post(ctl + "/edit_lead", json={"lead_id": 999, "fields": {}},
                         timeout=5).status_code == 404
    assert rest("a", "crm.lead.get", tok["access_token"], id=102).json()["result"] == after


def test_free_port_is_outside_the_kernels_ephemeral_range_and_bindable():
    import socket

    from devtools.devportal.servers import free_port

    with open("/proc/sys/net/ipv4/ip_local_port_range") as fh:
        low, high = (int(x) for x in fh.read().split())
    ports = {free_port() for _ in range(20)}
    for port in ports:
        # never one the kernel could hand to a bind(0) or an outgoing connection meanwhile
        assert not low <= port <= high, port
        with socket.socket() as s:
            s.bind(("127.0.0.1", port))
