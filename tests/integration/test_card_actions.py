"""POST /actions over real HTTP: the app, the simulator's write methods, the viewer's token.

Each action and what Bitrix24 shows afterwards, each refusal before any upstream request, each
right (user 1 admin, user 2 a rep who may read lead 102 but not edit it), Bitrix24's own
refusals in its words, an expired token, forged and malformed requests, and "never twice":
the same key again, three at once, and a write that timed out (devtools/devportal/README.md
"Writes" describes the simulator's side).
"""

from __future__ import annotations

import json
import threading
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests
import sqlalchemy as sa
from bs4 import BeautifulSoup

from devtools.harness import free_port, serve_app
from leadcard.storage.action_keys import action_keys
from tests.integration.harness import app_settings

RICH, READ_ONLY_FOR_REP = 101, 102


def key() -> str:
    return uuid.uuid4().hex  # 32 characters, as the page makes them


def frame_auth(sim, user_id=1, lead_id=RICH):
    """What the frame library holds for this viewer: member_id and the current token."""
    _url, form = sim.placement_request("a", user_id=user_id, lead_id=lead_id)
    return form["member_id"], form["AUTH_ID"]


def act(live, sim, action, params, *, user_id=1, lead_id=RICH, k=None, auth=None,
        member_id=None, lang="en", **extra):
    mid, token = frame_auth(sim, user_id, lead_id)
    body = {"member_id": member_id or mid, "auth": auth or token,
            "placement": "CRM_LEAD_DETAIL_TAB", "id": lead_id, "action": action,
            "params": params, "key": k or key(), "lang": lang, **extra}
    return requests.post(live.url + "/actions", json=body, timeout=30)


def writes(sim, method=None):
    return sim.writes(portal="a", method=method)


def rest_requests(sim):
    return sim.stats()["rest_requests"]


def card(response):
    html = response.json()["result"]["html"]
    assert html, "the card's content comes back for the page to put in place"
    return BeautifulSoup(html, "html.parser")


def view(sim, live, lead_id=RICH, user_id=1):
    url, form = sim.placement_request("a", user_id=user_id, lead_id=lead_id)
    response = live.post(url, form)
    assert response.status_code == 200
    return response


# --- each action ----------------------------------------------------------------------------

def test_comment_is_written_as_the_viewer_and_shows_in_the_card(sim, live_app, installed):
    response = act(live_app, sim, "comment", {"text": "  Agreed on a demo next Tuesday  "},
                   user_id=2)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["ok"] is True and isinstance(body["result"]["comment_id"], int)
    assert body["result"]["message"] == "Comment added." and body["result"]["replayed"] is False
    [write] = writes(sim, "crm.timeline.comment.add")
    assert write["user_id"] == 2  # the viewer's own token, so Bitrix24's rights apply
    assert write["params"]["fields"] == {"ENTITY_ID": RICH, "ENTITY_TYPE": "lead",
                                         "COMMENT": "Agreed on a demo next Tuesday"}
    history = card(response).select_one(".lc-ctx--history")
    assert "Agreed on a demo next Tuesday" in history.get_text()
    assert "Set-Cookie" not in response.headers
    assert response.headers["Cache-Control"] == "no-store"


def test_todo_is_planned_and_listed_in_next_steps(sim, live_app, installed):
    response = act(live_app, sim, "todo", {"title": "Send the contract draft",
                                           "deadline": "2031-03-04T10:00:00+01:00",
                                           "description": "With the trailer option"})
    assert response.status_code == 200, response.text
    assert response.json()["result"]["activity_id"] > 0
    [write] = writes(sim, "crm.activity.todo.add")
    assert write["params"] == {"ownerTypeId": 1, "ownerId": RICH, "title": "Send the contract draft",
                               "deadline": "2031-03-04T10:00:00+01:00",
                               "description": "With the trailer option"}
    subjects = [s.get_text(strip=True) for s in card(response).select(".lc-ctx--next .lc-act__subject")]
    assert "Send the contract draft" in subjects


