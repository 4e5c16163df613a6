"""The settings a harness gives the app: one test registration, built in one place.

Tests, the benchmark and the concurrency drivers all get the app's settings from
`app_settings`, and a child process's environment from `process_env`, which drops every
setting the developer's shell may carry (a stray REDIS_URL or DATABASE_URL would silently
point a test at someone else's storage).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Mapping
from pathlib import Path

from cryptography.fernet import Fernet

ROOT = Path(__file__).resolve().parents[2]

# The registration every test uses, in the shape Bitrix24 gives a local app
# ("local.<hex>.<digits>"; the simulator marks "local." apps with license status L).
CLIENT_ID = "local.64f1c0a5e1b2d3.12345678"
# Unique per run, so a test can search logs, pages, rows and the wire for it.
CLIENT_SECRET = "test-client-secret-" + uuid.uuid4().hex
SECRET_KEY = "test-secret-key-" + uuid.uuid4().hex

# What the app (leadcard/core/config.py, app.py) and gunicorn.conf.py read from the
# environment: names, and prefixes that cover whole families.
APP_ENV_NAMES = frozenset({
    "APP_URL", "SECRET_KEY", "DATABASE_URL", "REDIS_URL", "TOKEN_KEYS", "DB_AUTO_MIGRATE",
    "INSTANCE_PATH", "LOG_LEVEL", "VIEW_BUDGET_SECONDS", "REFERENCE_TTL_SECONDS",
    "CARD_CACHE_ENTRIES", "PROXY_HOPS", "HOST", "PORT", "WEB_CONCURRENCY",
    "FORWARDED_ALLOW_IPS", "GIL_SWITCH_INTERVAL_MS", "FLASK_APP", "BASELINE_STATE",
})
APP_ENV_PREFIXES = ("B24_", "GUNICORN_")


def sqlite_url(folder: str | Path, name: str = "leadcard.sqlite3") -> str:
    """A SQLite database file in ``folder`` (a test's tmp folder)."""
    return f"sqlite:///{Path(folder) / name}"


def app_settings(*, app_url: str, oauth_url: str, database_url: str,
                 instance_path: str | Path, **extra: object) -> dict[str, str]:
    """Everything the app needs to run against the simulator at ``oauth_url``.

    A fresh token key ring every call; the instance folder (grant journal, key file) is the
    caller's tmp folder, never the repository's instance/. ``extra`` adds or overrides
    settings (``REDIS_URL``, ``DB_AUTO_MIGRATE``, ``TOKEN_KEYS`` …), all as strings.
    """
    settings = {
        "B24_CLIENT_ID": CLIENT_ID,
        "B24_CLIENT_SECRET": CLIENT_SECRET,
        "APP_URL": app_url.rstrip("/"),
        "B24_OAUTH_URL": oauth_url,
        "B24_ALLOW_HTTP": "1",  # the simulator speaks plain http on loopback
        "SECRET_KEY": SECRET_KEY,
        "DATABASE_URL": database_url,
        "INSTANCE_PATH": str(instance_path),
        "TOKEN_KEYS": Fernet.generate_key().decode(),
    }
    settings.update({k: str(v) for k, v in extra.items()})
    return settings


def inherited_env(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """``environ`` (default os.environ) without any setting of the app or of gunicorn."""
    source = os.environ if environ is None else environ
    return {k: v for k, v in source.items()
            if k not in APP_ENV_NAMES and not k.startswith(APP_ENV_PREFIXES)}


def process_env(settings: Mapping[str, str], **extra: str) -> dict[str, str]:
    """The environment of an app process: PATH, HOME, locale … from the shell, the app's
    settings only from ``settings`` and ``extra``; the repository importable."""
    env = inherited_env()
    env.update(settings)
    env["PYTHONPATH"] = str(ROOT)
    env.update(extra)
    return env
