"""LOG_FORMAT=json (issue 14): one JSON object per line, and one summary line per request with
its request id, member_id (never a token), route, method, status and duration."""

from __future__ import annotations

import io
import json
import logging

import pytest

from devtools.harness import serve_app
from leadcard.core import logs
from tests.integration.harness import app_settings


@pytest.fixture
def json_app(sim, app_port, tmp_path):
    live = serve_app(app_settings(sim, app_port, tmp_path, LOG_FORMAT="json"), app_port)
    try:
        yield live
    finally:
        live.stop()
        logs.configure("INFO", "text")  # the handler is process-wide: leave it as found


@pytest.fixture
def written():
    """What the app's log handler writes, line by line: a copy of it (same filters, same
    formatter) on a buffer, attached for the test, so filters run where records are made."""
    real = logs.handler()
    assert real is not None
    buffer = io.StringIO()
    copy = logging.StreamHandler(buffer)
    copy.filters = list(real.filters)
    copy.setFormatter(real.formatter)
    root = logging.getLogger()
    root.addHandler(copy)
    try:
        yield lambda: [json.loads(line) for line in buffer.getvalue().splitlines() if line]
    finally:
        root.removeHandler(copy)


def test_every_request_writes_one_json_summary_without_secrets(sim, json_app, written):
    url, form = sim.install_request("a", user_id=1)
    assert json_app.post(url, form).status_code == 200
    assert sim.finish_install("a") in (200, 201)
    url, form = sim.placement_request("a", user_id=1, lead_id=101)
    card = json_app.post(url, form)
    assert card.status_code == 200
    assert json_app.get("/livez").status_code == 200

    lines = written()
    summaries = [line for line in lines if line["logger"] == "leadcard.web.requests"]
    routes = [(s["method"], s["route"], s["status"]) for s in summaries]
    assert ("POST", "/install", 200) in routes and ("POST", "/placement", 200) in routes
    assert ("POST", "/events", 200) in routes and ("GET", "/livez", 200) in routes
    placement = next(s for s in summaries if s["route"] == "/placement")
    assert placement["member_id"] == sim.portals["a"].member_id
    assert placement["request_id"] == card.headers["X-Request-Id"]
    assert isinstance(placement["duration_ms"], float) and placement["duration_ms"] > 0
    assert {"time", "level", "message"} <= set(placement)
    secrets = [form["AUTH_ID"], form["REFRESH_ID"], json_app.services.settings.client_secret]
    text = "\n".join(json.dumps(line) for line in lines)
    assert not any(secret in text for secret in secrets)


def test_a_record_with_a_token_in_it_is_redacted_in_json_too(json_app):
    handler = logs.handler()
    record = logging.LogRecord("leadcard.test", logging.WARNING, __file__, 1,
                               "refused access_token=%s", ("a1b2c3d4" * 8,), None)
    assert handler.filter(record)
    line = json.loads(handler.format(record))
    assert "a1b2c3d4" * 8 not in line["message"] and line["level"] == "WARNING"