def test_an_open_todo_is_marked_done(sim, live_app, installed):
    before = BeautifulSoup(view(sim, live_app).text, "html.parser")
    done = before.select_one(".lc-ctx--next [data-lc-done]")
    activity_id = int(done["data-lc-done"])
    response = act(live_app, sim, "todo_done", {"activity_id": activity_id})
    assert response.status_code == 200, response.text
    assert response.json()["result"] == {"activity_id": activity_id, "completed": True,
                                         "message": "To-do marked as done.", "replayed": False,
                                         "html": response.json()["result"]["html"]}
    ids = {int(b["data-lc-done"]) for b in card(response).select(".lc-ctx--next [data-lc-done]")}
    assert activity_id not in ids and ids  # the other open one stays


def test_the_stage_moves_and_bitrix24_refusals_come_in_its_words(sim, live_app, installed):
    view(sim, live_app)  # the stage list is cached by the view, as in the tab
    response = act(live_app, sim, "stage", {"status_id": "NEW"})
    assert response.status_code == 200, response.text
    pill = card(response).select_one(".lc-stage")
    assert pill.get_text(" ", strip=True) == "Stage: Unassigned"
    assert pill["data-lc-stage-bg"] == "#39a8ef"  # the new stage's colour, applied by the page
    chosen = card(response).select_one("#lc-stage-select option[selected]")
    assert chosen["value"] == "NEW"
    assert [w["params"]["fields"] for w in writes(sim, "crm.lead.update")] == [{"STATUS_ID": "NEW"}]
    # PROCESSED needs the "Decision maker" field the lead lacks: Bitrix24 refuses, nothing changes.
    refused = act(live_app, sim, "stage", {"status_id": "PROCESSED"})
    assert refused.status_code == 422
    error = refused.json()["error"]
    assert error["code"] == "refused" and 'The field "Decision maker" is required.' in error["detail"]
    assert 'The field "Decision maker" is required.' in error["message"]
    assert len(writes(sim, "crm.lead.update")) == 1


# --- refusals before any upstream request ----------------------------------------------------

@pytest.mark.parametrize(("action", "params", "code"), [
    ("comment", {"text": "   "}, "comment_empty"),
    ("comment", {"text": "x" * 5001}, "comment_too_long"),
    ("todo", {"title": "Call back"}, "deadline_missing"),
    ("todo", {"title": "Call back", "deadline": "next week"}, "deadline_invalid"),
    ("stage", {"status_id": "NOT_A_STAGE"}, "unknown_stage"),
])
def test_invalid_params_are_refused_before_any_upstream_request(sim, live_app, installed,
                                                                 action, params, code):
    view(sim, live_app)  # warm: the portal's stages are known
    before = rest_requests(sim)
    response = act(live_app, sim, action, params)
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == code and error["message"]
    assert rest_requests(sim) == before and writes(sim) == []


@pytest.mark.parametrize("raw", [
    b"{not json", b"[]", b'{"member_id": 5}', json.dumps({"action": "comment"}).encode(),
])
def test_malformed_bodies_are_400_json(sim, live_app, installed, raw):
    response = requests.post(live_app.url + "/actions", data=raw,
                             headers={"Content-Type": "application/json"}, timeout=10)
    assert response.status_code == 400 and response.json()["ok"] is False
    assert writes(sim) == []


def test_wrong_method_type_and_size_are_4xx_json(sim, live_app, installed):
    got = requests.get(live_app.url + "/actions", timeout=10)
    assert got.status_code == 405 and got.headers["Allow"] == "POST" and got.json()["ok"] is False
    form = requests.post(live_app.url + "/actions", data={"member_id": "x"}, timeout=10)
    assert form.status_code == 415 and form.json()["error"]["code"] == "unsupported_media_type"
    big = requests.post(live_app.url + "/actions", data=b'{"x": "' + b"a" * 40_000 + b'"}',
                        headers={"Content-Type": "application/json"}, timeout=10)
    assert big.status_code == 413 and big.json()["error"]["code"] == "too_large"
    assert writes(sim) == []


