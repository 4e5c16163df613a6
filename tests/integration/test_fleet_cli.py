"""`portals check|renew|show` over a fleet: 150 generated portals behind the fleet simulator
(devtools/devportal/fleet.py), real HTTP on loopback, faults on some of them."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from devtools.devportal.fleet import Fleet
from devtools.harness import app_settings, process_env, sqlite_url
from devtools.harness.settings import ROOT

PORTALS = 150
FAULTS = {3: "revoked", 40: "not_installed", 77: "down", 120: "limit"}
CODES = {3: "token_revoked", 40: "app_not_installed", 77: "portal_error"}


@pytest.fixture
def fleet():
    with Fleet(PORTALS, latency=0.01) as f:
        yield f


@pytest.fixture
def settings(fleet, tmp_path):
    return app_settings(app_url="http://127.0.0.1:9", oauth_url=fleet.url,
                        database_url=sqlite_url(tmp_path), instance_path=tmp_path / "instance",
                        B24_CLIENT_ID=fleet.client_id, B24_CLIENT_SECRET=fleet.client_secret)


@pytest.fixture
def app(fleet, settings):
    from app import create_app

    app = create_app(dict(settings))
    svc = app.extensions["leadcard"]
    fleet.seed(svc.store)
    for n, kind in FAULTS.items():
        fleet.fault(n, kind)
    yield app
    svc.engine.dispose()


def test_check_plain_lines_summary_and_exit_code(fleet, app):
    result = app.test_cli_runner().invoke(args=["portals", "check", "--concurrency", "16"])
    assert result.exit_code == 1, result.output
    fails = sorted(line for line in result.output.splitlines() if line.startswith("FAIL "))
    assert fails == sorted(f"FAIL {fleet.member_id(n)} {app.extensions['leadcard'].store.get(fleet.member_id(n)).domain}: {code}"
                           for n, code in CODES.items())
    assert result.output.count("ok   ") == PORTALS - 3  # the rate-limited one was retried after the pause
    assert f"{PORTALS} portal(s): failed 3, ok {PORTALS - 3}" in result.output
    assert "by error code:" in result.output and "token_revoked 1" in result.output
    store = app.extensions["leadcard"].store
    assert store.get(fleet.member_id(3)).last_error == "token_revoked"
    assert store.get(fleet.member_id(40)).last_error == "app_not_installed"


def test_check_json_in_a_real_process(fleet, app, settings):
    """The command as an operator runs it: its own process, stdout is the JSON only."""
    done = subprocess.run(
        [sys.executable, "-m", "flask", "--app", "app", "portals", "check", "--json",
         "--concurrency", "32"],
        cwd=ROOT, env=process_env(settings), capture_output=True, text=True, timeout=120)
    assert done.returncode == 1, done.stderr[-2000:]
    body = json.loads(done.stdout)
    assert body["total"] == PORTALS and body["outcomes"] == {"ok": PORTALS - 3, "failed": 3}
    assert body["error_codes"] == {"token_revoked": 1, "app_not_installed": 1, "portal_error": 1}
    assert {f["member_id"]: f["code"] for f in body["failures"]} == {
        fleet.member_id(n): code for n, code in CODES.items()}
    assert body["concurrency"] == 20  # the database pool's 10 + 10 caps the 32 asked for
    assert "capped at 20" in done.stderr
    assert "FAIL " in done.stderr  # the failures are told on stderr, beside the JSON


def test_renew_then_check_heals(fleet, app):
    runner = app.test_cli_runner()
    for n in FAULTS:
        fleet.fault(n, None)
    before = fleet.counters["refreshes"]
    result = runner.invoke(args=["portals", "renew", "--older-than", "0", "--concurrency", "8"])
    assert result.exit_code == 0, result.output
    assert f"{PORTALS} renewed, 0 failed" in result.output
    assert fleet.counters["refreshes"] == before + PORTALS
    assert runner.invoke(args=["portals", "check"]).exit_code == 0


def test_show_a_failing_portal(fleet, app):
    runner = app.test_cli_runner()
    runner.invoke(args=["portals", "check"])
    result = runner.invoke(args=["portals", "show", fleet.member_id(3), "--json"])
    assert result.exit_code == 0, result.output
    body = json.loads(result.output)
    assert body["last_error"] == "token_revoked"
    # expired_token, then the refresh is refused: one call, one renewal, both errors.
    assert body["calls_last_24h"]["app.info"] == {"calls": 1, "errors": 1}
    assert body["calls_last_24h"]["oauth.refresh_token"]["errors"] == 1
    text = runner.invoke(args=["portals", "show", fleet.member_id(5)]).output
    assert "status:" in text and "app.info" in text
    result = runner.invoke(args=["portals", "show", "nobody"])
    assert result.exit_code == 2 and "no portal 'nobody'" in result.output
