"""Hostile input (threats.md §6 scenarios 16 and 18), property-tested against the real app.

Hypothesis builds requests from the real payloads in `tests/fixtures/payloads/` — every
field kept, dropped, duplicated or replaced by hostile text or raw non-UTF-8 bytes — and
sends them over HTTP to the app, which talks to the real simulator. Properties:

- never a 5xx, never a traceback or framework error text, never a cookie;
- never a change to stored data (every row of portals / viewer_renewals / oauth_states is
  compared before and after each request): none of these requests is a verified install;
- a lead ID that is not a positive integer is refused (400) before any upstream call: the
  simulator's REST, token and app.info counters do not move.
"""

from __future__ import annotations

import json
import time
from urllib.parse import urlencode

import pytest
import requests
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from tests.conftest import load_payload
from tests.security.harness import (
    TRACE_MARKERS,
    app_settings,
    free_port,
    install_portal,
    problem_code,
    snapshot,
    start_app,
    start_sim,
)

PLACEMENT = load_payload("placement_crm_lead_detail_tab_post.docs.json")
DEAL_TAB = load_payload("placement_crm_deal_detail_tab_post.current_docs.json")
INSTALL = load_payload("install_frame_post.docs.json")
EVENTS = [load_payload(name) for name in ("onappinstall_event.docs.json",
                                          "onappinstall_event.phpsdk_fixture.json",
                                          "onappuninstall_event.docs.json",
                                          "onappupdate_event.docs.json",
                                          "event_oncrmdealadd_app.docs.json")]
