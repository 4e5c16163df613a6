"""Portal REST of the simulator: crm.lead.get and the reference-data methods."""

from __future__ import annotations

import requests

LEAD_ERROR = {"error": ""}


def test_lead_get_success_envelope_and_shape(rest, token):
    r = rest("a", "crm.lead.get", token("a", 1), id=101)
    assert r.status_code == 200
    body = r.json()
    assert set(body) == {"result", "time"}
    assert {"start", "finish", "duration", "processing", "date_start", "date_finish"} <= set(body["time"])
    lead = body["result"]
    assert lead["ID"] == "101" and lead["ASSIGNED_BY_ID"] == "2" and lead["OPPORTUNITY"] == "48500.00"
    keys = list(lead)
    # system keys first, then UF_*, then multifields - like real answers
    assert keys.index("LAST_ACTIVITY_TIME") < keys.index("UF_CRM_1721812760630") < keys.index("PHONE")
    assert lead["IM"][0] == {"ID": "11660", "VALUE_TYPE": "OPENLINE", "VALUE": "imol|livechat|1|67|21", "TYPE_ID": "IM"}
    assert lead["UF_CRM_1721812915476"] == "50000|USD"
    assert lead["UF_CRM_1721812814433"] == "79"
    assert lead["UF_CRM_1721812898903"]["downloadUrl"].startswith("/bitrix/components/bitrix/crm.lead.show/")
    assert "[B]Call summary[/B]" in lead["COMMENTS"]


def test_minimal_lead_has_no_multifields(rest, token):
    lead = rest("a", "crm.lead.get", token("a", 2), ID="102").json()["result"]
    assert lead["LAST_NAME"] is None and lead["NAME"] == "" and lead["BIRTHDATE"] == ""
    assert not {"PHONE", "EMAIL", "WEB", "IM"} & set(lead)
    assert "UF_CRM_1721812898903" not in lead          # empty single file field is omitted
    assert lead["UF_CRM_1721812999001"] == []          # empty multiple field is []


def test_lead_get_permissions_per_user(rest, token):
    admin, rep = token("a", 1), token("a", 2)
    assert rest("a", "crm.lead.get", admin, id=104).status_code == 200
    denied = rest("a", "crm.lead.get", rep, id=104)
    assert denied.status_code == 400
    assert denied.json() == {"error": "", "error_description": "Access denied"}
    assert rest("a", "crm.lead.get", rep, id=101).status_code == 200   # assigned to user 2
    assert rest("a", "crm.lead.get", rep, id=107).status_code == 200   # OPENED=Y
    assert rest("a", "crm.lead.get", rep, id=105).status_code == 200   # assigned, OPENED=N


def test_lead_get_not_found_and_bad_ids(rest, token):
    t = token("a", 1)
    nf = rest("a", "crm.lead.get", t, id=999)
    assert nf.status_code == 400 and nf.json() == {"error": "", "error_description": "Not found"}
    for bad in (0, -1, "abc", "1.5", None):
        r = rest("a", "crm.lead.get", t, id=bad) if bad is not None else rest("a", "crm.lead.get", t)
        assert r.status_code == 400, bad
        assert r.json() == {"error": "", "error_description": "ID is not defined or invalid."}, bad


def test_portals_are_isolated(rest, token):
    # a token of portal a is not valid on portal b, and lead ids differ
    r = rest("b", "crm.lead.get", token("a", 1), id=201)
    assert r.status_code == 401 and r.json()["error"] == "invalid_token"
    assert rest("b", "crm.lead.get", token("b", 1), id=201).json()["result"]["TITLE"].startswith("Anfrage")
    assert rest("b", "crm.lead.get", token("b", 1), id=101).json()["error_description"] == "Not found"


def test_auth_from_query_and_form_and_nested_form_keys(sim, token):
    t = token("a", 1)
    base = sim.portals["a"].client_endpoint
    r = requests.get(base + "crm.lead.get.json", params={"auth": t, "ID": 101}, timeout=5)
    assert r.status_code == 200 and r.json()["result"]["ID"] == "101"
    r = requests.post(base + "user.get", data={"auth": t, "FILTER[ID][0]": "1", "FILTER[ID][1]": "2"}, timeout=5)
    assert [u["ID"] for u in r.json()["result"]] == ["1", "2"] and r.json()["total"] == 2
    r = requests.post(base + "user.get?auth=" + t, json={"FILTER": {"ID": [2]}}, timeout=5)
    assert [u["ID"] for u in r.json()["result"]] == ["2"]


def test_auth_errors(rest):
    r = rest("a", "profile", None)
    assert r.status_code == 401 and r.json() == {"error": "NO_AUTH_FOUND", "error_description": "Wrong authorization data"}
    r = rest("a", "profile", "not-a-token")
    assert r.status_code == 401 and r.json()["error"] == "invalid_token"


def test_insufficient_scope(sim, rest, token):
    sim.app.scope = "placement"
    r = rest("a", "crm.lead.get", token("a", 1), id=101)
    assert r.status_code == 401 and r.json()["error"] == "insufficient_scope"


def test_method_not_found(rest, token):
    r = rest("a", "crm.lead.nonexistent", token("a", 1))
    assert r.status_code == 404 and r.json()["error"] == "ERROR_METHOD_NOT_FOUND"


