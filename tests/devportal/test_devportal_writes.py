"""The write methods (issue 13): crm.timeline.comment.add, crm.activity.todo.add,
crm.activity.update, crm.lead.update — answers, errors, edit rights (user 2 edits only leads
assigned to him: 101 yes, 102 read-only), the write log, the commit-then-hang fault, batch and
expired tokens."""

from __future__ import annotations

from datetime import datetime
from urllib.parse import urlencode

import pytest
import requests

DEADLINE = "2031-03-04T10:00:00+01:00"  # portal "a" renders it in +02:00


def _call(rest, token, method, user=2, portal="a", **params):
    return rest(portal, method, token(portal, user), **params)


def _lead(rest, token, lead_id, user=1):
    return _call(rest, token, "crm.lead.get", user=user, id=lead_id).json()["result"]


def _activities(rest, token, lead_id, **flt):
    return _call(rest, token, "crm.activity.list", user=1,
                 filter={"OWNER_TYPE_ID": 1, "OWNER_ID": lead_id, **flt}).json()["result"]


def _error(resp):
    return resp.status_code, resp.json()["error"], resp.json()["error_description"]


# --- rights ----------------------------------------------------------------------------------

def test_can_edit_is_narrower_than_can_read(sim):
    p = sim.world.portal("a")
    rights = {lid: (p.can_read(2, lead), p.can_edit(2, lead)) for lid, lead in p.leads.items()}
    assert rights[101] == (True, True)
    assert rights[102] == (True, False) and rights[107] == (True, False)  # OPENED=Y, not his
    assert rights[104] == (False, False)
    assert all(p.can_edit(1, lead) for lead in p.leads.values())


# --- crm.timeline.comment.add ----------------------------------------------------------------

def test_comment_add_then_listed_newest_first(rest, token):
    r = _call(rest, token, "crm.timeline.comment.add",
              fields={"ENTITY_ID": 101, "ENTITY_TYPE": "lead", "COMMENT": "Called back, sends the fleet list."})
    assert r.status_code == 200
    new_id = r.json()["result"]
    assert isinstance(new_id, int) and new_id > 705
    listed = _call(rest, token, "crm.timeline.comment.list",
                   filter={"ENTITY_ID": 101, "ENTITY_TYPE": "lead"}, order={"CREATED": "DESC"}).json()
    first = listed["result"][0]
    assert first["ID"] == str(new_id) and first["AUTHOR_ID"] == "2"
    assert first["COMMENT"] == "Called back, sends the fleet list."
    assert first["CREATED"].endswith("+02:00") and datetime.fromisoformat(first["CREATED"])
    assert listed["total"] == 5
    # reading the lead is enough to comment (102 is OPENED=Y, assigned to user 1)
    ok = _call(rest, token, "crm.timeline.comment.add",
               fields={"ENTITY_ID": 102, "ENTITY_TYPE": "lead", "COMMENT": "Seen at the fair."})
    assert ok.status_code == 200 and ok.json()["result"] == new_id + 1


@pytest.mark.parametrize(("fields", "expected"), [
    ({"ENTITY_ID": 999, "ENTITY_TYPE": "lead", "COMMENT": "x"},
     (400, "OWNER_NOT_FOUND", "Owner of the element not found")),
    ({"ENTITY_ID": 104, "ENTITY_TYPE": "lead", "COMMENT": "x"}, (400, "ACCESS_DENIED", "Access denied.")),
    ({"ENTITY_ID": 101, "ENTITY_TYPE": "lead", "COMMENT": "   "}, (400, "INVALID_ARG_VALUE", "Empty comment")),
    ({"ENTITY_ID": 101, "ENTITY_TYPE": "lead"}, (400, "INVALID_ARG_VALUE", "Empty comment")),
])
def test_comment_add_errors(sim, rest, token, fields, expected):
    r = _call(rest, token, "crm.timeline.comment.add", fields=fields)
    assert _error(r) == expected
    assert sim.writes() == []


