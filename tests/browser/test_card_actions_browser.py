"""Acting from the card in the simulated lead page, in Chromium (issue 13).

Each action clicked (and typed) as a salesperson would, at 1280 and 360 px: the card updates in
place, the host is asked to `reloadData`, one write reaches Bitrix24, and the frame keeps
fitting its content. Bitrix24's own refusal is shown in its words; a token that expired while
the tab was open is renewed through the frame library and the action goes through once.
"""

from __future__ import annotations

import pytest

from tests.browser.browser_helpers import frame_metrics, poll, wait_app_frame, wait_fitted

RICH = 101


@pytest.fixture(autouse=True)
def _fresh_sample(sim, installed):
    sim.reset(context=True)  # every test starts from the sample leads, no writes logged
    yield


def _open(page, portal, width: int, lead_id: int = RICH, user_id: int = 1):
    url = portal.lead_url(lead_id, user_id=user_id, lang="en", tab="app")
    page.goto(url + ("&IFRAME=Y&IFRAME_TYPE=SIDE_SLIDER" if width < 700 else ""))
    return wait_app_frame(page)


def _notice(frame) -> str:
    return poll(frame, "(() => { const n = document.querySelector('[data-lc-status]');"
                " return n && !n.hidden && !n.classList.contains('lc-notice--busy')"
                " && n.textContent.trim(); })()")


def _reloads(page) -> int:
    return page.evaluate("window.__simReloads || 0")


@pytest.mark.parametrize("width", [360, 1280])
def test_comment_by_keyboard_updates_the_card_and_reloads_the_host(sim, installed, make_page,
                                                                    watch, width):
    page = make_page(width=width, height=900)
    locator, frame = _open(page, installed, width)
    box = locator.locator("#lc-comment-text")
    box.scroll_into_view_if_needed()
    box.focus()
    page.keyboard.type("Agreed on a pilot with 5 vans")
    page.keyboard.press("Tab")  # to the button, then Enter: no mouse needed
    assert frame.evaluate("document.activeElement.type") == "submit"
    page.keyboard.press("Enter")
    assert _notice(frame) == "Comment added."
    comments = locator.locator(".lc-ctx--history .lc-comment__text")
    assert "Agreed on a pilot with 5 vans" in comments.all_inner_texts()
    poll(frame, "true")
    page.wait_for_function("() => (window.__simReloads || 0) >= 1")
    assert [w["params"]["fields"]["COMMENT"] for w in sim.writes(portal="a")] == [
        "Agreed on a pilot with 5 vans"]
    m = wait_fitted(page, frame)
    assert m["scrollWidth"] <= m["clientWidth"], m
    watch.assert_clean()


def test_plan_a_todo_and_mark_one_done(sim, installed, page, watch):
    locator, frame = _open(page, installed, 1280)
    plan = locator.locator("[data-lc-plan] summary")
    plan.click()
    locator.locator("#lc-todo-title").fill("Send the contract draft")
    locator.locator("#lc-todo-deadline").fill("2031-03-04T10:00")
    locator.locator("[data-lc-form=todo] button[type=submit]").click()
    assert _notice(frame) == "To-do planned."
    subjects = locator.locator(".lc-ctx--next .lc-act__subject").all_inner_texts()
    assert "Send the contract draft" in subjects
    [todo] = sim.writes(portal="a", method="crm.activity.todo.add")
    assert todo["params"]["deadline"].startswith("2031-03-04T10:00:00")  # with the browser's offset

    before = locator.locator(".lc-ctx--next [data-lc-done]").count()
    first = locator.locator(".lc-ctx--next [data-lc-done]").first
    done_id = first.get_attribute("data-lc-done")
    first.click()
    assert _notice(frame) == "To-do marked as done."
    assert locator.locator(f'.lc-ctx--next [data-lc-done="{done_id}"]').count() == 0
    assert locator.locator(".lc-ctx--next [data-lc-done]").count() == before - 1
    assert _reloads(page) >= 2
    watch.assert_clean()


