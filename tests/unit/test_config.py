"""Settings: clear failures at start-up, https unless explicitly allowed."""

import pytest

from leadcard.core.config import ConfigError, load_settings, normalise_database_url

BASE = {"B24_CLIENT_ID": "app.x", "B24_CLIENT_SECRET": "s3cret", "APP_URL": "https://lc.example.com",
        "SECRET_KEY": "k" * 32}


def test_missing_settings_are_named():
    with pytest.raises(ConfigError) as info:
        load_settings(environ={"APP_URL": "https://x.example"})
    text = str(info.value)
    assert "B24_CLIENT_ID" in text and "B24_CLIENT_SECRET" in text and "SECRET_KEY" in text
    assert "APP_URL:" not in text


def test_defaults(tmp_path):
    s = load_settings(environ=BASE, instance_path=str(tmp_path))
    assert s.oauth_url == "https://oauth.bitrix.info"
    assert s.oauth_token_url == "https://oauth.bitrix.info/oauth/token/"
    assert s.database_url == f"sqlite:///{tmp_path}/leadcard.sqlite3"
    assert s.allow_http is False and s.auto_migrate is True
    assert "s3cret" not in repr(s)


def test_http_needs_explicit_permission():
    env = dict(BASE, B24_OAUTH_URL="http://127.0.0.1:5010")
    with pytest.raises(ConfigError, match="B24_ALLOW_HTTP"):
        load_settings(environ=env)
    assert load_settings(environ=dict(env, B24_ALLOW_HTTP="1")).allow_http


def test_bad_urls_and_numbers():
    with pytest.raises(ConfigError):
        load_settings(environ=dict(BASE, APP_URL="lc.example.com"))
    with pytest.raises(ConfigError, match="B24_READ_TIMEOUT"):
        load_settings(environ=dict(BASE, B24_READ_TIMEOUT="slow"))


def test_postgres_urls_use_psycopg3():
    assert normalise_database_url("postgres://u@h/db") == "postgresql+psycopg://u@h/db"
    assert normalise_database_url("postgresql://u@h/db") == "postgresql+psycopg://u@h/db"
    s = load_settings(environ=dict(BASE, DATABASE_URL="postgres://u@h/db", TOKEN_KEYS="k1"))
    assert s.auto_migrate is False  # shared databases are migrated by a command


def test_a_shared_database_needs_token_keys():
    """Issue 10 defect 7: a host with its own key file poisons a shared database."""
    for url in ("postgresql://u@h/db", "postgres://u@h/db"):
        for keys in (None, "", "   "):
            env = dict(BASE, DATABASE_URL=url)
            if keys is not None:
                env["TOKEN_KEYS"] = keys
            with pytest.raises(ConfigError, match="TOKEN_KEYS is required"):
                load_settings(environ=env)
    # The embedded SQLite default (and any SQLite file, which lives on one host) may keep
    # its key in the instance directory.
    assert load_settings(environ=dict(BASE)).token_keys is None
    sqlite_file = load_settings(environ=dict(BASE, DATABASE_URL="sqlite:////tmp/x.sqlite3"))
    assert sqlite_file.token_keys is None


def test_log_format_is_text_or_json():
    assert load_settings(environ=dict(BASE)).log_format == "text"
    assert load_settings(environ=dict(BASE, LOG_FORMAT="JSON")).log_format == "json"
    with pytest.raises(ConfigError, match="LOG_FORMAT must be one of text, json"):
        load_settings(environ=dict(BASE, LOG_FORMAT="yaml"))
