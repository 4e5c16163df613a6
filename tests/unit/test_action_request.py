"""POST /actions bodies: every rule of issue 13's contract, refused before anything is sent."""

from __future__ import annotations

import copy

import pytest

from leadcard.flows.action_request import ActionRefused, parse_action

BASE = {
    "member_id": "a" * 32,
    "auth": "token-abcdefgh123",
    "placement": "CRM_LEAD_DETAIL_TAB",
    "id": 101,
    "action": "comment",
    "params": {"text": "Agreed on a demo"},
    "key": "k" * 16,
}


def body(**changes):
    out = copy.deepcopy(BASE)
    for name, value in changes.items():
        if value is ...:
            out.pop(name, None)
        else:
            out[name] = value
    return out


def refused(raw) -> ActionRefused:
    with pytest.raises(ActionRefused) as caught:
        parse_action(raw)
    return caught.value


def test_a_valid_comment():
    req = parse_action(body(params={"text": "  Agreed on a demo \n"}))
    assert (req.member_id, req.lead_id, req.action, req.key) == ("a" * 32, 101, "comment", "k" * 16)
    assert req.params == {"text": "Agreed on a demo"}
    assert "token" not in repr(req)  # the token never reaches a log line through repr


@pytest.mark.parametrize(("raw", "code", "field"), [
    ([], "invalid_json", None),
    ("text", "invalid_json", None),
    (body(member_id=...), "invalid_request", "member_id"),
    (body(member_id="x/../y"), "invalid_request", "member_id"),
    (body(auth=""), "invalid_request", "auth"),
    (body(auth="bad token with spaces"), "invalid_request", "auth"),
    (body(placement="CRM_DEAL_DETAIL_TAB"), "invalid_request", "placement"),
    (body(id=0), "invalid_request", "id"),
    (body(id=True), "invalid_request", "id"),
    (body(id="12a"), "invalid_request", "id"),
    (body(key="short"), "invalid_key", "key"),
    (body(key="k" * 65), "invalid_key", "key"),
    (body(key="k" * 15 + "!"), "invalid_key", "key"),
    (body(action="delete"), "unknown_action", "action"),
    (body(params="text"), "invalid_request", "params"),
    (body(params={}), "comment_empty", "text"),
    (body(params={"text": " \n\t "}), "comment_empty", "text"),
    (body(params={"text": "x" * 5001}), "comment_too_long", "text"),
])
def test_refusals(raw, code, field):
    exc = refused(raw)
    assert (exc.code, exc.status, exc.field) == (code, 400, field)


def test_comment_limits_count_characters_after_trimming():
    assert parse_action(body(params={"text": " " + "ё" * 5000 + " "})).params["text"] == "ё" * 5000
    assert parse_action(body(params={"text": "x"})).params["text"] == "x"


def todo(**params):
    return body(action="todo", params=params)


def test_a_valid_todo_keeps_the_offset():
    req = parse_action(todo(title="  Call   back ", deadline="2031-03-04T10:00:00+01:00",
                            description=" Ask about the budget ", responsible_id="7"))
    assert req.params == {"title": "Call back", "deadline": "2031-03-04T10:00:00+01:00",
                          "description": "Ask about the budget", "responsible_id": 7}
    assert parse_action(todo(title="T", deadline="2031-03-04T09:00:00Z")).params["deadline"] \
        == "2031-03-04T09:00:00+00:00"


@pytest.mark.parametrize(("params", "code", "field"), [
    ({"deadline": "2031-03-04T10:00:00+01:00"}, "title_empty", "title"),
    ({"title": "x" * 256, "deadline": "2031-03-04T10:00:00+01:00"}, "title_too_long", "title"),
    ({"title": "Call"}, "deadline_missing", "deadline"),
    ({"title": "Call", "deadline": ""}, "deadline_missing", "deadline"),
    ({"title": "Call", "deadline": "tomorrow"}, "deadline_invalid", "deadline"),
    ({"title": "Call", "deadline": "2031-03-04T10:00"}, "deadline_invalid", "deadline"),  # no offset
    ({"title": "Call", "deadline": "1900-01-01T10:00:00+00:00"}, "deadline_invalid", "deadline"),
    ({"title": "Call", "deadline": 20310304}, "deadline_invalid", "deadline"),
    ({"title": "Call", "deadline": "2031-03-04T10:00:00+01:00", "description": "d" * 5001},
     "description_too_long", "description"),
    ({"title": "Call", "deadline": "2031-03-04T10:00:00+01:00", "responsible_id": -1},
     "invalid_request", "responsible_id"),
])
def test_todo_refusals(params, code, field):
    exc = refused(todo(**params))
    assert (exc.code, exc.field) == (code, field)


def test_todo_done_and_stage():
    assert parse_action(body(action="todo_done", params={"activity_id": 501})).params == {"activity_id": 501}
    assert refused(body(action="todo_done", params={"activity_id": "x"})).field == "activity_id"
    assert parse_action(body(action="stage", params={"status_id": "IN_PROCESS"})).params == {
        "status_id": "IN_PROCESS"}
    assert refused(body(action="stage", params={"status_id": "<b>"})).code == "unknown_stage"
    assert refused(body(action="stage", params={})).code == "unknown_stage"


def test_the_fingerprint_names_the_request_not_the_token():
    one = parse_action(body())
    retry = parse_action(body(auth="a-fresh-token-after-refresh"))
    other = parse_action(body(params={"text": "Something else"}))
    assert one.fingerprint == retry.fingerprint != other.fingerprint
    assert parse_action(body(id=102)).fingerprint != one.fingerprint


def test_lang_is_kept_only_when_well_formed():
    assert parse_action(body(lang="DE")).lang == "de"
    assert parse_action(body(lang="<script>")).lang is None
    assert parse_action(body()).lang is None