def test_lead_fields_with_uf_metadata(rest, token):
    fields = rest("a", "crm.lead.fields", token("a", 2)).json()["result"]
    assert fields["STATUS_ID"]["statusType"] == "STATUS" and fields["TITLE"]["title"] == "Lead Title"
    enum = fields["UF_CRM_1721812814433"]
    assert enum["type"] == "enumeration" and enum["isDynamic"] is True
    assert enum["title"] == "UF_CRM_1721812814433" and enum["formLabel"] == "Lead temperature"
    assert {"ID": "79", "VALUE": "Hot"} in enum["items"]
    types = {v["type"] for k, v in fields.items() if k.startswith("UF_")}
    assert {"string", "enumeration", "boolean", "date", "money", "file", "crm"} <= types
    assert fields["UF_CRM_1721812977311"]["isMultiple"] is True
    # portal b: German titles and a different UF set
    fb = rest("b", "crm.lead.fields", token("b", 1)).json()["result"]
    assert fb["TITLE"]["title"] == "Lead-Name" and "UF_CRM_1721812814433" not in fb


def test_status_list_and_entity_items(rest, token):
    t = token("a", 2)
    stages = rest("a", "crm.status.list", t, filter={"ENTITY_ID": "STATUS"}).json()
    assert stages["total"] == len(stages["result"]) == 6
    junk = next(s for s in stages["result"] if s["STATUS_ID"] == "JUNK")
    assert junk["SEMANTICS"] == "F" and junk["EXTRA"] == {"SEMANTICS": "failure", "COLOR": junk["COLOR"]}
    assert isinstance(junk["SORT"], str)
    src = rest("a", "crm.status.list", t, filter={"ENTITY_ID": "SOURCE"}).json()["result"]
    assert all(s["ENTITY_ID"] == "SOURCE" and "EXTRA" not in s for s in src)
    items = rest("a", "crm.status.entity.items", t, entityId="HONORIFIC").json()["result"]
    assert items[0] == {"NAME": "Mr.", "SORT": 10, "STATUS_ID": "HNR_EN_1"}


def test_currency_company_contact_users(rest, token):
    t = token("a", 2)
    cur = rest("a", "crm.currency.list", t).json()
    assert [c["CURRENCY"] for c in cur["result"]] == ["USD", "EUR", "RUB"]
    assert cur["result"][1]["THOUSANDS_SEP"] == "&nbsp;" and cur["result"][0]["BASE"] == "Y"
    assert rest("a", "crm.company.get", t, id=7).json()["result"]["TITLE"] == "Nordwind Logistics GmbH"
    assert rest("a", "crm.contact.get", t, id=15).json()["result"]["LAST_NAME"] == "Hoffmann"
    assert rest("a", "crm.company.get", t, id=8).json() == {"error": "", "error_description": "Not found"}
    users = rest("a", "user.get", t, FILTER={"ID": [1, 2, 19]}).json()["result"]
    assert [u["ID"] for u in users] == ["1", "2"]          # user 19 (system user) is not returned
    assert users[0]["PERSONAL_PHOTO"].endswith("/upload/avatar/1.svg")
    assert "EMAIL" not in users[0]                          # scope user_brief hides contact data
    assert requests.get(users[0]["PERSONAL_PHOTO"], timeout=5).headers["Content-Type"].startswith("image/svg")
    me = rest("a", "user.current", t).json()["result"]
    assert me["ID"] == "2" and me["WORK_POSITION"] == "Sales Manager"
    prof = rest("a", "profile", token("a", 1)).json()["result"]
    assert prof["ADMIN"] is True and prof["ID"] == "1"
    assert rest("a", "profile", t).json()["result"]["ADMIN"] is False


def test_portal_app_info(sim, rest, token):
    res = rest("a", "app.info", token("a", 1)).json()["result"]
    assert res["INSTALLED"] is False and res["STATUS"] == "L"
    sim.world.portal("a").installed = True
    assert rest("a", "app.info", token("a", 1)).json()["result"]["INSTALLED"] is True


def test_counters_per_method_and_log_without_tokens(sim, rest, token):
    t = token("a", 1)
    rest("a", "crm.lead.get", t, id=101)
    rest("a", "crm.lead.get", t, id=102)
    rest("a", "profile", t)
    st = sim.stats()
    assert st["rest_requests"] == 3
    a = st["portals"]["a"]
    assert a["rest_methods"] == {"crm.lead.get": 2, "profile": 1}
    assert a["by_port"] == {str(sim.portals["a"].port): 3}
    assert a["statuses"] == {"200": 3}
    assert st["portals"]["b"]["http_requests"] == 0
    assert t not in repr(st["log"]) and all("?" not in e["path"] for e in st["log"])
    sim.reset_stats()
    assert sim.stats()["portals"]["a"]["http_requests"] == 0


def test_sample_lead_helper(sim, rest, token):
    rich = sim.sample_lead("a", "rich")
    assert rich == rest("a", "crm.lead.get", token("a", 1), id=rich["ID"]).json()["result"]
    assert sim.sample_lead("a", "private")["OPENED"] == "N"
    assert sim.sample_lead("b", "rich")["ID"] == "201"
