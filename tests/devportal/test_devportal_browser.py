"""Browser check of the parent-side frame protocol (skipped without Playwright + Chromium).

The fake app's frame page runs the official @bitrix24/b24jssdk UMD bundle when the
repo vendors one (or B24JSSDK_UMD points at it), else a minimal client speaking the
same wire format.  Either way the simulator's lead page must answer getInitData,
refreshAuth, resizeWindow, setTitle, openPath, unknown commands and, on the
marketplace page, setInstallFinish.
"""

from __future__ import annotations

import os
import shutil

import pytest

sync_api = pytest.importorskip("playwright.sync_api")

CHROMIUM = os.environ.get("CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture(scope="module")
def browser():
    try:
        pw = sync_api.sync_playwright().start()
    except Exception as exc:  # pragma: no cover - environment dependent
        pytest.skip(f"playwright unavailable: {exc}")
    try:
        kwargs = {"executable_path": CHROMIUM} if CHROMIUM else {}
        b = pw.chromium.launch(args=["--no-sandbox"], **kwargs)
    except Exception as exc:  # pragma: no cover
        pw.stop()
        pytest.skip(f"no chromium: {exc}")
    yield b
    b.close()
    pw.stop()


@pytest.fixture(params=["minimal", "sdk"])
def client_mode(request, fake_app):
    if request.param == "sdk" and fake_app.sdk_path is None:
        pytest.skip("no vendored @bitrix24/b24jssdk bundle (set B24JSSDK_UMD)")
    fake_app.use_sdk = request.param == "sdk"
    yield request.param
    fake_app.use_sdk = False


def _frame(page, timeout=8000):
    page.wait_for_selector("iframe.app-frame", timeout=timeout)
    handle = page.query_selector("iframe.app-frame")
    frame = handle.content_frame()
    frame.wait_for_function("window.ready === true || window.failed", timeout=timeout)
    return frame


def test_lead_tab_frame_protocol(sim, fake_app, browser, client_mode):
    sim.bind_placement("a", handler=fake_app.url + "/placement", title="Lead Card")
    page = browser.new_page()
    try:
        page.goto(sim.portals["a"].lead_url(101, user_id=2, lang="en", tab="app"))
        frame = _frame(page)
        assert frame.evaluate("window.failed || null") is None
        init = frame.evaluate("window.initDone")
        assert init["placement"] == "CRM_LEAD_DETAIL_TAB" and init["options"] == {"ID": "101"}
        assert init["isAdmin"] is False and init["install"] is False
        assert frame.evaluate("window.leadTitle") == "Website enquiry: fleet telematics for 40 vans"
        refreshed = frame.evaluate("window.refreshed")
        # SDK: getAuthData() after refresh; minimal client: the raw reply
        new_token = refreshed.get("access_token") or refreshed.get("AUTH_ID")
        assert new_token and new_token != init["auth"]["access_token"]
        assert sim.world.check_access(new_token, "a").user_id == 2
        host = page.evaluate("({resizes: DevPortal.resizes, titles: DevPortal.titles, paths: DevPortal.paths,"
                             " commands: DevPortal.messages.map(m => m.command)})")
        assert host["resizes"][-1]["height"] == 321
        assert page.get_attribute("iframe.app-frame", "data-height") == "321"
        assert host["titles"] == ["Lead Card <b>test</b>"]
        assert page.inner_text("[data-app-title]") == "Lead Card <b>test</b>"   # text, not markup
        assert host["paths"][0].startswith("/crm/lead/details/102/")
        assert {"getInitData", "setTitle", "resizeWindow", "refreshAuth", "someUnknownCommand", "openPath"} \
            <= set(host["commands"])
        assert frame.evaluate("window.unknown") in ("", None)
        page.wait_for_selector(".slider-overlay:not([hidden])")
        assert frame.evaluate("window.openPathDone") is False
        page.click(".slider-close")
        frame.wait_for_function("window.openPathDone !== false")
        events = [e["command"] for e in sim.stats()["frame_events"]]
        assert "resizeWindow" in events and "setTitle" in events
    finally:
        page.close()


def test_reload_data_and_phone_commands_reach_the_host(sim, fake_app, browser, client_mode):
    sim.bind_placement("a", handler=fake_app.url + "/placement", title="Lead Card")
    page = browser.new_page()
    try:
        page.goto(sim.portals["a"].lead_url(101, user_id=2, lang="en", tab="app"))
        frame = _frame(page)
        assert page.evaluate("window.__simReloads") == 0
        assert page.inner_text("[data-sim=reload-count]") == "0"
        if client_mode == "sdk":
            frame.evaluate("$b24.placement.call('reloadData')")
            frame.evaluate("$b24.placement.call('reloadData')")
            frame.evaluate("$b24.parent.imPhoneTo('+44 20 7946 0999')")
        else:
            frame.evaluate("B24Mini.send('reloadData')")
            frame.evaluate("B24Mini.send('reloadData')")
            frame.evaluate("B24Mini.send('imPhoneTo', {phone: '+44 20 7946 0999'})")
        page.wait_for_function("window.__simReloads === 2 && window.__simCalls.length === 1")
        assert page.inner_text("[data-sim=reload-count]") == "2"
        call = page.evaluate("window.__simCalls[0]")
        assert call["command"] == "imPhoneTo" and call["phone"] == "+44 20 7946 0999"
    finally:
        page.close()


def test_marketplace_install_flow(sim, fake_app, browser, client_mode):
    page = browser.new_page()
    try:
        page.goto(sim.portals["a"].base_url + "/marketplace/app/?user=1&lang=en")
        page.click("[data-action=install]")
        page.wait_for_function("window.DevPortal.installFinished === true", timeout=8000)
        assert sim.portals["a"].installed
        [ev] = fake_app.events("ONAPPINSTALL")
        assert ev["form"]["auth[member_id]"] == sim.portals["a"].member_id
        frames = [r for r in fake_app.received if r["kind"] == "frame"]
        assert frames[0]["path"] == "/install" and frames[0]["form"]["PLACEMENT"] == "DEFAULT"
        # after installFinish the frame is reloaded into the app's main page
        assert page.get_attribute("#market-frame", "data-install-finished") == "Y"
        assert page.get_attribute("#install-state", "data-installed") == "Y"
        for _ in range(40):
            main = [r for r in fake_app.received if r["kind"] == "frame" and r["path"] == "/"]
            if main:
                break
            page.wait_for_timeout(50)
        assert main and main[0]["form"]["PLACEMENT"] == "DEFAULT"
        assert main[0]["args"]["APP_SID"] != frames[0]["args"]["APP_SID"]
    finally:
        page.close()