FUZZ = settings(max_examples=200, deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


# --- the world: one simulator, one app, portal "a" installed ----------------------------------

class World:
    def __init__(self, tmp) -> None:
        port = free_port()
        self.sim = start_sim(port)
        self.sim.knobs(rate_limit=False)
        self.live = start_app(app_settings(self.sim, port, f"sqlite:///{tmp}/fuzz.sqlite3",
                                           B24_RATE_PER_SECOND="100000",
                                           B24_RATE_BURST="100000"), port)
        self.a = install_portal(self.sim, self.live, "a")
        self.b = self.sim.portals["b"]
        # Genuine tokens that are *not* an administrator's: verified, but must not install.
        self.user_tokens = [self.sim.issue_tokens("a", 2), self.sim.issue_tokens("b", 2)]

    def counters(self) -> tuple:
        w = self.sim.world
        with w.lock:
            return (sum(c["rest_requests"] for c in w.counters.values()),
                    sum(w.oauth_counters["token"].values()), w.oauth_counters["app_info"])

    def stop(self) -> None:
        self.live.stop()
        self.sim.stop()


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    w = World(tmp_path_factory.mktemp("fuzz"))
    yield w
    w.stop()


# --- strategies ------------------------------------------------------------------------------

OMIT = object()
hostile_text = st.one_of(
    st.text(st.characters(exclude_categories=("Cs",)), max_size=40),
    st.sampled_from([
        "", " ", "\x00", "\r\n", "../../etc/passwd", "<script>alert(1)</script>",
        "' OR 1=1 --", "%00", "%ff", "\u202e", "\ufeff", "1e9", "-1", "0", "0x10", " 12 ",
        "9" * 30, "null", "[]", "{}", "A" * 3000, "javascript:alert(1)",
        "http://169.254.169.254/", "evil.test", "127.0.0.1:6379", "a.test@evil.test",
        "DEFAULT", "CRM_LEAD_DETAIL_TAB\x00", "\u0661\u0662",
    ]),
)
raw_bytes = st.binary(max_size=48)
hex_token = st.text("0123456789abcdef", min_size=8, max_size=80)
broken = st.one_of(hostile_text, raw_bytes, st.just(OMIT))


def good(*choices):
    """Well-formed values for a field (plain values or strategies)."""
    return st.one_of(*[c if isinstance(c, st.SearchStrategy) else st.just(c) for c in choices])


# PLACEMENT_OPTIONS with a known verdict: (text, lead ID valid?)
good_id = st.one_of(st.sampled_from([101, 102, 103, 104, 105, 106, 107, 201, 987654]),
                    st.integers(min_value=1, max_value=10**9))
valid_options = st.one_of(
    good_id.map(lambda n: (json.dumps({"ID": str(n)}), True)),
    good_id.map(lambda n: (json.dumps({"ID": n}), True)),
    good_id.map(lambda n: (f'{{"ID":"{n}","URI":"\\/crm\\/lead\\/details\\/{n}\\/?IFRAME=Y"}}',
                           True)),
    st.just((PLACEMENT["form"]["PLACEMENT_OPTIONS"], True)),
    st.just((DEAL_TAB["form"]["PLACEMENT_OPTIONS"], True)),
)
bad_id_values = st.one_of(
    st.integers(max_value=0), st.integers(min_value=10**12),
    st.floats(allow_nan=False, allow_infinity=False), st.booleans(), st.none(),
    st.lists(st.integers(), max_size=3),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
    st.sampled_from(["", " 12 ", "12 ", "+12", "-12", "0", "00", "1e3", "0x10", "12.0",
                     "\u0661\u0662", "\uff11\uff12", "9" * 30, "12\x00", "abc", "null", "true"]),
)
invalid_options = st.one_of(
    bad_id_values.map(lambda v: (json.dumps({"ID": v}), False)),
    st.dictionaries(st.sampled_from(["id", "Id", "LEAD_ID", "URI", "ENTITY_ID"]),
                    st.text(max_size=5), max_size=3).map(lambda d: (json.dumps(d), False)),
    st.sampled_from(["", "{", "[]", "[1]", "1", '"{\\"ID\\":\\"1\\"}"', "null", "{'ID': '1'}",
                     "[" * 3000 + "]" * 3000, '{"ID":"1"' + " " * 5000 + "}",
                     json.dumps({"ID": "1", "X": "y" * 5000})]).map(lambda t: (t, False)),
    st.text(max_size=30).filter(lambda t: not t.strip().startswith("{")).map(lambda t: (t, False)),
)
options_strategy = st.one_of(valid_options, valid_options, invalid_options)


@st.composite
def pairs_from(draw, base: dict, good_values: dict) -> list[tuple[str, object]]:
    """Form pairs from a real payload: a few fields broken (hostile text, raw bytes or left
    out), the rest well-formed; sometimes duplicated keys, stray fields, another order."""
    keys = list(base)
    to_break = draw(st.one_of(st.just(set()), st.just(set()),
                              st.sets(st.sampled_from(keys), max_size=3)))
    out: list[tuple[str, object]] = []
    for key in keys:
        value = draw(broken if key in to_break else good_values.get(key, st.just(str(base[key]))))
        if value is not OMIT:
            out.append((key, value))
    for _ in range(draw(st.sampled_from([0, 0, 1, 2]))):  # duplicate keys and stray fields
        key = draw(st.one_of(st.sampled_from(keys), hostile_text.filter(bool)))
        out.append((key, draw(st.one_of(hostile_text, raw_bytes))))
    if out and draw(st.booleans()):
        out = draw(st.permutations(out))
    return out


def encode(pairs) -> bytes:
    return urlencode([(k, v) for k, v in pairs]).encode("ascii")


def check_response(world, response: requests.Response, before_db, html: bool) -> None:
    event(f"HTTP {response.status_code} {problem_code(response) or ''}".strip())
    assert response.status_code < 500, (response.status_code, response.text[:300])
    for marker in TRACE_MARKERS:
        assert marker not in response.text, marker
    assert "Set-Cookie" not in response.headers
    if html:
        assert response.headers["Content-Type"].startswith("text/html")
    assert snapshot(world.live.services.engine) == before_db


def post(world, path: str, query, body: bytes, content_type: str) -> requests.Response:
    url = world.live.url + path + ("?" + encode(query).decode() if query else "")
    return requests.post(url, data=body, headers={"Content-Type": content_type}, timeout=20,
                         allow_redirects=False)


def query_strategy(world, real: dict):
    return pairs_from(real, {
        "DOMAIN": good(world.a.domain, world.a.domain, real["DOMAIN"], world.b.domain),
        "PROTOCOL": good("1", "0"),
        "LANG": good("en", "de", "ru", "xx"),
        "APP_SID": good(hex_token),
    })


# --- /placement ---------------------------------------------------------------------------------

@FUZZ
@given(data=st.data())
def test_placement_fuzz(world, data):
    real = PLACEMENT["form"]
    a, tokens = world.a, world.user_tokens
    options, id_valid = data.draw(options_strategy, label="options")
    form = data.draw(pairs_from(dict(real, APPLICATION_TOKEN="x", SERVER_ENDPOINT="x"), {
        "member_id": good(a.member_id, a.member_id, real["member_id"], world.b.member_id),
        "AUTH_ID": good(tokens[0]["access_token"], tokens[1]["access_token"], hex_token,
                        real["AUTH_ID"]),
        "REFRESH_ID": good(tokens[0]["refresh_token"], hex_token, real["REFRESH_ID"]),
        "APPLICATION_TOKEN": good(a.application_token, a.application_token, hex_token, OMIT),
        "SERVER_ENDPOINT": good("https://oauth.bitrix.info/rest/", "http://169.254.169.254/rest/"),
        "PLACEMENT": st.one_of(st.just("CRM_LEAD_DETAIL_TAB"),
                               good("CRM_DEAL_DETAIL_TAB", "DEFAULT", "crm_lead_detail_tab")),
        "PLACEMENT_OPTIONS": st.just(options),
        "AUTH_EXPIRES": good("3600", "0", "-5", "99999999999"),
    }), label="form")
    query = data.draw(query_strategy(world, PLACEMENT["query"]), label="query")
    content_type = data.draw(st.sampled_from(["application/x-www-form-urlencoded"] * 12 + [
        "text/plain", "application/json", "multipart/form-data; boundary=x"]))
    before_db = snapshot(world.live.services.engine)
    before = world.counters()
    response = post(world, "/placement", query, encode(form), content_type)
    check_response(world, response, before_db, html=True)
    options_sent = [v for k, v in form if k == "PLACEMENT_OPTIONS"]
    if not id_valid and options_sent and options_sent[0] == options:
        assert response.status_code in (400, 413), response.status_code
        assert world.counters() == before  # refused before any upstream call


# --- /install ------------------------------------------------------------------------------------

@FUZZ
@given(data=st.data())
def test_install_fuzz(world, data):
    real = INSTALL["form"]
    a, tokens = world.a, world.user_tokens
    form = data.draw(pairs_from(real, {
        "member_id": good(a.member_id, a.member_id, real["member_id"], world.b.member_id),
        "AUTH_ID": good(*(t["access_token"] for t in tokens), hex_token, real["AUTH_ID"]),
        "REFRESH_ID": good(*(t["refresh_token"] for t in tokens), hex_token, real["REFRESH_ID"]),
        "APPLICATION_TOKEN": good(a.application_token, hex_token, OMIT),
        "SERVER_ENDPOINT": good("https://oauth.bitrix.info/rest/", "http://127.0.0.1:1/rest/"),
        "PLACEMENT": good("DEFAULT", "CRM_LEAD_DETAIL_TAB"),
    }), label="form")
    query = data.draw(query_strategy(world, INSTALL["query"]), label="query")
    before_db = snapshot(world.live.services.engine)
    before = world.counters()
    response = post(world, "/install", query, encode(form), "application/x-www-form-urlencoded")
    check_response(world, response, before_db, html=True)
    # Nothing but the pinned OAuth server (app.info) and A's/B's own REST may be asked.
    rest, token_calls, _ = world.counters()
    assert token_calls == before[1]  # an unverified install never spends or exchanges tokens


# --- /events -------------------------------------------------------------------------------------

def flatten(value, prefix=""):
    if isinstance(value, dict):
        for k, v in value.items():
            yield from flatten(v, f"{prefix}[{k}]" if prefix else str(k))
    else:
        yield prefix, str(value)


@FUZZ
@given(data=st.data())
def test_events_fuzz(world, data):
    a, tokens = world.a, world.user_tokens
    real = dict(flatten(data.draw(st.sampled_from(EVENTS), label="event")))
    form = data.draw(pairs_from(real, {
        "event": good(real["event"], "ONAPPINSTALL", "ONAPPUNINSTALL", "ONAPPUPDATE",
                      "ONCRMLEADADD", "onappuninstall", "ONAPP-INSTALL"),
        "auth[member_id]": good(a.member_id, a.member_id, real.get("auth[member_id]", ""),
                                world.b.member_id),
        "auth[application_token]": good(a.application_token, world.b.application_token,
                                        real.get("auth[application_token]", ""), hex_token),
        "auth[access_token]": good(*(t["access_token"] for t in tokens), hex_token),
        "auth[refresh_token]": good(*(t["refresh_token"] for t in tokens), hex_token),
        "auth[client_endpoint]": good("http://169.254.169.254/rest/", "https://evil.test/rest/"),
        "auth[server_endpoint]": good("https://evil.test/rest/"),
        "data[CLEAN]": good("1", "0"),
    }), label="form")
    extra_keys = data.draw(st.lists(st.sampled_from([
        "auth", "auth[]", "auth[member_id][]", "auth[[member_id]]", "auth]member_id[",
        "data", "data[FIELDS][ID]", "event[]", "auth[application_token][x]"]), max_size=2))
    form += [(k, data.draw(st.one_of(hostile_text, raw_bytes))) for k in extra_keys]
    before_db = snapshot(world.live.services.engine)
    before = world.counters()
    response = post(world, "/events", None, encode(form), "application/x-www-form-urlencoded")
    check_response(world, response, before_db, html=False)
    assert response.headers["Content-Type"].startswith("application/json")
    body = response.json()
    assert body.get("status") in ("ok", "error")
    if response.status_code == 401:
        assert body == {"status": "error", "error": "invalid_application_token"}
    assert world.counters()[1] == before[1]  # no token ever spent for an unverified event


# --- oversized and odd requests (scenario 18) --------------------------------------------------

def _timed_post(url, **kw):
    start = time.monotonic()
    try:
        response = requests.post(url, timeout=10, allow_redirects=False, **kw)
    except requests.ConnectionError:
        # The server may refuse to read a huge body and close; that is a refusal too.
        return None, time.monotonic() - start
    return response, time.monotonic() - start


@pytest.mark.parametrize("path", ["/placement", "/install", "/events"])
def test_ten_megabyte_body_is_413_quickly(world, path):
    before_db, before = snapshot(world.live.services.engine), world.counters()
    response, elapsed = _timed_post(world.live.url + path, data=b"a=" + b"x" * 10_000_000,
                                    headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert response is None or response.status_code == 413
    if response is not None:
        for marker in TRACE_MARKERS:
            assert marker not in response.text
    assert elapsed < 1.0, elapsed
    assert world.counters() == before and snapshot(world.live.services.engine) == before_db


def _real_placement(world, user_id=1, lead_id=101):
    return world.sim.placement_request("a", user_id=user_id, lead_id=lead_id)


def test_ten_thousand_form_fields_are_refused(world):
    url, form = _real_placement(world)
    pairs = list(form.items()) + [(f"f{i}", "1") for i in range(10_000)]
    before = world.counters()
    response, elapsed = _timed_post(url, data=pairs)
    assert response is not None and 400 <= response.status_code < 500
    assert elapsed < 1.0
    assert world.counters() == before


@pytest.mark.parametrize("size", [10_000, 1_000_000])
def test_large_placement_options_are_refused(world, size):
    url, form = _real_placement(world)
    form["PLACEMENT_OPTIONS"] = json.dumps({"ID": "101", "X": "y" * size})
    before = world.counters()
    response, elapsed = _timed_post(url, data=form)
    assert response is not None and response.status_code == (400 if size < 64_000 else 413)
    assert elapsed < 1.0
    assert world.counters() == before


@pytest.mark.parametrize("where", ["member_id", "AUTH_ID", "PLACEMENT_OPTIONS", "query", "key"])
def test_non_utf8_bytes_are_a_400(world, where):
    url, form = _real_placement(world)
    pairs = [(k.encode(), v.encode()) for k, v in form.items()]
    junk = b"\xff\xfe\xc3\x28\x80"
    if where == "key":
        pairs.append((junk, junk))
    elif where != "query":
        pairs = [(k, v + junk if k.decode() == where else v) for k, v in pairs]
    else:
        url += "&LANG=%ff%fe&DOMAIN=%c3%28"
    body = b"&".join(k + b"=" + v for k, v in pairs)  # raw, not even percent-encoded
    before_db, before = snapshot(world.live.services.engine), world.counters()
    response, _ = _timed_post(url, data=body,
                              headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert response is not None and response.status_code < 500
    for marker in TRACE_MARKERS:
        assert marker not in response.text
    if where in ("member_id", "AUTH_ID", "PLACEMENT_OPTIONS"):
        assert response.status_code == 400
        assert world.counters() == before
    assert snapshot(world.live.services.engine) == before_db


def test_duplicate_keys_never_widen_access(world):
    private = world.sim.sample_lead("a", "private")  # user 2 may not read lead 104
    url, form = _real_placement(world, user_id=2, lead_id=101)
    cases = [
        list(form.items()) + [("PLACEMENT_OPTIONS", json.dumps({"ID": private["ID"]}))],
        [("PLACEMENT_OPTIONS", json.dumps({"ID": private["ID"]}))] + list(form.items()),
        [(k, v) for k, v in form.items() if k != "PLACEMENT_OPTIONS"]
        + [("PLACEMENT_OPTIONS", '{"ID":"101","ID":"' + str(private["ID"]) + '"}')],
        list(form.items()) + [("member_id", world.b.member_id), ("AUTH_ID", "0" * 40)],
    ]
    for pairs in cases:
        before_db = snapshot(world.live.services.engine)
        response, _ = _timed_post(url, data=pairs)
        assert response is not None and response.status_code in (200, 400, 403, 404)
        assert private["TITLE"] not in response.text
        assert snapshot(world.live.services.engine) == before_db


def test_duplicate_event_keys_do_not_authenticate(world):
    form = world.sim.onappuninstall_form("a", clean=True)
    pairs = list(form.items())
    # A wrong token first, the real one second (or the other way round): never a deletion.
    for order in (0, 1):
        tokens = [("auth[application_token]", "0" * 32),
                  ("auth[application_token]", world.a.application_token)]
        if order:
            tokens.reverse()
        body = [(k, v) for k, v in pairs if k != "auth[application_token]"] + tokens
        before_db = snapshot(world.live.services.engine)
        response, _ = _timed_post(world.live.url + "/events", data=body)
        # 429: this module's earlier cases spent portal a's uninstall allowance (attempts.py).
        assert response is not None and response.status_code in (200, 401, 429)
        assert snapshot(world.live.services.engine) == before_db
