"""devtools/harness/settings.py: what a harness gives the app, and what it never inherits."""

from cryptography.fernet import Fernet

from devtools.harness import settings as harness


def test_app_settings_are_complete_and_explicit(tmp_path):
    s = harness.app_settings(app_url="http://127.0.0.1:8123/", oauth_url="http://127.0.0.1:9",
                             database_url=harness.sqlite_url(tmp_path),
                             instance_path=tmp_path / "instance", REDIS_URL="redis://x/1",
                             B24_RATE_BURST=5)
    assert s["B24_CLIENT_ID"] == harness.CLIENT_ID and s["B24_CLIENT_SECRET"] == harness.CLIENT_SECRET
    assert s["APP_URL"] == "http://127.0.0.1:8123" and s["B24_ALLOW_HTTP"] == "1"
    assert s["DATABASE_URL"] == f"sqlite:///{tmp_path}/leadcard.sqlite3"
    assert s["INSTANCE_PATH"] == str(tmp_path / "instance")  # never the repository's instance/
    assert s["REDIS_URL"] == "redis://x/1" and s["B24_RATE_BURST"] == "5"
    Fernet(s["TOKEN_KEYS"].encode())  # a valid key ring ...
    again = harness.app_settings(app_url="http://a", oauth_url="http://b", database_url="sqlite://",
                                 instance_path=tmp_path)
    assert again["TOKEN_KEYS"] != s["TOKEN_KEYS"]  # ... fresh for every app


def test_the_secret_is_unique_enough_to_search_for():
    assert len(harness.CLIENT_SECRET) > 30 and harness.CLIENT_SECRET != harness.SECRET_KEY
    assert harness.CLIENT_ID.startswith("local.")  # a local app: license status L


def test_process_env_drops_every_app_setting_of_the_shell(monkeypatch):
    for name, value in {"DATABASE_URL": "postgresql://someone-else", "REDIS_URL": "redis://x",
                        "TOKEN_KEYS": "k", "B24_RATE_PER_SECOND": "9",
                        "GUNICORN_CMD_ARGS": "--reload", "WEB_CONCURRENCY": "9",
                        "LOG_LEVEL": "DEBUG", "HOME": "/home/dev", "LANG": "C.UTF-8"}.items():
        monkeypatch.setenv(name, value)
    env = harness.process_env({"DATABASE_URL": "sqlite:///mine"}, PORT="8123")
    assert env["DATABASE_URL"] == "sqlite:///mine" and env["PORT"] == "8123"
    for name in ("REDIS_URL", "TOKEN_KEYS", "B24_RATE_PER_SECOND", "GUNICORN_CMD_ARGS",
                 "WEB_CONCURRENCY", "LOG_LEVEL"):
        assert name not in env, name
    assert env["HOME"] == "/home/dev" and env["LANG"] == "C.UTF-8"
    assert env["PYTHONPATH"] == str(harness.ROOT)
