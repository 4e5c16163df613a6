"""Secrets never leak (threats.md §2.2, scenarios 27/28, T-16).

A whole life cycle — install, ONAPPINSTALL, views, a viewer renewal, a stored-grant refresh,
a reconnect, forged requests, uninstall — runs with logging at DEBUG. Then every access
token, refresh token and application_token the simulator ever issued, the client secret,
the token keys and SECRET_KEY are searched for in: the app's log output (app loggers,
werkzeug's access log, urllib3, the simulator's), CLI output, every response the app wrote,
the request line and headers of every request the app sent (so: no token in any URL), the
simulator's request log, and the raw database (SQLite file + WAL, or a pg_dump). Zero hits.
A second test does the same through gunicorn and its access log.
"""

from __future__ import annotations

import io
import json
import logging
import os
import re
import secrets as pysecrets
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests
import sqlalchemy as sa

from leadcard.core import redact
from leadcard.core.redact import secret_sentinel_check
from tests.security.harness import (
    CLIENT_ID,
    CLIENT_SECRET,
    app_settings,
    free_port,
    install_portal,
    placement,
    start_app,
    start_sim,
    wait_for,
)

ROOT = Path(__file__).resolve().parents[2]


def test_secret_sentinel_check_exists_and_finds_raw_and_encoded_secrets():
    token = "SENTINEL_" + pysecrets.token_hex(20)
    assert callable(redact.secret_sentinel_check)
    assert secret_sentinel_check(f"x {token} y", [token, "absent"]) == [token]
    assert secret_sentinel_check("a=" + token.replace("_", "%5F"), [token]) == []
    assert secret_sentinel_check("q=SENTINEL_%2Fx", ["SENTINEL_/x"]) == ["SENTINEL_/x"]


def run_secrets(sim, live, extra: list[str]) -> list[str]:
    """Every secret of the run: simulator-issued tokens, application tokens, app secrets."""
    w = sim.world
    with w.lock:
        tokens = set(w.grants_by_access) | set(w.grants_by_refresh)
        tokens |= {p.application_token for p in w.portals.values()}
    settings = live.services.settings
    keys = [k.strip() for k in (settings.token_keys or "").split(",") if k.strip()]
    return sorted(tokens | {settings.client_secret, settings.secret_key, *keys, *extra})


@pytest.fixture
def app_log(monkeypatch):
    """The app's own log handler (logs.configure), writing into a buffer at DEBUG."""
    monkeypatch.setenv("LOG_LEVEL", "DEBUG")
    root = logging.getLogger()
    level = root.level
    buffer = io.StringIO()
    swapped: list[tuple[logging.StreamHandler, object]] = []

    def capture() -> None:
        for handler in root.handlers:
            if getattr(handler, "_leadcard", False) and not any(h is handler for h, _ in swapped):
                swapped.append((handler, handler.setStream(buffer)))

    yield buffer, capture
    for handler, stream in swapped:
        handler.setStream(stream)
    root.setLevel(level)


def _db_text(live, database_url: str) -> bytes:
    """The raw database: SQLite file + WAL/SHM, or a pg_dump of the test schema."""
    if database_url.startswith("sqlite"):
        path = database_url.split("///", 1)[1]
        return b"".join(Path(p).read_bytes() for p in (path, path + "-wal", path + "-shm")
                        if Path(p).exists())
    url = sa.engine.make_url(database_url)
    schema = re.search(r"search_path%3D(\w+)|search_path=(\w+)", database_url)
    name = next(g for g in schema.groups() if g)
    env = dict(os.environ, PGPASSWORD=url.password or "")
    dump = subprocess.run(
        ["pg_dump", "-h", url.host or "127.0.0.1", "-p", str(url.port or 5432),
         "-U", url.username or "postgres", "-d", url.database or "postgres",
         "-n", name, "--data-only", "--inserts"],
        env=env, capture_output=True, timeout=60, check=True)
    return dump.stdout


def _outbound_heads(egress) -> str:
    """Request line + headers of every request the app sent (bodies carry tokens by design)."""
    heads = []
    for e in egress.outbound():
        if e.kind == "send" and re.match(rb"^[A-Z]+ \S+ HTTP/1\.[01]\r\n", e.data):
            heads.append(e.data.split(b"\r\n\r\n", 1)[0].decode("latin-1"))
    return "\n".join(heads)


