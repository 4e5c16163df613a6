"""The lead's context methods: activities, comments, duplicates, product rows, items, deals;
rights (user 1 admin, user 2 rep), batch back-references and per-sub-command faults."""

from __future__ import annotations

import requests


def _res(rest, token, method, user=1, **params):
    return rest("a", method, token("a", user), **params).json()


def test_activity_list_overdue_and_upcoming(rest, token):
    body = _res(rest, token, "crm.activity.list", filter={"OWNER_TYPE_ID": 1, "OWNER_ID": 101,
                                                          "COMPLETED": "N"})
    ids = {a["ID"] for a in body["result"]}
    assert ids == {"501", "502"}
    todo = next(a for a in body["result"] if a["ID"] == "501")
    assert todo["PROVIDER_ID"] == "CRM_TODO" and todo["TYPE_ID"] == "6"
    assert body["total"] == 2


def test_activity_list_rights_and_select(rest, token):
    admin = _res(rest, token, "crm.activity.list", filter={"OWNER_ID": 104})
    rep = _res(rest, token, "crm.activity.list", user=2, filter={"OWNER_ID": 104})
    assert [a["ID"] for a in admin["result"]] == ["509"] and rep["result"] == []
    sel = _res(rest, token, "crm.activity.list", filter={"OWNER_ID": 101}, select=["SUBJECT"])
    assert all(set(a) == {"ID", "SUBJECT"} for a in sel["result"])


def test_comment_list_and_rights(rest, token):
    body = _res(rest, token, "crm.timeline.comment.list", user=2,
                filter={"ENTITY_TYPE": "lead", "ENTITY_ID": 101})
    assert [c["ID"] for c in body["result"]] == ["701", "702", "703", "704"]
    denied = _res(rest, token, "crm.timeline.comment.list", user=2,
                  filter={"ENTITY_TYPE": "lead", "ENTITY_ID": 104})
    assert denied["error_description"] == "Access denied"


def test_findbycomm_ignores_rights_then_list_filters(rest, token):
    body = _res(rest, token, "crm.duplicate.findbycomm", user=2, type="PHONE",
                values=["+44 7700 900123"])
    assert body["result"]["LEAD"] == [101, 108]
    mail = _res(rest, token, "crm.duplicate.findbycomm", user=2, type="EMAIL",
                values=["m.hoffmann@nordwind.example", "marta.h@mail.example"])
    assert mail["result"] == {"LEAD": [101, 109], "CONTACT": [15, 16]}
    rep = _res(rest, token, "crm.lead.list", user=2, filter={"ID": [101, 108, 109]},
               select=["ID", "TITLE"])
    assert [r["ID"] for r in rep["result"]] == ["101", "109"]
    admin = _res(rest, token, "crm.lead.list", filter={"ID": [101, 108, 109]}, select=["ID", "TITLE"])
    assert [r["ID"] for r in admin["result"]] == ["101", "108", "109"]
    contacts = _res(rest, token, "crm.contact.list", user=2, filter={"ID": [15, 16]},
                    select=["ID", "NAME", "LAST_NAME"])
    assert [r["ID"] for r in contacts["result"]] == ["15"]


def test_findbycomm_limits(rest, token):
    too_many = rest("a", "crm.duplicate.findbycomm", token("a", 1), type="EMAIL",
                    values=[f"x{i}@e.example" for i in range(21)])
    assert too_many.status_code == 400
    none = _res(rest, token, "crm.duplicate.findbycomm", type="EMAIL", values=["nobody@e.example"])
    assert none["result"] == []


def test_productrow_list(rest, token):
    body = _res(rest, token, "crm.item.productrow.list", filter={"=ownerType": "L", "=ownerId": 101})
    rows = body["result"]["productRows"]
    assert [r["productName"] for r in rows][0] == "Telematics unit T-40" and len(rows) == 3
    denied = rest("a", "crm.item.productrow.list", token("a", 2),
                  filter={"=ownerType": "L", "=ownerId": 104})
    assert denied.json()["error"] == "ACCESS_DENIED"


