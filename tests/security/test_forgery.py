"""Forged requests (threats.md §6 scenarios 20–26 and 29), against the real app and simulator.

Evidence comes from three places: the simulator's own counters, a recording "evil" server
on another loopback port, and the wire tap (`Egress`) that sees every connection the app
opens and every byte it sends.
"""

from __future__ import annotations

import re
import secrets
from urllib.parse import urlencode

import pytest

from leadcard.storage.portals import ACTIVE, UNINSTALLED
from tests.security.harness import (
    assert_designed_page,
    assert_no_trace,
    install_portal,
    placement,
    snapshot,
)

AUTH_IN_JSON = re.compile(rb'"auth":\s*"([^"]+)"')


def frame_url(live, path: str, domain: str, protocol: str = "1", lang: str = "en") -> str:
    query = urlencode({"DOMAIN": domain, "PROTOCOL": protocol, "LANG": lang,
                       "APP_SID": secrets.token_hex(16)})
    return f"{live.url}{path}?{query}"


def stored_secrets(live, member_id: str) -> list[bytes]:
    creds = live.store.credentials(member_id)
    return [creds.access_token.encode(), creds.refresh_token.encode()]


def allowed_ports(sim, *portals: str) -> set[int]:
    return {sim.world.oauth_port, *(sim.portals[p].port for p in portals)}


# --- scenario 20: victim member_id, attacker DOMAIN -----------------------------------------

@pytest.mark.parametrize("domain_kind", ["evil_port", "portal_b", "evil.test", "metadata",
                                         "userinfo", "redis"])
def test_forged_placement_cannot_choose_the_host(sim, live_app, installed, egress, evil,
                                                 domain_kind, caplog):
    install_portal(sim, live_app, "b")
    domains = {
        "evil_port": f"127.0.0.1:{evil.port}",
        "portal_b": sim.portals["b"].domain,
        "evil.test": "evil.test",
        "metadata": "169.254.169.254",
        "userinfo": f"a.test@127.0.0.1:{evil.port}",
        "redis": "localhost:6379",
    }
    attacker = sim.issue_tokens("b", 1)  # a genuine token, but for portal B
    _, form = sim.placement_request("a", user_id=1, lead_id=104)
    form.update(AUTH_ID=attacker["access_token"], REFRESH_ID=attacker["refresh_token"],
                SERVER_ENDPOINT=f"{evil.url}/rest/")
    form.pop("APPLICATION_TOKEN")
    before_db = snapshot(live_app.services.engine)
    before = sim.stats()
    mark = egress.mark()
    with caplog.at_level("INFO", logger="leadcard"):
        response = live_app.post(frame_url(live_app, "/placement", domains[domain_kind]), form)

    assert response.status_code in (400, 401, 403), response.status_code
    assert_no_trace(response)
    assert "Private" not in response.text and "from evil" not in response.text
    assert evil.requests == []
    # Only A's stored endpoint (and at most the pinned OAuth server) was contacted.
    assert egress.connected_ports(mark) <= allowed_ports(sim, "a")
    assert sim.stats()["portals"]["b"]["rest_requests"] == before["portals"]["b"]["rest_requests"]
    assert sim.stats()["token_calls"] == before["token_calls"]
    sent = egress.sent_anywhere_but(set(), mark)
    assert not any(s in sent for s in stored_secrets(live_app, installed.member_id))
    assert snapshot(live_app.services.engine) == before_db
    # Logged, without token material.
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert "/placement" in logged or "malformed" in logged
    assert attacker["access_token"] not in logged and attacker["refresh_token"] not in logged


def test_forged_placement_with_victim_domain_and_garbage_token(sim, live_app, installed, egress):
    """Scenario 21: verification fails (401 card), A unchanged, no stored token used."""
    before_db = snapshot(live_app.services.engine)
    before_tokens = sim.stats()["token_calls"]
    mark = egress.mark()
    response = placement(sim, live_app, 101, AUTH_ID=secrets.token_hex(35),
                         REFRESH_ID=secrets.token_hex(35))
    assert_designed_page(live_app, response, "not_verified", 401)
    assert snapshot(live_app.services.engine) == before_db
    assert sim.stats()["token_calls"] == before_tokens
    sent = egress.sent_anywhere_but(set(), mark)
    assert not any(s in sent for s in stored_secrets(live_app, installed.member_id))


