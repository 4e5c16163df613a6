"""Tokens at rest: key rotation with `flask keys rotate`, and the embedded default key file.

Rotation runbook (crypto.py): put the new key first (`TOKEN_KEYS=new,old`), run
`flask --app app keys rotate`, then drop the old key. Rows written under the old key must keep
working at every step, and only the new key must be needed at the end.
"""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
import sqlalchemy as sa
from cryptography.fernet import Fernet, InvalidToken

from leadcard.storage.keyring import KEY_FILE_NAME, KeyRing, UndecryptableToken, generate_key
from tests.security.harness import app_settings, install_portal, placement, start_app

ROOT = Path(__file__).resolve().parents[2]
SECRET_COLUMNS = {"portals": ("access_token", "refresh_token", "application_token"),
                  "viewer_renewals": ("access_token", "refresh_token")}


def ciphertexts(engine) -> list[str]:
    out = []
    with engine.connect() as conn:
        for table, columns in SECRET_COLUMNS.items():
            for row in conn.execute(sa.text(f"SELECT {', '.join(columns)} FROM {table}")):
                out += [v for v in row if v]
    return out


def readable_by(key: str, values: list[str]) -> bool:
    f = Fernet(key)
    try:
        for v in values:
            f.decrypt(v.encode())
    except InvalidToken:
        return False
    return True


def rotate_cli(settings: dict) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("TOKEN_KEYS", "DATABASE_URL")}
    env.update({k: str(v) for k, v in settings.items()})
    return subprocess.run([sys.executable, "-m", "flask", "--app", "app", "keys", "rotate"],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)


def test_keys_rotate_old_rows_keep_working_then_only_the_new_key_is_needed(
        sim, app_port, database_url):
    old, new = generate_key(), generate_key()

    # 1. Install and renew a viewer under the old key.
    live = start_app(app_settings(sim, app_port, database_url, TOKEN_KEYS=old), app_port)
    try:
        installed = install_portal(sim, live, "a")
        member_id = installed.member_id
        url, form = sim.placement_request("a", user_id=2, lead_id=101)
        sim.expire_access_token(form["AUTH_ID"])
        assert live.post(url, form).status_code == 200  # stores a viewer renewal
        creds = live.store.credentials(member_id)
        stored = ciphertexts(live.services.engine)
    finally:
        live.stop()
    assert len(stored) == 5 and readable_by(old, stored) and not readable_by(new, stored)
    with pytest.raises(UndecryptableToken):
        KeyRing([new]).decrypt(stored[0])  # the new key alone cannot read old rows yet

    # 2. TOKEN_KEYS=new,old: old rows still decrypt, the card renders.
    both = app_settings(sim, app_port, database_url, TOKEN_KEYS=f"{new},{old}")
    live = start_app(both, app_port)
    try:
        again = live.store.credentials(member_id)
        assert (again.access_token, again.refresh_token) == (creds.access_token,
                                                             creds.refresh_token)
        assert live.store.application_token_matches(member_id, installed.application_token)
        lead = sim.sample_lead("a", "rich")
        assert lead["TITLE"] in placement(sim, live, lead["ID"]).text
    finally:
        live.stop()

    # 3. The operator command, as it runs in production.
    result = rotate_cli(both)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "re-encrypted 1 row(s)" in result.stdout
    for secret in (creds.access_token, creds.refresh_token, installed.application_token, new, old):
        assert secret not in result.stdout + result.stderr

    # 4. TOKEN_KEYS=new alone: everything decrypts, nothing is readable by the old key.
    alone = app_settings(sim, app_port, database_url, TOKEN_KEYS=new)
    live = start_app(alone, app_port)
    try:
        rotated = ciphertexts(live.services.engine)
        assert len(rotated) == 5 and readable_by(new, rotated) and not any(
            readable_by(old, [v]) for v in rotated)
        after = live.store.credentials(member_id)
        assert (after.access_token, after.refresh_token, after.version) == (
            creds.access_token, creds.refresh_token, creds.version)
        assert live.store.application_token_matches(member_id, installed.application_token)
        lead = sim.sample_lead("a", "rich")
        assert lead["TITLE"] in placement(sim, live, lead["ID"]).text
        # The stored chain still refreshes (the decrypted refresh token is the live one).
        sim.expire_access_token(after.access_token)
        check = live.app.test_cli_runner().invoke(args=["portals", "check"])
        assert check.exit_code == 0, check.output
        # Idempotent: nothing left to re-encrypt.
        rerun = live.app.test_cli_runner().invoke(args=["keys", "rotate"])
        assert "re-encrypted 0 row(s)" in rerun.output
    finally:
        live.stop()


def test_embedded_default_creates_a_private_key_file_in_the_instance_path(
        sim, app_port, tmp_path):
    instance = tmp_path / "instance"
    repo_key = ROOT / "instance" / KEY_FILE_NAME
    repo_key_before = repo_key.stat().st_mtime_ns if repo_key.exists() else None
    settings = app_settings(sim, app_port, "", TOKEN_KEYS="", INSTANCE_PATH=str(instance))
    live = start_app(settings, app_port)
    try:
        key_file = instance / KEY_FILE_NAME
        assert key_file.exists()
        assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
        assert (instance / "leadcard.sqlite3").exists()  # the default database moved too
        assert live.app.instance_path == str(instance)
        installed = install_portal(sim, live, "a")
        key = key_file.read_text().split()[0]
        assert readable_by(key, ciphertexts(live.services.engine))
        creds = live.store.credentials(installed.member_id)
    finally:
        live.stop()
    # The app did not touch the repository's own instance/ directory.
    assert (repo_key.stat().st_mtime_ns if repo_key.exists() else None) == repo_key_before

    # A second start reads the same key (it is not regenerated) and the card renders.
    live = start_app(settings, app_port)
    try:
        assert live.store.credentials(installed.member_id).refresh_token == creds.refresh_token
        lead = sim.sample_lead("a", "rich")
        assert lead["TITLE"] in placement(sim, live, lead["ID"]).text
    finally:
        live.stop()
    assert key_file.read_text().split()[0] == key

    # A key file others can read is refused at start-up, naming the fix but not the key.
    os.chmod(key_file, 0o644)
    from app import create_app

    with pytest.raises(ValueError) as refused:
        create_app(settings)
    assert "chmod 600" in str(refused.value) and key not in str(refused.value)