def test_move_the_stage_and_see_bitrix24s_refusal(sim, installed, page, watch):
    locator, frame = _open(page, installed, 1280)
    locator.locator("#lc-stage-select").select_option("NEW")
    locator.locator("[data-lc-form=stage] button[type=submit]").click()
    assert _notice(frame) == "Stage changed."
    assert locator.locator(".lc-stage").inner_text().strip().endswith("Unassigned")
    # The new stage's colour is applied without an inline <style> (CSP).
    assert frame.evaluate("getComputedStyle(document.querySelector('.lc-stage'))"
                          ".getPropertyValue('--lc-stage-bg').trim().toLowerCase()") == "#39a8ef"
    locator.locator("#lc-stage-select").select_option("PROCESSED")
    locator.locator("[data-lc-form=stage] button[type=submit]").click()
    error = locator.locator("#lc-stage-error")
    error.wait_for(state="visible")
    assert 'The field "Decision maker" is required.' in error.inner_text()
    assert len(sim.writes(portal="a", method="crm.lead.update")) == 1
    watch.assert_clean(allow_status=((422, "/actions"),))


def test_an_expired_frame_token_is_renewed_and_the_comment_written_once(sim, installed, page,
                                                                         watch):
    locator, frame = _open(page, installed, 1280)
    token = frame.evaluate("window.LeadCard.frame().auth.getAuthData().access_token")
    sim.expire_access_token(token)  # the tab was left open past AUTH_EXPIRES
    locator.locator("#lc-comment-text").fill("Back from lunch")
    locator.locator("[data-lc-form=comment] button[type=submit]").click()
    assert _notice(frame) == "Comment added."
    assert len(sim.writes(portal="a", method="crm.timeline.comment.add")) == 1
    # The 401 for the expired token is the designed answer the page handles, not a failure.
    watch.assert_clean(allow_status=((401, "/actions"),))


def test_an_empty_comment_is_refused_in_place_without_a_request(sim, installed, page, watch):
    locator, frame = _open(page, installed, 1280)
    before = sim.stats()["rest_requests"]
    locator.locator("[data-lc-form=comment] button[type=submit]").click()
    error = locator.locator("#lc-comment-error")
    error.wait_for(state="visible")
    assert error.inner_text() == "Write a comment first."
    assert sim.stats()["rest_requests"] == before and sim.writes(portal="a") == []
    m = frame_metrics(frame)
    assert m["scrollWidth"] <= m["clientWidth"], m
    watch.assert_clean(allow_status=((400, "/actions"),))


def test_a_phone_number_calls_through_the_portals_telephony(sim, installed, page, watch):
    locator, frame = _open(page, installed, 1280)
    before = frame.url
    phone = locator.locator(".lc-value--phone a[href^='tel:']").first
    number = phone.inner_text().strip()
    phone.click()
    page.wait_for_function("() => (window.__simCalls || []).length >= 1")
    calls = page.evaluate("window.__simCalls")
    assert calls[-1]["command"] == "imPhoneTo" and calls[-1]["phone"].replace(" ", "") == \
        number.replace(" ", "")
    assert frame.url == before  # the frame did not navigate to tel:
    watch.assert_clean()


def test_the_form_is_disabled_while_sending(sim, installed, page, watch):
    locator, frame = _open(page, installed, 1280)
    sim.knobs(latency=1.0)  # Bitrix24 takes its time
    try:
        locator.locator("#lc-comment-text").fill("Slow network today")
        locator.locator("[data-lc-form=comment] button[type=submit]").click()
        poll(frame, "document.querySelector('[data-lc-form=comment] button').disabled")
        assert frame.evaluate("document.querySelector('[data-lc-form=comment]')"
                              ".getAttribute('aria-busy')") == "true"
        assert _notice(frame) == "Comment added."
        assert not frame.evaluate("document.querySelector('[data-lc-form=comment] button').disabled")
    finally:
        sim.knobs(latency=0.0)
    assert len(sim.writes(portal="a")) == 1
    watch.assert_clean()