def test_wrong_application_token_is_403_before_any_upstream_call(sim, live_app, installed, egress):
    install_portal(sim, live_app, "b")
    for wrong in (secrets.token_hex(16), sim.portals["b"].application_token):
        before = sim.stats()
        mark = egress.mark()
        response = placement(sim, live_app, 101, APPLICATION_TOKEN=wrong)
        assert_designed_page(live_app, response, "not_verified", 403)
        assert sim.stats()["rest_requests"] == before["rest_requests"]
        assert sim.stats()["oauth"]["app_info"] == before["oauth"]["app_info"]
        assert egress.outbound(mark) == []  # not even a connection


def test_a_genuine_token_with_a_forged_domain_is_framed_only_by_the_verified_portal(
        sim, live_app, installed, egress, evil):
    lead = sim.sample_lead("a", "rich")
    _, form = sim.placement_request("a", user_id=1, lead_id=lead["ID"])
    mark = egress.mark()
    response = live_app.post(frame_url(live_app, "/placement", f"127.0.0.1:{evil.port}"), form)
    assert evil.requests == []
    assert egress.connected_ports(mark) <= allowed_ports(sim, "a")
    if response.status_code == 200:
        csp = response.headers["Content-Security-Policy"]
        assert f"frame-ancestors {installed.base_url};" in csp + ";"
        assert str(evil.port) not in csp
    else:  # refusing the mismatch (threats.md R4) is fine too
        assert response.status_code == 403


# --- scenario 22: IDOR through PLACEMENT_OPTIONS.ID --------------------------------------------

def test_idor_other_users_lead_uses_only_the_viewers_token(sim, live_app, installed, egress):
    private = sim.sample_lead("a", "private")  # lead 104: user 2 may not read it
    admin_secrets = stored_secrets(live_app, installed.member_id)
    url, form = sim.placement_request("a", user_id=2, lead_id=private["ID"])
    mark = egress.mark()
    response = live_app.post(url, form)
    assert_designed_page(live_app, response, "access_denied", 403)
    assert private["TITLE"] not in response.text

    to_portal = egress.sent_to(installed.port, mark)
    tokens = set(AUTH_IN_JSON.findall(to_portal))
    assert tokens == {form["AUTH_ID"].encode()}
    users = {sim.world.grants_by_access[t.decode()].user_id for t in tokens}
    assert users == {2}  # the simulator saw only user 2's token
    everything = egress.sent_anywhere_but(set(), mark)
    assert not any(s in everything for s in admin_secrets)
    # The ACL is real: the administrator reads the same lead.
    assert private["TITLE"] in placement(sim, live_app, private["ID"], user_id=1).text


# --- scenario 23: forged install ------------------------------------------------------------

def _assert_client_secret_only_to_oauth(sim, live_app, egress, mark):
    oauth = sim.world.oauth_port
    secret = live_app.services.settings.client_secret.encode()
    assert secret in egress.sent_to(oauth, mark)
    assert secret not in egress.sent_anywhere_but({oauth}, mark)


def _spend_stored_refresh(sim, live_app, member_id):
    """A genuine stored-token refresh, so client_secret really travels during the test."""
    sim.expire_access_token(live_app.store.credentials(member_id).access_token)
    result = live_app.app.test_cli_runner().invoke(args=["portals", "check"])
    assert result.exit_code == 0, result.output


