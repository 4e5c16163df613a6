"""The `flask` command reads `.env` (python-dotenv), as .env.example promises."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from cryptography.fernet import Fernet

ROOT = Path(__file__).resolve().parents[2]


def test_flask_command_takes_its_settings_from_dot_env(tmp_path):
    (tmp_path / ".env").write_text("\n".join([
        "B24_CLIENT_ID=local.dotenv.test",
        "B24_CLIENT_SECRET=dotenv-secret-" + "d" * 24,
        "APP_URL=https://leadcard.example.test",
        "SECRET_KEY=dotenv-secret-key-" + "k" * 24,
        f"DATABASE_URL=sqlite:///{tmp_path}/leadcard.sqlite3",
        f"TOKEN_KEYS={Fernet.generate_key().decode()}",
        "",
    ]))
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("B24_", "FLASK_")) and k not in
           ("APP_URL", "SECRET_KEY", "DATABASE_URL", "TOKEN_KEYS", "REDIS_URL")}
    env["PYTHONPATH"] = str(ROOT)
    result = subprocess.run([str(Path(sys.executable).parent / "flask"), "--app", "app",
                             "portals", "list"], cwd=tmp_path, env=env, capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 portal(s)" in result.stdout
    assert "python-dotenv" not in result.stderr and "Traceback" not in result.stderr
    assert (tmp_path / "leadcard.sqlite3").exists()  # the DATABASE_URL from .env was used