def test_comment_add_takes_only_lowercase_fields(rest, token):
    r = _call(rest, token, "crm.timeline.comment.add",
              FIELDS={"ENTITY_ID": 101, "ENTITY_TYPE": "lead", "COMMENT": "x"})
    assert r.status_code == 400
    assert r.json() == {"error": 100, "error_description": "Could not find value for parameter {fields}"}


# --- crm.activity.todo.add -------------------------------------------------------------------

def test_todo_add_shows_as_open_activity(rest, token):
    before = _lead(rest, token, 101)["LAST_ACTIVITY_TIME"]
    r = _call(rest, token, "crm.activity.todo.add", ownerTypeId=1, ownerId=101, deadline=DEADLINE,
              title="Send the trailer quote", description="Both trailer sizes.")
    assert r.status_code == 200
    new_id = r.json()["result"]["id"]
    assert isinstance(new_id, int)
    [todo] = [a for a in _activities(rest, token, 101, COMPLETED="N") if a["ID"] == str(new_id)]
    assert todo["PROVIDER_ID"] == "CRM_TODO" and todo["TYPE_ID"] == "6" and todo["COMPLETED"] == "N"
    assert todo["DEADLINE"] == "2031-03-04T11:00:00+02:00"
    assert todo["SUBJECT"] == "Send the trailer quote" and todo["DESCRIPTION"] == "Both trailer sizes."
    assert todo["RESPONSIBLE_ID"] == "2" and todo["AUTHOR_ID"] == "2"
    lead = _lead(rest, token, 101)
    assert lead["LAST_ACTIVITY_TIME"] != before and lead["LAST_ACTIVITY_BY"] == "2"
    other = _call(rest, token, "crm.activity.todo.add", ownerTypeId=1, ownerId=101, deadline=DEADLINE,
                  responsibleId=1).json()["result"]["id"]
    [todo2] = [a for a in _activities(rest, token, 101) if a["ID"] == str(other)]
    assert todo2["RESPONSIBLE_ID"] == "1" and todo2["SUBJECT"] == ""


@pytest.mark.parametrize("missing", ["ownerTypeId", "ownerId", "deadline"])
def test_todo_add_missing_parameter(rest, token, missing):
    params = {"ownerTypeId": 1, "ownerId": 101, "deadline": DEADLINE}
    del params[missing]
    r = _call(rest, token, "crm.activity.todo.add", **params)
    assert r.status_code == 400
    assert r.json() == {"error": 100, "error_description": f"Could not find value for parameter {{{missing}}}"}


@pytest.mark.parametrize(("params", "expected"), [
    ({"ownerId": 101, "deadline": "next Tuesday"}, (400, "WRONG_DATETIME_FORMAT", "Incorrect date format")),
    ({"ownerId": 999, "deadline": DEADLINE}, (400, "OWNER_NOT_FOUND", "Owner of the entity not found")),
    ({"ownerId": 102, "deadline": DEADLINE}, (400, "ACCESS_DENIED", "Access denied.")),   # read-only
    ({"ownerId": 104, "deadline": DEADLINE}, (400, "ACCESS_DENIED", "Access denied.")),   # hidden
])
def test_todo_add_errors(sim, rest, token, params, expected):
    r = _call(rest, token, "crm.activity.todo.add", ownerTypeId=1, title="x", **params)
    assert _error(r) == expected
    assert sim.writes() == []


def test_admin_adds_todo_on_any_lead(rest, token):
    r = _call(rest, token, "crm.activity.todo.add", user=1, ownerTypeId=1, ownerId=102,
              deadline="2031-03-04T10:00:00")  # no offset: the portal's time
    new_id = r.json()["result"]["id"]
    [todo] = [a for a in _activities(rest, token, 102) if a["ID"] == str(new_id)]
    assert todo["DEADLINE"] == "2031-03-04T10:00:00+02:00" and todo["RESPONSIBLE_ID"] == "1"


# --- crm.activity.update -----------------------------------------------------------------------