@pytest.mark.parametrize("tokens", ["portal_b", "garbage"])
def test_forged_install_post_cannot_rewrite_portal_a(sim, live_app, installed, egress, evil,
                                                      tokens):
    install_portal(sim, live_app, "b")
    if tokens == "portal_b":
        issued = sim.issue_tokens("b", 1)
        auth, refresh = issued["access_token"], issued["refresh_token"]
    else:
        auth, refresh = secrets.token_hex(35), secrets.token_hex(35)
    _, form = sim.install_request("a", user_id=1)
    form.update(AUTH_ID=auth, REFRESH_ID=refresh, SERVER_ENDPOINT=f"{evil.url}/rest/",
                APPLICATION_TOKEN=secrets.token_hex(16))
    before_db = snapshot(live_app.services.engine)
    mark = egress.mark()
    response = live_app.post(frame_url(live_app, "/install", f"127.0.0.1:{evil.port}"), form)
    assert_designed_page(live_app, response, "not_verified", 403)
    assert snapshot(live_app.services.engine) == before_db
    assert evil.requests == []
    assert egress.connected_ports(mark) <= {sim.world.oauth_port}
    assert sim.stats()["portals"]["b"]["rest_methods"].get("placement.bind", 0) == 1  # B's own
    _spend_stored_refresh(sim, live_app, installed.member_id)
    _assert_client_secret_only_to_oauth(sim, live_app, egress, mark)


@pytest.mark.parametrize("variant", ["portal_b_token", "garbage_token", "b_token_a_app_token"])
def test_forged_onappinstall_cannot_rewrite_portal_a(sim, live_app, installed, egress, evil,
                                                      variant):
    install_portal(sim, live_app, "b")
    form = sim.onappinstall_form("a")
    access = (secrets.token_hex(35) if variant == "garbage_token"
              else sim.issue_tokens("b", 1)["access_token"])
    form.update({
        "auth[access_token]": access,
        "auth[refresh_token]": secrets.token_hex(35),
        "auth[client_endpoint]": f"{evil.url}/rest/",
        "auth[server_endpoint]": f"{evil.url}/rest/",
        "auth[domain]": f"127.0.0.1:{evil.port}",
        "auth[application_token]": (installed.application_token
                                    if variant == "b_token_a_app_token" else secrets.token_hex(16)),
    })
    before_db = snapshot(live_app.services.engine)
    mark = egress.mark()
    response = live_app.post("/events", form)
    if variant == "b_token_a_app_token":
        # Knows A's application_token (an insider): treated as a redelivery, nothing stored.
        assert response.status_code == 200 and response.json()["result"] == "duplicate"
    else:
        assert response.status_code == 401
        assert response.json() == {"status": "error", "error": "invalid_application_token"}
    assert snapshot(live_app.services.engine) == before_db
    assert evil.requests == []
    assert egress.connected_ports(mark) <= {sim.world.oauth_port}
    _spend_stored_refresh(sim, live_app, installed.member_id)
    _assert_client_secret_only_to_oauth(sim, live_app, egress, mark)


# --- scenario 24/25: event authenticity --------------------------------------------------------

INVALID = {"status": "error", "error": "invalid_application_token"}


@pytest.mark.parametrize("case", ["missing", "wrong", "portal_b", "unknown_member"])
def test_uninstall_event_without_a_valid_token_is_rejected(sim, live_app, installed, case):
    install_portal(sim, live_app, "b")
    form = sim.onappuninstall_form("a", clean=True)
    if case == "missing":
        form.pop("auth[application_token]")
    elif case == "wrong":
        form["auth[application_token]"] = installed.application_token[:-1] + (
            "0" if installed.application_token[-1] != "0" else "1")
    elif case == "portal_b":
        form["auth[application_token]"] = sim.portals["b"].application_token
    else:
        form["auth[member_id]"] = secrets.token_hex(16)
    before_db = snapshot(live_app.services.engine)
    before_oauth = sim.stats()["oauth"]
    response = live_app.post("/events", form)
    assert response.status_code == 401
    assert response.json() == INVALID
    assert "Set-Cookie" not in response.headers
    assert snapshot(live_app.services.engine) == before_db
    after_oauth = sim.stats()["oauth"]
    assert after_oauth["app_info"] == before_oauth["app_info"]  # rejected before any work


@pytest.mark.parametrize("clean", [False, True])
def test_genuine_uninstall_is_confirmed_then_deletes_tokens(sim, live_app, installed, clean):
    store = live_app.store
    before = sim.stats()
    assert sim.uninstall("a", clean=clean) == 200
    after = sim.stats()
    confirmations = (after["oauth"]["app_info"] - before["oauth"]["app_info"]
                     + sum(after["token_calls"].values()) - sum(before["token_calls"].values()))
    assert confirmations >= 1  # asked the OAuth server before deleting
    portal = store.get(installed.member_id)
    if clean:
        assert portal is None
    else:
        assert portal.status == UNINSTALLED and not portal.has_tokens
        assert not store.has_application_token(installed.member_id)
    assert placement(sim, live_app, 101).status_code == 403


