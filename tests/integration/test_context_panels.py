"""The lead's context panels over real HTTP: the app, the simulator, the viewer's own token.

Each panel against the simulator's sample data (devtools/devportal/context_data.py), each right
(user 1 admin, user 2 a sales rep who reads only what is his or opened), each failure (one
panel's method denied or failing: the fields and every other panel still render, 200), and
freshness (an activity added at the portal shows on the next view, still one request).
"""

from __future__ import annotations

import re

import pytest
from bs4 import BeautifulSoup

RICH, CONVERTED, MINIMAL = 101, 106, 102


def view(sim, live, lead_id, user_id=1, lang="en"):
    url, form = sim.placement_request("a", user_id=user_id, lead_id=lead_id, lang=lang)
    response = live.post(url, form)
    assert response.status_code == 200, response.text[:300]
    return BeautifulSoup(response.text, "html.parser")


def panel(page, key):
    found = page.select_one(f".lc-ctx--{key}")
    assert found is not None, f"panel {key} missing"
    return found


def words(node):
    return re.sub(r"\s+", " ", node.get_text(" ")).strip()


def rest_requests(sim):
    return sim.stats()["rest_requests"]


def test_next_steps_soonest_first_overdue_marked_with_names(sim, live_app, installed):
    page = view(sim, live_app, RICH)
    items = panel(page, "next").select(".lc-act")
    assert [words(i.select_one(".lc-act__subject")) for i in items] == [
        "Send the pricing for 40 vans and 6 trailers", "Call back about trailer tracking"]
    assert "lc-act--overdue" in items[0]["class"] and "Overdue" in words(items[0])
    assert "lc-act--overdue" not in items[1]["class"]
    assert "ago" in words(items[0]) and "in 2 days" in words(items[1])
    assert "Ben Ortiz" in words(items[0])  # the responsible user's name, not an id
    assert words(items[1].select_one(".lc-act__kind")) == "Outgoing call"


def test_nothing_planned(sim, live_app, installed):
    page = view(sim, live_app, MINIMAL)
    assert "Nothing planned" in words(panel(page, "next"))
    assert "No calls, e-mails" in words(panel(page, "history"))
    assert "No products" in words(panel(page, "products"))
    assert page.select_one(".lc-ctx--came") is None  # not converted


def test_history_last_five_activities_and_three_comments_as_text(sim, live_app, installed):
    page = view(sim, live_app, RICH)
    history = panel(page, "history")
    acts = history.select(".lc-ctx__list--done .lc-act")
    assert len(acts) == 5
    kinds = [words(a.select_one(".lc-act__kind")) for a in acts]
    # newest first: e-mail out (2 d), meeting (3 d), e-mail in (4 d), call out (5 d), call in (6 d)
    assert kinds == ["Outgoing e-mail", "Meeting", "Incoming e-mail", "Outgoing call", "Incoming call"]
    comments = history.select(".lc-comment")
    assert len(comments) == 3
    assert words(comments[0].select_one(".lc-comment__text")).startswith("Asked legal")
    hostile = str(history)
    assert "<script" not in hostile and "onmouseover" not in hostile and "javascript:" not in hostile
    assert "5 vans" in words(history)  # the hostile comment's text survives as text


def test_duplicates_admin_sees_all_named(sim, live_app, installed):
    dups = panel(view(sim, live_app, RICH, user_id=1), "duplicates")
    paths = {a["data-b24-path"] for a in dups.select("a[data-b24-path]")}
    assert paths == {"/crm/lead/details/108/", "/crm/lead/details/109/",
                     "/crm/contact/details/15/", "/crm/contact/details/16/",
                     "/crm/company/details/21/"}
    assert "/crm/lead/details/101/" not in paths  # the lead itself is no duplicate
    assert dups.select_one(".lc-ctx__hidden") is None


def test_duplicates_sales_rep_sees_fewer_and_a_count(sim, live_app, installed):
    dups = panel(view(sim, live_app, RICH, user_id=2), "duplicates")
    paths = {a["data-b24-path"] for a in dups.select("a[data-b24-path]")}
    assert paths == {"/crm/lead/details/109/", "/crm/contact/details/15/",
                     "/crm/company/details/21/"}
    assert words(dups.select_one(".lc-ctx__hidden")) == "2 more you cannot open"
    assert "Trade fair" not in words(dups) and "private" not in words(dups)