def test_activity_update_marks_done_and_repeats_as_noop(rest, token):
    for _ in range(2):
        r = _call(rest, token, "crm.activity.update", id=501, fields={"COMPLETED": "Y"})
        assert r.status_code == 200 and r.json()["result"] is True
    open_ids = {a["ID"] for a in _activities(rest, token, 101, COMPLETED="N")}
    assert "501" not in open_ids and "502" in open_ids
    [done] = [a for a in _activities(rest, token, 101, COMPLETED="Y") if a["ID"] == "501"]
    assert done["STATUS"] == "2" and done["EDITOR_ID"] == "2"


def test_activity_update_errors(sim, rest, token):
    assert _error(_call(rest, token, "crm.activity.update", id=99999, fields={"COMPLETED": "Y"})) == \
        (400, "", "Activity is not found")
    on_readonly = sim.add_activity("a", 102, "Call the fair contact", responsible=1)
    for activity_id in (on_readonly["ID"], "509"):   # lead 102 read-only, lead 104 hidden
        r = _call(rest, token, "crm.activity.update", id=activity_id, fields={"COMPLETED": "Y"})
        assert _error(r) == (400, "", "Access denied.")
    assert [a["COMPLETED"] for a in _activities(rest, token, 102)] == ["N"]
    assert sim.writes() == []


# --- crm.lead.update ---------------------------------------------------------------------------

def test_lead_update_moves_stage(rest, token):
    before = _lead(rest, token, 101)
    r = _call(rest, token, "crm.lead.update", id=101, fields={"STATUS_ID": "NEW"},
              params={"REGISTER_SONET_EVENT": "Y"})
    assert r.status_code == 200 and r.json()["result"] is True
    after = _lead(rest, token, 101)
    assert after["STATUS_ID"] == "NEW" and after["STATUS_SEMANTIC_ID"] == "P"
    assert after["MOVED_BY_ID"] == "2" and after["MOVED_TIME"] != before["MOVED_TIME"]
    assert after["DATE_MODIFY"] != before["DATE_MODIFY"] and after["MODIFY_BY_ID"] == "2"
    _call(rest, token, "crm.lead.update", id=101, fields={"STATUS_ID": "JUNK"})
    junk = _lead(rest, token, 101)
    assert junk["STATUS_SEMANTIC_ID"] == "F" and junk["DATE_CLOSED"]


def test_stage_requires_a_field_the_lead_lacks(sim, rest, token):
    r = _call(rest, token, "crm.lead.update", id=101, fields={"STATUS_ID": "PROCESSED"})
    assert _error(r) == (400, "", 'The field "Decision maker" is required.')
    assert _lead(rest, token, 101)["STATUS_ID"] == "IN_PROCESS"
    ok = _call(rest, token, "crm.lead.update", id=101,
               fields={"STATUS_ID": "PROCESSED", "UF_CRM_1721813055006": "Marta Hoffmann"})
    assert ok.status_code == 200
    lead = _lead(rest, token, 101)
    assert lead["STATUS_ID"] == "PROCESSED" and lead["UF_CRM_1721813055006"] == "Marta Hoffmann"
    assert [w["params"]["fields"]["STATUS_ID"] for w in sim.writes()] == ["PROCESSED"]


@pytest.mark.parametrize(("lead_id", "fields", "expected"), [
    (999, {"STATUS_ID": "NEW"}, (400, "", "Not found")),
    (102, {"STATUS_ID": "NEW"}, (400, "", "Access denied.")),     # read-only for user 2
    (104, {"STATUS_ID": "NEW"}, (400, "", "Access denied.")),
    (101, {"STATUS_ID": "NO_SUCH_STAGE"}, (400, "", 'Invalid value for field "Stage".')),
    ("x", {"STATUS_ID": "NEW"}, (400, "", "ID is not defined or invalid.")),
])
def test_lead_update_errors(sim, rest, token, lead_id, fields, expected):
    r = _call(rest, token, "crm.lead.update", id=lead_id, fields=fields)
    assert _error(r) == expected
    assert _lead(rest, token, 101)["STATUS_ID"] == "IN_PROCESS"
    assert sim.writes() == []