def test_insider_uninstall_with_copied_token_keeps_the_portal(sim, live_app, installed):
    """Scenario 25: the token check passes, the OAuth server says still installed."""
    store = live_app.store
    stored = store.credentials(installed.member_id)
    response = live_app.post("/events", sim.onappuninstall_form("a", clean=True))
    assert response.status_code == 200 and response.json()["result"].startswith("kept")
    portal = store.get(installed.member_id)
    assert portal.status == ACTIVE and portal.has_tokens
    assert store.credentials(installed.member_id).refresh_token == stored.refresh_token
    lead = sim.sample_lead("a", "rich")
    assert lead["TITLE"] in placement(sim, live_app, lead["ID"]).text


# --- scenario 26: duplicates and reinstall ---------------------------------------------------

def _binds(sim):
    methods = sim.stats()["portals"]["a"]["rest_methods"]
    return methods.get("placement.bind", 0), methods.get("event.bind", 0)


def test_duplicate_onappinstall_and_reinstall(sim, live_app):
    store, engine = live_app.store, live_app.services.engine
    portal = install_portal(sim, live_app, "a")
    member_id = portal.member_id
    assert _binds(sim) == (1, 1)
    event = sim.onappinstall_form("a")
    version = store.get(member_id).token_version
    for _ in range(2):  # the same event delivered twice more
        response = live_app.post("/events", event)
        assert response.status_code == 200 and response.json()["result"] == "duplicate"
    url, form = sim.install_request("a", user_id=1)  # the admin re-runs the installer
    assert live_app.post(url, form).status_code == 200
    assert _binds(sim) == (1, 1)  # bound once per install, never duplicated
    rows = snapshot(engine)["portals"]
    assert len(rows) == 1
    assert store.get(member_id).token_version == version + 1  # the installer's fresh grant

    # Uninstall (remember the event Bitrix24 delivered), reinstall with a new application_token.
    assert sim.uninstall("a") == 200
    assert store.get(member_id).status == UNINSTALLED
    old_uninstall = sim.last_delivered_form("a", "ONAPPUNINSTALL")
    old_app_token = portal.application_token
    new_app_token = secrets.token_hex(16)
    sim.world.portal("a").application_token = new_app_token  # Bitrix24 issues a new one
    # A forged ONAPPINSTALL carrying the new token but no valid access token is not enough.
    forged = sim.onappinstall_form("a")
    forged["auth[access_token]"] = secrets.token_hex(35)
    assert live_app.post("/events", forged).status_code == 401
    assert store.get(member_id).status == UNINSTALLED
    install_portal(sim, live_app, "a")
    assert store.get(member_id).status == ACTIVE
    assert store.application_token_matches(member_id, new_app_token)
    assert not store.application_token_matches(member_id, old_app_token)
    assert len(snapshot(engine)["portals"]) == 1
    assert _binds(sim) == (2, 2)  # once for the new install

    # The old uninstall event, replayed byte for byte: a 2xx no-op (scenario 26). Its token is
    # the old one, so anything but an exact repeat of a processed event is still refused.
    before = snapshot(engine)
    replay = live_app.post("/events", old_uninstall)
    assert replay.status_code == 200 and replay.json()["result"] == "repeat"
    assert snapshot(engine) == before
    assert store.get(member_id).status == ACTIVE
    altered = dict(old_uninstall, ts=str(int(old_uninstall["ts"]) + 1))
    refused = live_app.post("/events", altered)
    assert refused.status_code == 401 and refused.json() == INVALID
    assert snapshot(engine) == before
    # Replayed with the current token (an insider): the OAuth server says installed → kept.
    current = sim.onappuninstall_form("a")
    kept = live_app.post("/events", current)
    assert kept.status_code == 200 and kept.json()["result"].startswith("kept")
    assert store.get(member_id).status == ACTIVE


