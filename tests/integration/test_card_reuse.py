"""A rendered card is reused only while everything it shows is unchanged (leadcard/card/rendered.py).

Real HTTP between the app and the in-process simulator; the lead is changed in the simulator
the way a user editing it in Bitrix24 would change it.
"""

from __future__ import annotations

import re

NONCE = re.compile(r'nonce="([^"]+)"')


def view(sim, live, lead_id, user_id=1, lang="en"):
    url, form = sim.placement_request("a", user_id=user_id, lead_id=lead_id, lang=lang)
    return live.post(url, form)


def nonces(response):
    in_page = set(NONCE.findall(response.text))
    in_header = re.search(r"'nonce-([^']+)'", response.headers["Content-Security-Policy"])
    return in_page, in_header.group(1) if in_header else None


def test_unchanged_lead_reuses_the_page_with_its_own_nonce(sim, live_app, installed):
    store = live_app.services.rendered
    lead = sim.sample_lead("a", "rich")
    first = view(sim, live_app, lead["ID"])
    hits = store.hits
    second = view(sim, live_app, lead["ID"])
    assert first.status_code == second.status_code == 200
    assert store.hits == hits + 1
    (page1, header1), (page2, header2) = nonces(first), nonces(second)
    # Every script/style of each response carries that response's nonce, named in its CSP.
    assert page1 == {header1} and page2 == {header2} and header1 != header2
    assert "lc-nonce-" not in second.text
    assert NONCE.sub("", first.text) == NONCE.sub("", second.text)


def test_an_edited_lead_is_rendered_again(sim, live_app, installed):
    store = live_app.services.rendered
    lead = sim.sample_lead("a", "rich")
    assert lead["TITLE"] in view(sim, live_app, lead["ID"]).text
    misses = store.misses
    sim.edit_lead("a", int(lead["ID"]), {"TITLE": "Fleet telematics — 60 vans now"})
    response = view(sim, live_app, lead["ID"])
    assert "Fleet telematics — 60 vans now" in response.text
    assert lead["TITLE"] not in response.text
    assert store.misses == misses + 1


def test_another_language_gets_its_own_page(sim, live_app, installed):
    lead = sim.sample_lead("a", "minimal")
    english = view(sim, live_app, lead["ID"], lang="en")
    german = view(sim, live_app, lead["ID"], lang="de")
    assert '<html lang="en" dir="ltr">' in english.text and '<html lang="de" dir="ltr">' in german.text


def test_rights_are_checked_on_every_view_even_with_a_stored_page(sim, live_app, installed):
    lead = sim.sample_lead("a", "private")  # readable by the admin (1), not by user 2
    assert view(sim, live_app, lead["ID"], user_id=1).status_code == 200
    assert view(sim, live_app, lead["ID"], user_id=1).status_code == 200  # now stored
    denied = view(sim, live_app, lead["ID"], user_id=2)
    assert denied.status_code == 403 and lead["TITLE"] not in denied.text
