"""Hostile bodies for POST /actions (issue 13), property-tested against the real app and the
simulator. Hypothesis starts from a valid body with a genuine token and keeps, drops or
replaces every field and every parameter with hostile values, wrong types and deep nesting.

- never a 5xx, never a traceback or framework text, never a cookie, always the JSON contract;
- a write reaches Bitrix24 only for an answer that says so: the simulator's write log grows by
  exactly the number of first (not replayed) 200 answers;
- stored portals never change.
"""

from __future__ import annotations

import json
import uuid

import pytest
import requests
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.security.harness import (
    TRACE_MARKERS,
    app_settings,
    free_port,
    install_portal,
    snapshot,
    start_app,
    start_sim,
)

FUZZ = settings(max_examples=150, deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                       HealthCheck.function_scoped_fixture])
OMIT = object()


class World:
    def __init__(self, tmp) -> None:
        port = free_port()
        self.sim = start_sim(port)
        self.sim.knobs(rate_limit=False)
        self.live = start_app(app_settings(self.sim, port, f"sqlite:///{tmp}/fuzz-actions.sqlite3",
                                           B24_RATE_PER_SECOND="100000",
                                           B24_RATE_BURST="100000"), port)
        install_portal(self.sim, self.live, "a")
        _url, form = self.sim.placement_request("a", user_id=1, lead_id=101)
        self.member_id, self.token = form["member_id"], form["AUTH_ID"]
        self.first_answers = 0

    def stop(self) -> None:
        self.live.stop()
        self.sim.stop()


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    w = World(tmp_path_factory.mktemp("fuzz-actions"))
    yield w
    w.stop()


hostile = st.one_of(
    st.text(max_size=30), st.integers(), st.floats(allow_nan=True), st.booleans(), st.none(),
    st.lists(st.integers(), max_size=3), st.dictionaries(st.text(max_size=5), st.integers(), max_size=3),
    st.sampled_from(["", " ", "\x00", "<script>alert(1)</script>", "' OR 1=1 --", "A" * 6000,
                     "../../etc/passwd", "http://169.254.169.254/", "\u202e", "9" * 40,
                     "2031-02-30T10:00:00+01:00", "2031-03-04T10:00:00+25:00", "NaN",
                     "CRM_LEAD_DETAIL_TAB\x00", "PROCESSED", "JUNK", "__proto__"]),
)


def field(good):
    """Mostly the good value (so whole bodies are often valid and reach Bitrix24), else
    missing or hostile."""
    return st.integers(0, 9).flatmap(
        lambda i: st.just(good) if i < 7 else st.just(OMIT) if i == 7 else hostile)


@st.composite
def bodies(draw, w: World):
    action = draw(st.sampled_from(["comment", "comment", "todo", "todo_done", "stage", "delete", 7]))
    params_good = {
        "comment": {"text": "Fuzz " + uuid.uuid4().hex[:6]},
        "todo": {"title": "Call", "deadline": "2031-03-04T10:00:00+01:00", "description": "d"},
        "todo_done": {"activity_id": 502},
        "stage": {"status_id": "NEW"},
    }.get(action, {})
    params = {k: draw(field(v)) for k, v in params_good.items()}
    params.update(draw(st.dictionaries(st.sampled_from(["responsible_id", "id", "auth"]), hostile,
                                       max_size=2)))
    body = {
        "member_id": draw(field(w.member_id)),
        "auth": draw(field(w.token)),
        "placement": draw(field("CRM_LEAD_DETAIL_TAB")),
        "id": draw(field(101)),
        "action": action,
        "params": draw(st.one_of(st.just({k: v for k, v in params.items() if v is not OMIT}),
                                 hostile)),
        "key": draw(field(uuid.uuid4().hex)),
        "lang": draw(field("de")),
    }
    body = {k: v for k, v in body.items() if v is not OMIT}
    wrap = draw(st.integers(0, 9))
    return body if wrap < 8 else [body] if wrap == 8 else {"body": body}


@FUZZ
@given(data=st.data())
def test_hostile_action_bodies(world, data):
    body = data.draw(bodies(world))
    stored = snapshot(world.live.services.engine)
    before = len(world.sim.writes(portal="a"))
    try:
        raw = json.dumps(body, allow_nan=True).encode()
    except (TypeError, ValueError):
        raw = repr(body).encode()
    response = requests.post(world.live.url + "/actions", data=raw,
                             headers={"Content-Type": "application/json"}, timeout=30)
    assert response.status_code < 500, (response.status_code, response.text[:300])
    assert not any(marker in response.text for marker in TRACE_MARKERS)
    assert "Set-Cookie" not in response.headers
    answer = response.json()
    assert isinstance(answer, dict) and isinstance(answer.get("ok"), bool)
    if not answer["ok"]:
        assert answer["error"]["code"] and answer["error"]["message"]
    made = response.status_code == 200 and not answer["result"]["replayed"]
    assert len(world.sim.writes(portal="a")) == before + (1 if made else 0)
    world.first_answers += made
    assert snapshot(world.live.services.engine)["portals"] == stored["portals"]


def test_the_fuzzing_reached_bitrix24(world):
    """The property above is only worth something if valid bodies were among the examples."""
    assert world.first_answers > 0
    assert len(world.sim.writes(portal="a")) == world.first_answers