# --- scenario 29: framing and cookies ------------------------------------------------------------

def _frame_ancestors(response) -> str:
    csp = response.headers["Content-Security-Policy"]
    directives = dict(d.strip().split(" ", 1) for d in csp.split(";") if " " in d.strip())
    return directives["frame-ancestors"]


def test_card_is_framed_only_by_the_verified_portal_and_nothing_sets_cookies(
        sim, live_app, installed, egress):
    mark = egress.mark()
    lead = sim.sample_lead("a", "rich")
    card = placement(sim, live_app, lead["ID"])
    assert card.status_code == 200
    assert _frame_ancestors(card) == installed.base_url
    assert card.headers["Cache-Control"] == "no-store"
    static = re.findall(r'(?:src|href)="(/static/[^"]+)"', card.text)
    assert static

    url, form = sim.install_request("a", user_id=1)
    install = live_app.post(url, form)
    assert install.status_code == 200 and _frame_ancestors(install) == installed.base_url
    app_url, app_form = sim.app_request("a", user_id=1)
    home = live_app.post(app_url, app_form)
    assert home.status_code == 200 and _frame_ancestors(home) == installed.base_url

    responses = [
        card, install, home,
        placement(sim, live_app, 987654),                       # 404 card
        placement(sim, live_app, 104, user_id=2),               # 403 card
        placement(sim, live_app, 1, PLACEMENT_OPTIONS="{"),     # 400 card
        placement(sim, live_app, 1, AUTH_ID=secrets.token_hex(35)),  # 401 card
        live_app.post("/events", sim.onappuninstall_form("a")),
        live_app.post("/events", {"event": "ONAPPUNINSTALL"}),
        live_app.get("/"), live_app.get("/healthz"), live_app.get("/nope"),
        live_app.get("/placement"),
        live_app.get(f"/reconnect?member_id={installed.member_id}"),
        live_app.get("/oauth/callback?code=x&state=y"),
        *(live_app.get(path) for path in static[:3]),
    ]
    for response in responses:
        assert "Set-Cookie" not in response.headers, response.url
        assert "X-Frame-Options" not in response.headers, response.url
        assert "frame-ancestors" in response.headers["Content-Security-Policy"], response.url
        assert_no_trace(response)
    # And on the wire, over every response the app wrote during this test.
    raw = egress.app_responses(mark)
    heads = re.findall(rb"HTTP/1\.[01] \d{3}[^\r\n]*\r\n(.*?)\r\n\r\n", raw, re.S)
    assert len(heads) >= len(responses)
    for head in heads:
        assert b"set-cookie:" not in head.lower() and b"x-frame-options:" not in head.lower()
    # Error pages before verification never name a third party as a framer of a card.
    denied = placement(sim, live_app, 104, user_id=2)
    assert _frame_ancestors(denied) in (installed.base_url, "'none'")


def test_the_app_has_no_session_to_read_or_write(live_app):
    """No Flask session (the app sets no Flask SECRET_KEY): a forged session cookie is never
    read, and code that tried to store something in the session would fail loudly instead
    of setting a cookie."""
    import flask

    with live_app.app.test_request_context(
            "/", headers={"Cookie": "session=eyJ1c2VyIjoiYWRtaW4ifQ.forged.sig"}):
        live_app.app.preprocess_request()
        assert dict(flask.session) == {}
        with pytest.raises(RuntimeError, match="no secret key"):
            flask.session["user"] = "admin"


# --- insiders: every portal user sees their own AUTH_ID in the frame POST ---------------------