def test_converted_lead_items_and_deals(rest, token):
    admin = _res(rest, token, "crm.item.list", entityTypeId=2, filter={"leadId": 106})
    rep = _res(rest, token, "crm.item.list", user=2, entityTypeId=2, filter={"leadId": 106})
    assert [i["id"] for i in admin["result"]["items"]] == [301, 302]
    assert [i["id"] for i in rep["result"]["items"]] == [301]
    deals = _res(rest, token, "crm.deal.list", user=2, filter={"LEAD_ID": 106})
    assert [d["ID"] for d in deals["result"]] == ["301"]
    assert _res(rest, token, "crm.deal.get", id=301)["result"]["TITLE"].startswith("Cold chain")
    assert _res(rest, token, "crm.deal.get", user=2, id=302)["error_description"] == "Access denied"
    contacts = _res(rest, token, "crm.item.list", entityTypeId=3, filter={"leadId": 106})
    assert [i["id"] for i in contacts["result"]["items"]] == [22]


def test_context_in_batch_with_back_reference_and_encoded_keys(rest, token):
    res = rest("a", "batch", token("a", 2), halt=0, cmd={
        "lead": "crm.lead.get?id=101",
        "acts": "crm.activity.list?filter[OWNER_TYPE_ID]=1&filter[OWNER_ID]=$result[lead][ID]",
        "rows": "crm.item.productrow.list?filter%5B%3DownerType%5D=L&filter%5B%3DownerId%5D=101",
        "dups": "crm.duplicate.findbycomm?type=PHONE&values[]=%2B44%207700%20900123",
    }).json()["result"]
    assert res["result_error"] == []
    assert len(res["result"]["acts"]) == 8
    assert len(res["result"]["rows"]["productRows"]) == 3
    assert res["result"]["dups"]["LEAD"] == [101, 108]


def test_batch_sub_command_fault(rest, token, sim):
    sim.set_fault("a", "crm.activity.list", "error", error="ACCESS_DENIED")
    res = rest("a", "batch", token("a", 1), halt=0, cmd={
        "acts": "crm.activity.list?filter[OWNER_ID]=101",
        "comments": "crm.timeline.comment.list?filter[ENTITY_TYPE]=lead&filter[ENTITY_ID]=101",
    }).json()["result"]
    assert res["result_error"]["acts"]["error"] == "ACCESS_DENIED"
    assert len(res["result"]["comments"]) == 4


def test_added_activity_and_comment_show(rest, token, sim):
    sim.add_activity("a", 101, "Fresh to-do", deadline_in=-60)
    sim.add_comment("a", 101, "Fresh comment")
    acts = _res(rest, token, "crm.activity.list", filter={"OWNER_ID": 101, "COMPLETED": "N"})
    assert "Fresh to-do" in {a["SUBJECT"] for a in acts["result"]}
    com = _res(rest, token, "crm.timeline.comment.list", filter={"ENTITY_TYPE": "lead", "ENTITY_ID": 101})
    assert com["result"][-1]["COMMENT"] == "Fresh comment"


def test_control_endpoint_adds_activity(sim, rest, token):
    base = sim.oauth_url
    r = requests.post(f"{base}/_sim/activity", json={"lead_id": 101, "subject": "Via control"}, timeout=5)
    assert r.status_code == 200 and r.json()["PROVIDER_ID"] == "CRM_TODO"
    acts = _res(rest, token, "crm.activity.list", filter={"OWNER_ID": 101})
    assert "Via control" in {a["SUBJECT"] for a in acts["result"]}
    requests.post(f"{base}/_sim/reset", json={"context": True}, timeout=5)
    acts = _res(rest, token, "crm.activity.list", filter={"OWNER_ID": 101})
    assert "Via control" not in {a["SUBJECT"] for a in acts["result"]}
    assert requests.post(f"{base}/_sim/comment", json={"lead_id": 999}, timeout=5).status_code == 400


def test_batch_sub_command_hang_fires_once_and_answers(rest, token, sim):
    fid = sim.set_fault("a", "crm.timeline.comment.list", "hang", seconds=0.01)
    res = rest("a", "batch", token("a", 1), halt=0, cmd={
        "acts": "crm.activity.list?filter[OWNER_ID]=101",
        "comments": "crm.timeline.comment.list?filter[ENTITY_TYPE]=lead&filter[ENTITY_ID]=101",
    }).json()["result"]
    assert res["result_error"] == [] and len(res["result"]["comments"]) == 4
    assert next(f for f in sim.world.faults.list() if f["id"] == fid)["fired"] == 1