def test_status_list_gives_the_lead_stages(rest, token):
    body = _call(rest, token, "crm.status.list", filter={"ENTITY_ID": "STATUS"}).json()
    stages = body["result"]
    assert [s["STATUS_ID"] for s in stages] == ["NEW", "IN_PROCESS", "PROCESSED", "UC_3XK9QF",
                                                 "CONVERTED", "JUNK"]
    assert body["total"] == 6
    assert {s["ENTITY_ID"] for s in stages} == {"STATUS"}
    assert set(stages[0]) >= {"ID", "ENTITY_ID", "STATUS_ID", "NAME", "SORT", "SEMANTICS", "EXTRA"}
    assert [(s["SEMANTICS"], s["EXTRA"]["SEMANTICS"]) for s in stages[-2:]] == [("S", "success"),
                                                                                ("F", "failure")]
    assert stages[0]["SEMANTICS"] is None and stages[0]["EXTRA"]["SEMANTICS"] == "process"


# --- write log, reset ----------------------------------------------------------------------

def test_write_log_in_python_and_over_http(sim, rest, token):
    _call(rest, token, "crm.timeline.comment.add", fields={"ENTITY_ID": 101, "ENTITY_TYPE": "lead",
                                                           "COMMENT": "one"})
    _call(rest, token, "crm.lead.update", id=102, fields={"STATUS_ID": "NEW"})  # refused: not logged
    _call(rest, token, "crm.activity.update", user=1, id=502, fields={"COMPLETED": "Y"})
    writes = sim.writes()
    assert [(w["method"], w["portal"], w["user_id"]) for w in writes] == [
        ("crm.timeline.comment.add", "a", 2), ("crm.activity.update", "a", 1)]
    assert writes[0]["params"] == {"fields": {"ENTITY_ID": 101, "ENTITY_TYPE": "lead", "COMMENT": "one"}}
    assert "auth" not in writes[1]["params"]
    over_http = requests.get(sim.oauth_url + "/_sim/writes", timeout=5).json()
    assert [w["method"] for w in over_http] == [w["method"] for w in writes]
    assert sim.writes(method="crm.activity.update") == writes[1:]
    assert requests.post(sim.oauth_url + "/_sim/reset", json={}, timeout=5).status_code == 200
    assert sim.writes() == [] and requests.get(sim.oauth_url + "/_sim/writes", timeout=5).json() == []


def test_reset_context_restores_written_leads(sim, rest, token):
    _call(rest, token, "crm.lead.update", id=101, fields={"STATUS_ID": "NEW"})
    _call(rest, token, "crm.activity.update", id=501, fields={"COMPLETED": "Y"})
    sim.reset(context=True)
    assert _lead(rest, token, 101)["STATUS_ID"] == "IN_PROCESS"
    assert {a["ID"] for a in _activities(rest, token, 101, COMPLETED="N")} == {"501", "502"}


# --- faults, tokens, batch -----------------------------------------------------------------

def _wait_for_writes(sim, n):
    for _ in range(100):
        if len(sim.writes()) >= n:
            break
        requests.get(sim.oauth_url + "/_sim/stats", timeout=5)  # a round trip instead of a sleep
    return sim.writes()


def test_commit_then_hang(sim, rest, token):
    sim.set_fault("a", "crm.timeline.comment.add", "hang_after", seconds=1.5)
    t = token("a", 2)
    body = {"auth": t, "fields": {"ENTITY_ID": 101, "ENTITY_TYPE": "lead", "COMMENT": "slow"}}
    with pytest.raises(requests.exceptions.ReadTimeout):
        requests.post(sim.portals["a"].client_endpoint + "crm.timeline.comment.add", json=body, timeout=0.4)
    [write] = _wait_for_writes(sim, 1)
    assert write["params"]["fields"]["COMMENT"] == "slow"
    listed = rest("a", "crm.timeline.comment.list", t, filter={"ENTITY_ID": 101, "ENTITY_TYPE": "lead"},
                  order={"ID": "DESC"}).json()["result"]
    assert listed[0]["COMMENT"] == "slow"
    # the fault fired once: the next write answers at once
    again = rest("a", "crm.timeline.comment.add", t,
                 fields={"ENTITY_ID": 101, "ENTITY_TYPE": "lead", "COMMENT": "fast"})
    assert again.status_code == 200