@pytest.mark.parametrize("with_refresh", [True, False])
def test_non_admin_onappinstall_cannot_replace_grant_or_application_token(
        sim, live_app, installed, with_refresh):
    """A sales rep replays ONAPPINSTALL with their own (genuine) AUTH_ID and a token of their
    choosing: the OAuth server vouches for the token, but it is not an administrator's."""
    _, frame = sim.placement_request("a", user_id=2, lead_id=101)
    form = sim.onappinstall_form("a")
    chosen = secrets.token_hex(16)
    form.update({"auth[access_token]": frame["AUTH_ID"], "auth[application_token]": chosen})
    if with_refresh:
        form["auth[refresh_token]"] = frame["REFRESH_ID"]
    else:
        form.pop("auth[refresh_token]", None)
    before_db = snapshot(live_app.services.engine)
    response = live_app.post("/events", form)
    assert response.status_code == 401 and response.json() == INVALID
    assert snapshot(live_app.services.engine) == before_db
    assert live_app.store.application_token_matches(installed.member_id,
                                                    installed.application_token)
    assert not live_app.store.application_token_matches(installed.member_id, chosen)


def test_non_admin_install_post_cannot_replace_the_stored_grant(sim, live_app, installed):
    url, form = sim.install_request("a", user_id=1)
    _, frame = sim.placement_request("a", user_id=2, lead_id=101)
    form.update(AUTH_ID=frame["AUTH_ID"], REFRESH_ID=frame["REFRESH_ID"])
    before_db = snapshot(live_app.services.engine)
    response = live_app.post(url, form)
    assert_designed_page(live_app, response, "not_admin", 403)
    assert snapshot(live_app.services.engine) == before_db
    assert live_app.store.get(installed.member_id).installed_by == 1


def test_a_sales_rep_cannot_reconnect_with_their_own_grant(sim, live_app, installed, egress):
    """Issue 10 defect 8: anyone may open /reconnect and any portal user may authorize the
    app; the code's grant is stored only when it is an administrator's."""
    import requests

    store = live_app.store
    before_db = snapshot(live_app.services.engine)
    before = store.credentials(installed.member_id)
    start = live_app.get(f"/reconnect?member_id={installed.member_id}")  # anonymous
    assert start.status_code == 302
    with egress.ignored():  # the browser at the portal's authorize page, as user 2
        authorize = requests.get(start.headers["Location"] + "&user=2", allow_redirects=False,
                                 timeout=10)
    assert authorize.status_code == 302
    done = requests.get(authorize.headers["Location"], allow_redirects=False, timeout=10)
    assert_designed_page(live_app, done, "not_admin", 403)
    assert "reconnected" not in done.text.lower()
    after = store.credentials(installed.member_id)
    assert (after.access_token, after.refresh_token, after.version) == \
        (before.access_token, before.refresh_token, before.version)
    # Nothing else changed either (the spent state row is gone, as any used state is).
    assert {k: v for k, v in snapshot(live_app.services.engine).items() if k != "oauth_states"} \
        == {k: v for k, v in before_db.items() if k != "oauth_states"}
    assert store.get(installed.member_id).status == ACTIVE


@pytest.mark.parametrize("shape", ["docs", "phpsdk"])
def test_onappinstall_for_a_portal_where_the_app_is_not_installed_is_refused(
        sim, live_app, installed, shape):
    """Issue 10 defect 10: an administrator's genuine token on a portal where the app is not
    installed (`app.info` says installed: false) must not create a portal row (the docs'
    shape carries a refresh token, which used to be stored as an active grant)."""
    assert not sim.portals["b"].installed
    sim.knobs(onappinstall_shape=shape)
    form = sim.onappinstall_form("b")
    form["auth[application_token]"] = secrets.token_hex(16)  # the caller's choice
    before_db = snapshot(live_app.services.engine)
    response = live_app.post("/events", form)
    assert response.status_code == 401 and response.json() == INVALID
    assert snapshot(live_app.services.engine) == before_db
    assert live_app.store.get(sim.portals["b"].member_id) is None


def test_only_an_admin_reseeds_a_lost_grant(sim, live_app, installed):
    store = live_app.store
    store.mark(installed.member_id, "reauth_required", "token_revoked")
    url, form = sim.app_request("a", user_id=2)
    response = live_app.post(url, form)
    assert response.status_code == 200  # the status page, without re-seeding
    assert store.get(installed.member_id).status == "reauth_required"
    assert store.credentials(installed.member_id).refresh_token != form["REFRESH_ID"]
    url, form = sim.app_request("a", user_id=1)
    assert live_app.post(url, form).status_code == 200
    assert store.get(installed.member_id).status == ACTIVE
    assert store.credentials(installed.member_id).refresh_token == form["REFRESH_ID"]