def test_unknown_portal_and_forged_token_write_nothing(sim, live_app, installed):
    unknown = act(live_app, sim, "comment", {"text": "hi"}, member_id="f" * 32)
    assert unknown.status_code == 403 and unknown.json()["error"]["code"] == "not_installed"
    forged = act(live_app, sim, "comment", {"text": "hi"}, auth="forged-token-0123456789")
    assert forged.status_code == 401 and forged.json()["error"]["code"] == "invalid_token"
    # Where the request says the portal is does not matter: only the stored endpoint is dialled.
    elsewhere = act(live_app, sim, "comment", {"text": "hi"}, domain="evil.example",
                    client_endpoint="http://127.0.0.1:9/rest/")
    assert elsewhere.status_code == 200
    assert [w["params"]["fields"]["COMMENT"] for w in writes(sim)] == ["hi"]


# --- rights and tokens -----------------------------------------------------------------------

def test_a_rep_who_may_read_but_not_edit_is_told_why(sim, live_app, installed):
    view(sim, live_app, READ_ONLY_FOR_REP, user_id=2)  # he can open it
    response = act(live_app, sim, "todo", {"title": "Call", "deadline": "2031-03-04T10:00:00+01:00"},
                   user_id=2, lead_id=READ_ONLY_FOR_REP)
    assert response.status_code == 403
    error = response.json()["error"]
    assert error["code"] == "access_denied" and "not change it" in error["message"]
    stage = act(live_app, sim, "stage", {"status_id": "NEW"}, user_id=2, lead_id=READ_ONLY_FOR_REP)
    assert stage.status_code == 403
    assert writes(sim) == []


def test_expired_token_is_401_then_the_retry_with_a_fresh_one_writes_once(sim, live_app, installed):
    member_id, old = frame_auth(sim)
    sim.expire_access_token(old)
    k = key()
    first = act(live_app, sim, "comment", {"text": "After lunch"}, auth=old, k=k)
    assert first.status_code == 401 and first.json()["error"]["code"] == "expired_token"
    assert writes(sim) == []
    retry = act(live_app, sim, "comment", {"text": "After lunch"}, k=k)  # refreshAuth, same key
    assert retry.status_code == 200, retry.text
    assert len(writes(sim)) == 1


def test_bitrix24_not_found_is_404(sim, live_app, installed):
    response = act(live_app, sim, "todo_done", {"activity_id": 999999})
    assert response.status_code == 404 and response.json()["error"]["code"] == "not_found"


# --- never twice -----------------------------------------------------------------------------

def test_the_same_key_again_replays_the_first_answer(sim, live_app, installed):
    k = key()
    first = act(live_app, sim, "comment", {"text": "Once"}, k=k)
    again = act(live_app, sim, "comment", {"text": "Once"}, k=k)
    assert first.status_code == again.status_code == 200
    assert again.json()["result"]["comment_id"] == first.json()["result"]["comment_id"]
    assert again.json()["result"]["replayed"] is True
    assert len(writes(sim)) == 1
    other = act(live_app, sim, "comment", {"text": "Something else"}, k=k)
    assert other.status_code == 422 and other.json()["error"]["code"] == "key_reused"
    assert len(writes(sim)) == 1


