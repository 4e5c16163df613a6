"""batch: back-references, per-command errors, PHP-array JSON quirks, limits."""

from __future__ import annotations

import requests


def test_batch_back_references(rest, token):
    r = rest("a", "batch", token("a", 1), halt=0, cmd={
        "lead": "crm.lead.get?id=101",
        "owner": "user.get?ID=$result[lead][ASSIGNED_BY_ID]",
        "owner_again": "user.get?FILTER[ID]=$result[owner][0][ID]",
        "company": "crm.company.get?id=$result[lead][COMPANY_ID]",
        "stages": "crm.status.list?filter[ENTITY_ID]=STATUS",
    })
    assert r.status_code == 200
    body = r.json()
    assert set(body) == {"result", "time"}
    res = body["result"]
    assert set(res) == {"result", "result_error", "result_total", "result_next", "result_time"}
    assert res["result"]["owner"][0]["ID"] == "2"
    assert res["result"]["owner_again"][0]["NAME"] == "Ben"
    assert res["result"]["company"]["ID"] == "7"
    assert res["result_error"] == [] and res["result_next"] == []
    assert res["result_total"] == {"owner": 1, "owner_again": 1, "stages": 6}
    assert set(res["result_time"]) == {"lead", "owner", "owner_again", "company", "stages"}


def test_batch_collects_errors_with_halt_0(rest, token):
    res = rest("a", "batch", token("a", 2), halt=0, cmd={
        "ok": "crm.lead.get?id=101", "denied": "crm.lead.get?id=104", "missing": "crm.lead.get?id=999",
        "bad": "crm.lead.get?id=x", "nomethod": "crm.nothing.get",
    }).json()["result"]
    assert list(res["result"]) == ["ok"]
    assert res["result_error"] == {
        "denied": {"error": "", "error_description": "Access denied"},
        "missing": {"error": "", "error_description": "Not found"},
        "bad": {"error": "", "error_description": "ID is not defined or invalid."},
        "nomethod": {"error": "ERROR_METHOD_NOT_FOUND", "error_description": "Method not found!"},
    }
    assert list(res["result_time"]) == ["ok"]


def test_batch_halt_1_stops_at_first_error(rest, token):
    res = rest("a", "batch", token("a", 2), halt=1, cmd={
        "first": "profile", "boom": "crm.lead.get?id=104", "never": "crm.lead.get?id=101",
    }).json()["result"]
    assert list(res["result"]) == ["first"]
    assert list(res["result_error"]) == ["boom"]


def test_batch_numeric_keys_become_json_lists(rest, token):
    # PHP json_encode: keys 0..n-1 -> list (cf. payloads/crm_lead_get_batch_errors_*.json)
    res = rest("a", "batch", token("a", 1), cmd=["crm.lead.get?id=0", "crm.lead.get?id=999"]).json()["result"]
    assert res["result"] == [] and res["result_time"] == []
    assert res["result_error"] == [{"error": "", "error_description": "ID is not defined or invalid."},
                                   {"error": "", "error_description": "Not found"}]


def test_batch_form_encoded_with_double_encoding(sim, token):
    # cmd values in a form body are urlencoded once more by the client
    t = token("a", 1)
    r = requests.post(sim.portals["a"].client_endpoint + "batch", data={
        "auth": t, "halt": "0", "cmd[lead]": "crm.lead.get?id=102",
        "cmd[users]": "user.get?FILTER%5BID%5D%5B0%5D=1&FILTER%5BID%5D%5B1%5D=2"}, timeout=5)
    res = r.json()["result"]
    assert res["result"]["lead"]["ID"] == "102" and len(res["result"]["users"]) == 2


def test_batch_limits(rest, token):
    cmd = {f"c{i}": "profile" for i in range(52)}
    cmd["nested"] = "batch?cmd[x]=profile"
    res = rest("a", "batch", token("a", 1), cmd=cmd).json()["result"]
    assert len(res["result"]) == 50
    assert res["result_error"]["c50"]["error"] == "ERROR_BATCH_LENGTH_EXCEEDED"
    assert res["result_error"]["nested"]["error"] == "ERROR_BATCH_LENGTH_EXCEEDED"
    nested = rest("a", "batch", token("a", 1), cmd={"x": "batch?cmd[y]=profile"}).json()["result"]
    assert nested["result_error"]["x"]["error"] == "ERROR_BATCH_METHOD_NOT_ALLOWED"


def test_batch_counted_once_with_sub_methods(sim, rest, token):
    rest("a", "batch", token("a", 1), cmd={"a": "crm.lead.get?id=101", "b": "crm.lead.get?id=102", "c": "profile"})
    st = sim.stats()["portals"]["a"]
    assert st["http_requests"] == 1 and st["rest_methods"] == {"batch": 1}
    assert st["batch_commands"] == {"crm.lead.get": 2, "profile": 1}
    assert sim.stats()["log"][-1]["batch"] == ["crm.lead.get", "crm.lead.get", "profile"]


def test_batch_expired_token_fails_whole_request(sim, rest, token):
    t = token("a", 1)
    sim.advance_clock(7200)
    r = rest("a", "batch", t, cmd={"a": "profile"})
    assert r.status_code == 401 and r.json()["error"] == "expired_token"