def test_insider_uninstall_while_the_stored_access_token_has_expired(sim, live_app, installed):
    """Scenario 25 when the stored access token is past its life at Bitrix24 (but not by our
    clock): `expired_token` from the OAuth server is not "uninstalled" — renew, then ask."""
    store = live_app.store
    sim.expire_access_token(store.credentials(installed.member_id).access_token)
    response = live_app.post("/events", sim.onappuninstall_form("a", clean=True))
    assert response.status_code == 200 and response.json()["result"].startswith("kept")
    portal = store.get(installed.member_id)
    assert portal is not None and portal.status == ACTIVE and portal.has_tokens
    lead = sim.sample_lead("a", "rich")
    assert lead["TITLE"] in placement(sim, live_app, lead["ID"]).text


# --- cheap, unmetered abuse (issue 10 defect 11) ----------------------------------------------

def _app_info_calls(sim) -> int:
    return int(sim.stats()["oauth"]["app_info"])


def test_a_flood_of_insider_uninstall_events_is_metered(sim, live_app, installed):
    """Every portal user can read the application_token: 50 ONAPPUNINSTALL events carrying it
    made 50 app.info calls. Now a few per portal are confirmed, the rest refused at once."""
    before = _app_info_calls(sim)
    answers = [live_app.post("/events", sim.onappuninstall_form("a", clean=bool(i % 2)))
               for i in range(50)]
    statuses = [a.status_code for a in answers]
    assert statuses.count(429) >= 45, statuses
    refused = [a for a in answers if a.status_code == 429]
    assert all(a.json() == {"status": "error", "error": "too_many_attempts"} for a in refused)
    assert all(int(a.headers["Retry-After"]) >= 1 for a in refused)
    assert _app_info_calls(sim) - before <= 3  # the per-portal allowance, not one per event
    portal = live_app.store.get(installed.member_id)
    assert portal.status == ACTIVE and portal.has_tokens  # the forgeries changed nothing


def test_anonymous_reconnects_are_metered_and_store_few_rows(sim, live_app, installed):
    """300 anonymous GET /reconnect stored 300 state rows in 2.2 s."""
    import sqlalchemy as sa

    answers = [live_app.get(f"/reconnect?member_id={installed.member_id}") for _ in range(300)]
    assert sum(a.status_code == 302 for a in answers) <= 5  # one client's allowance
    refused = [a for a in answers if a.status_code == 429]
    assert len(refused) >= 295
    assert_designed_page(live_app, refused[-1], "too_many_attempts", 429)
    assert int(refused[-1].headers["Retry-After"]) >= 1
    count = sa.text("SELECT count(*) FROM oauth_states")
    with live_app.services.engine.connect() as conn:
        assert conn.execute(count).scalar_one() <= 5
    # Expired states are removed when any callback comes, not only when a new one is made.
    with live_app.services.engine.begin() as conn:
        conn.execute(sa.text("UPDATE oauth_states SET created_at = created_at - 3600"))
    live_app.get(f"/oauth/callback?code=x&state=y&member_id={installed.member_id}")
    with live_app.services.engine.connect() as conn:
        assert conn.execute(count).scalar_one() == 0


@pytest.mark.parametrize("app_overrides", [{}, {"PROXY_HOPS": "1"}], ids=["direct", "behind-proxy"])
def test_per_client_allowance_follows_the_trusted_proxy_only(sim, live_app, installed,
                                                             app_overrides):
    """Behind the shipped front (PROXY_HOPS=1) each client address has its own allowance;
    reached directly, a made-up X-Forwarded-For does not buy a new one."""
    import requests

    url = f"{live_app.url}/reconnect?member_id={installed.member_id}"

    def reconnect(address: str) -> int:
        return requests.get(url, headers={"X-Forwarded-For": address}, allow_redirects=False,
                            timeout=10).status_code

    first = [reconnect("198.51.100.1") for _ in range(6)]
    assert first[:5] == [302] * 5 and first[5] == 429
    other = reconnect("198.51.100.2")
    assert other == (302 if app_overrides else 429)