def test_hang_after_is_refused_for_the_oauth_server(sim):
    with pytest.raises(ValueError):
        sim.set_fault("oauth", "token", "hang_after", seconds=1)
    r = requests.post(sim.oauth_url + "/_sim/faults", json={"target": "oauth", "method": "token",
                                                            "kind": "hang_after", "seconds": 1}, timeout=5)
    assert r.status_code == 400 and sim.world.faults.list() == []


def test_commit_then_hang_inside_batch(sim, token):
    sim.set_fault("a", "crm.lead.update", "hang_after", seconds=1.5)
    body = {"auth": token("a", 2), "cmd": {"move": "crm.lead.update?id=101&fields[STATUS_ID]=NEW"}}
    with pytest.raises(requests.exceptions.ReadTimeout):
        requests.post(sim.portals["a"].client_endpoint + "batch", json=body, timeout=0.4)
    [write] = _wait_for_writes(sim, 1)
    assert write["method"] == "crm.lead.update"
    assert sim.world.portal("a").leads[101]["STATUS_ID"] == "NEW"


def test_expired_token_on_a_write(sim, rest, token):
    t = token("a", 2)
    sim.expire_access_token(t)
    for method, params in [
        ("crm.timeline.comment.add", {"fields": {"ENTITY_ID": 101, "ENTITY_TYPE": "lead", "COMMENT": "x"}}),
        ("crm.activity.todo.add", {"ownerTypeId": 1, "ownerId": 101, "deadline": DEADLINE}),
        ("crm.activity.update", {"id": 501, "fields": {"COMPLETED": "Y"}}),
        ("crm.lead.update", {"id": 101, "fields": {"STATUS_ID": "NEW"}}),
    ]:
        r = rest("a", method, t, **params)
        assert r.status_code == 401
        assert r.json() == {"error": "expired_token", "error_description": "The access token provided has expired."}
    assert sim.writes() == []


def test_batch_runs_writes(sim, rest, token):
    todo = urlencode({"ownerTypeId": 1, "ownerId": 101, "deadline": DEADLINE, "title": "From batch"})
    res = rest("a", "batch", token("a", 2), halt=0, cmd={
        "note": "crm.timeline.comment.add?fields[ENTITY_ID]=101&fields[ENTITY_TYPE]=lead&fields[COMMENT]=Hi",
        "todo": f"crm.activity.todo.add?{todo}",
        "done": "crm.activity.update?id=501&fields[COMPLETED]=Y",
        "move": "crm.lead.update?id=101&fields[STATUS_ID]=NEW",
        "denied": "crm.lead.update?id=102&fields[STATUS_ID]=NEW",
        "lead": "crm.lead.get?id=101",
    }).json()["result"]
    assert isinstance(res["result"]["note"], int)
    assert set(res["result"]["todo"]) == {"id"}
    assert res["result"]["done"] is True and res["result"]["move"] is True
    assert res["result"]["lead"]["STATUS_ID"] == "NEW"   # later sub-commands see the write
    assert res["result_error"] == {"denied": {"error": "", "error_description": "Access denied."}}
    assert [w["method"] for w in sim.writes()] == ["crm.timeline.comment.add", "crm.activity.todo.add",
                                                   "crm.activity.update", "crm.lead.update"]
    [todo_row] = [a for a in _activities(rest, token, 101) if a["ID"] == str(res["result"]["todo"]["id"])]
    assert todo_row["DEADLINE"] == "2031-03-04T11:00:00+02:00" and todo_row["SUBJECT"] == "From batch"