def test_no_secret_in_logs_responses_urls_or_database(sim, app_port, database_url, egress,
                                                      app_log):
    buffer, capture = app_log
    live = start_app(app_settings(sim, app_port, database_url), app_port)
    capture()
    cli_output: list[str] = []
    codes: list[str] = []
    try:
        store = live.store
        installed = install_portal(sim, live, "a")
        install_portal(sim, live, "b")
        member_id = installed.member_id
        lead = sim.sample_lead("a", "rich")
        assert lead["TITLE"] in placement(sim, live, lead["ID"]).text
        assert placement(sim, live, 104, user_id=2).status_code == 403
        # viewer renewal
        url, form = sim.placement_request("a", user_id=2, lead_id=lead["ID"])
        sim.expire_access_token(form["AUTH_ID"])
        assert live.post(url, form).status_code == 200
        # stored-grant refresh (CLI) and a refused one
        sim.expire_access_token(store.credentials(member_id).access_token)
        result = live.app.test_cli_runner().invoke(args=["portals", "check"])
        assert result.exit_code == 0, result.output
        cli_output.append(result.output)
        for args in (["portals", "list"], ["keys", "rotate"]):
            cli_output.append(live.app.test_cli_runner().invoke(args=args).output)
        # forged and failing requests (security log lines)
        placement(sim, live, 101, APPLICATION_TOKEN=pysecrets.token_hex(16))
        placement(sim, live, 101, AUTH_ID=pysecrets.token_hex(35))
        bad = sim.onappuninstall_form("a")
        bad["auth[application_token]"] = pysecrets.token_hex(16)
        live.post("/events", bad)
        live.post("/events", sim.onappuninstall_form("a"))  # insider: kept
        sim.inject_error("a", "*", "INTERNAL_SERVER_ERROR", count=2)
        placement(sim, live, 101)
        # reconnect through the authorization-code flow
        start = live.get(f"/reconnect?member_id={member_id}")
        with egress.ignored():
            authorize = requests.get(start.headers["Location"], allow_redirects=False, timeout=10)
        callback = authorize.headers["Location"]
        codes.append(re.search(r"code=([^&]+)", callback).group(1))
        assert requests.get(callback, timeout=10).status_code == 200
        assert store.get(member_id).has_tokens

        secrets_now = run_secrets(sim, live, codes)
        db_mid_run = _db_text(live, database_url)
        assert member_id.encode() in db_mid_run  # the dump is real
        assert secret_sentinel_check(db_mid_run.decode("latin-1"), secrets_now) == []

        assert sim.uninstall("a") == 200
        assert store.get(member_id).status == "uninstalled"
        db_end = _db_text(live, database_url)
    finally:
        live.stop()

    secrets_all = run_secrets(sim, live, codes)
    assert len(secrets_all) > 20
    logs = buffer.getvalue()
    assert "DEBUG" in logs and "POST /placement" in logs  # the capture really captured
    places = {
        "app log": logs,
        "CLI output": "\n".join(cli_output),
        "app responses": egress.app_responses().decode("latin-1"),
        "outbound request lines and headers": _outbound_heads(egress),
        "simulator request log": json.dumps(sim.stats(), default=str),
        "database at the end": db_end.decode("latin-1"),
    }
    assert "POST /rest/" in places["outbound request lines and headers"]
    for where, text in places.items():
        leaked = secret_sentinel_check(text, secrets_all)
        assert leaked == [], f"{len(leaked)} secret(s) in {where}"
    # client_secret went to the OAuth server only (and in a POST body, never a URL).
    oauth = sim.world.oauth_port
    secret = CLIENT_SECRET.encode()
    assert secret in egress.sent_to(oauth)
    assert secret not in egress.sent_anywhere_but({oauth})
    for line in egress.request_lines():
        assert not secret_sentinel_check(line, secrets_all), line


# --- gunicorn ---------------------------------------------------------------------------------

def test_gunicorn_logs_carry_no_secrets(tmp_path):
    gunicorn = Path(sys.executable).with_name("gunicorn")
    if not gunicorn.exists():
        pytest.skip("gunicorn not installed in this environment")
    port = free_port()
    sim = start_sim(port)
    log_path = tmp_path / "gunicorn.log"
    env = dict(os.environ)
    for name in ("TOKEN_KEYS", "DATABASE_URL", "LOG_LEVEL"):
        env.pop(name, None)
    env.update(app_settings(sim, port, f"sqlite:///{tmp_path}/g.sqlite3"))
    env.update(HOST="127.0.0.1", PORT=str(port), WEB_CONCURRENCY="1", GUNICORN_THREADS="4",
               LOG_LEVEL="DEBUG", GUNICORN_CMD_ARGS="--log-level debug",
               INSTANCE_PATH=str(tmp_path / "instance"))
    with open(log_path, "wb") as out:
        proc = subprocess.Popen([str(gunicorn), "-c", "gunicorn.conf.py"], cwd=ROOT, env=env,
                                stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        assert wait_for(lambda: _up(base), timeout=20), log_path.read_text()[-2000:]
        url, form = sim.install_request("a", user_id=1)
        assert requests.post(url, data=form, timeout=20).status_code == 200
        assert sim.finish_install("a") == 200
        lead = sim.sample_lead("a", "rich")
        url, form = sim.placement_request("a", user_id=1, lead_id=lead["ID"])
        assert lead["TITLE"] in requests.post(url, data=form, timeout=20).text
        url, form = sim.placement_request("a", user_id=2, lead_id=lead["ID"])
        sim.expire_access_token(form["AUTH_ID"])
        assert requests.post(url, data=form, timeout=20).status_code == 200
        bad = dict(form, APPLICATION_TOKEN=pysecrets.token_hex(16))
        assert requests.post(url, data=bad, timeout=20).status_code == 403
        assert sim.uninstall("a") == 200
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        sim.stop()
    text = log_path.read_text(errors="replace")
    assert "POST /placement" in text and "POST /events" in text  # access log lines present
    w = sim.world
    secrets_all = sorted(set(w.grants_by_access) | set(w.grants_by_refresh)
                         | {p.application_token for p in w.portals.values()}
                         | {CLIENT_SECRET, env["SECRET_KEY"], env["TOKEN_KEYS"]})
    assert secret_sentinel_check(text, secrets_all) == []
    assert "Traceback" not in text
    assert CLIENT_ID  # (the client id is public; it may appear)


def _up(base: str) -> bool:
    try:
        return requests.get(base + "/healthz", timeout=1).status_code == 200
    except requests.RequestException:
        time.sleep(0.1)
        return False