def test_three_identical_requests_at_once_make_one_write(sim, live_app, installed):
    sim.knobs(latency=0.4)  # the first is still writing when the others arrive
    k, start = key(), threading.Barrier(3)
    member_id, token = frame_auth(sim)
    body = {"member_id": member_id, "auth": token, "placement": "CRM_LEAD_DETAIL_TAB",
            "id": RICH, "action": "comment", "params": {"text": "Double click"}, "key": k}

    def send(_):
        start.wait(timeout=10)
        return requests.post(live_app.url + "/actions", json=body, timeout=30)

    with ThreadPoolExecutor(3) as pool:
        answers = list(pool.map(send, range(3)))
    assert [a.status_code for a in answers] == [200, 200, 200]
    assert len({a.json()["result"]["comment_id"] for a in answers}) == 1
    assert sorted(a.json()["result"]["replayed"] for a in answers) == [False, True, True]
    assert len(writes(sim, "crm.timeline.comment.add")) == 1


def test_a_write_that_timed_out_is_never_sent_again(sim, tmp_path, installed):
    # A second app on the same database with a short read timeout: Bitrix24 applies the write,
    # then answers after the app gave up.
    port = free_port()
    live = serve_app(app_settings(sim, port, tmp_path, B24_READ_TIMEOUT="1.0"), port)
    try:
        sim.set_fault("a", "crm.timeline.comment.add", "hang_after", seconds=2.5, count=1)
        k = key()
        first = act(live, sim, "comment", {"text": "Slow portal"}, k=k)
        assert first.status_code == 504
        error = first.json()["error"]
        assert error["code"] == "outcome_unknown" and "may have been saved" in error["message"]
        assert len(writes(sim)) == 1  # it did happen
        again = act(live, sim, "comment", {"text": "Slow portal"}, k=k)
        assert again.status_code == 504 and again.json()["error"]["code"] == "outcome_unknown"
        assert len(writes(sim)) == 1  # and is not made a second time
    finally:
        live.stop()


def test_a_clean_uninstall_deletes_the_portals_keys(sim, live_app, installed):
    assert act(live_app, sim, "comment", {"text": "Before uninstall"}).status_code == 200
    engine = live_app.services.engine
    with engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(action_keys)).scalar() == 1
    sim.uninstall("a", clean=True)
    with engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(action_keys)).scalar() == 0


def test_writes_take_the_portals_rate_limit_slots_like_reads(sim, tmp_path, installed):
    # 2 slots, then one every 5 s: the first action spends both (its write and the card's
    # read-back); the next is refused by our own bucket at once, nothing sent, key released.
    port = free_port()
    live = serve_app(app_settings(sim, port, tmp_path, B24_RATE_PER_SECOND="0.2",
                                  B24_RATE_BURST="2"), port)
    try:
        assert act(live, sim, "comment", {"text": "First"}).status_code == 200
        before = rest_requests(sim)
        k = key()
        busy = act(live, sim, "comment", {"text": "Second"}, k=k)
        assert busy.status_code == 503 and busy.json()["error"]["code"] == "rate_limited"
        assert int(busy.headers["Retry-After"]) >= 1
        assert rest_requests(sim) == before
        assert [w["params"]["fields"]["COMMENT"] for w in writes(sim)] == ["First"]
        with live.services.engine.connect() as conn:
            keys = [r.key for r in conn.execute(sa.select(action_keys.c.key))]
        assert k not in keys  # nothing was written: the same key may be sent again later
    finally:
        live.stop()


def test_the_card_page_lets_its_script_talk_only_to_the_app(sim, live_app, installed):
    csp = view(sim, live_app).headers["Content-Security-Policy"]
    directives = dict(part.strip().split(" ", 1) for part in csp.split(";"))
    assert directives["connect-src"] == "'self'"


def test_a_todo_for_someone_else_names_them_as_responsible(sim, live_app, installed):
    response = act(live_app, sim, "todo", {"title": "Prepare the demo",
                                           "deadline": "2031-03-05T09:30:00+01:00",
                                           "responsible_id": 2})
    assert response.status_code == 200, response.text
    [write] = writes(sim, "crm.activity.todo.add")
    assert write["params"]["responsibleId"] == 2 and write["user_id"] == 1