def test_products_in_the_leads_currency(sim, live_app, installed):
    products = panel(view(sim, live_app, RICH), "products")
    rows = products.select("tbody tr")
    assert [words(r.select_one("th")) for r in rows] == [
        "Telematics unit T-40", "Installation per vehicle", "Fleet dashboard licence (annual)"]
    first = [words(td) for td in rows[0].select("td")]
    assert first == ["40 pcs", "€890.00", "€35,600.00"]
    assert words(products.select_one("tfoot td")) == "€46,970.00"  # 35,600 + 5,520 + 5,850


def test_what_came_of_a_converted_lead_per_right(sim, live_app, installed):
    admin = panel(view(sim, live_app, CONVERTED, user_id=1), "came")
    assert {a["data-b24-path"] for a in admin.select("a[data-b24-path]")} == {
        "/crm/deal/details/301/", "/crm/deal/details/302/", "/crm/contact/details/22/",
        "/crm/company/details/23/"}
    rep = panel(view(sim, live_app, CONVERTED, user_id=2), "came")
    assert {a["data-b24-path"] for a in rep.select("a[data-b24-path]")} == {
        "/crm/deal/details/301/", "/crm/contact/details/22/", "/crm/company/details/23/"}
    assert "Cold chain monitoring: 12 reefer trucks" in words(rep)


def test_time_facts_in_the_header(sim, live_app, installed):
    page = view(sim, live_app, RICH, lang="de")
    facts = [words(f) for f in page.select(".lc-header .lc-fact")]
    assert len(facts) == 3, facts
    assert all(re.search(r"\d", f) for f in facts), facts


@pytest.mark.parametrize(("method", "key", "message"), [
    ("crm.activity.list", "next", "access rights do not let you"),
    ("crm.timeline.comment.list", "history", "access rights do not let you"),
    ("crm.duplicate.findbycomm", "duplicates", "access rights do not let you"),
    ("crm.item.productrow.list", "products", "access rights do not let you"),
])
def test_one_panel_denied_the_rest_renders(sim, live_app, installed, method, key, message):
    sim.inject_error("a", method, "ACCESS_DENIED", status=403)
    page = view(sim, live_app, RICH)
    assert message in words(panel(page, key))
    assert page.select_one(".lc-header__title") is not None
    assert page.select_one(".lc-section--contact") is not None  # the fields
    others = {"next", "history", "duplicates", "products"} - {key}
    for other in others:
        assert "access rights do not let you" not in words(panel(page, other)), other


def test_one_panel_failing_says_so(sim, live_app, installed):
    sim.inject_error("a", "crm.item.productrow.list", "INTERNAL_SERVER_ERROR", status=500)
    page = view(sim, live_app, RICH)
    assert "did not answer" in words(panel(page, "products"))
    assert len(panel(page, "next").select(".lc-act")) == 2


def test_an_activity_added_at_the_portal_shows_on_the_next_view(sim, live_app, installed):
    view(sim, live_app, RICH)
    view(sim, live_app, RICH)  # warm
    sim.add_activity("a", RICH, "Send the contract draft", deadline_in=3600, responsible=1)
    before = rest_requests(sim)
    page = view(sim, live_app, RICH)
    assert rest_requests(sim) - before == 1  # still one request (Ada's name is cached)
    subjects = [words(s) for s in panel(page, "next").select(".lc-act__subject")]
    assert "Send the contract draft" in subjects
    sim.add_comment("a", RICH, "Signed [B]today[/B]")
    page = view(sim, live_app, RICH)
    assert words(panel(page, "history").select_one(".lc-comment__text")) == "Signed today"


def test_a_lead_without_phone_or_email_has_no_duplicates_not_a_failure(sim, live_app, installed):
    dups = panel(view(sim, live_app, MINIMAL), "duplicates")
    assert "No other lead" in words(dups)
    assert dups.select_one(".lc-ctx__state") is None


def test_a_new_responsible_costs_no_second_request(sim, live_app, installed):
    view(sim, live_app, RICH)
    # User 19 is one user.get never returns (a system user): asked in the batch, not again.
    sim.add_activity("a", RICH, "Hand over to the import team", deadline_in=7200, responsible=19)
    for _ in range(2):
        before = rest_requests(sim)
        page = view(sim, live_app, RICH)
        assert rest_requests(sim) - before == 1
    assert "User #19" in words(panel(page, "next"))
