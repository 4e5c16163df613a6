"""Settings from the environment: one frozen `Settings`, validated at start-up.

Only this module reads `os.environ`. `create_app(overrides)` passes test or runner
overrides through here too, so every code path sees the same validated object.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import urlsplit

DEFAULT_OAUTH_URL = "https://oauth.bitrix.info"

# The documented regional OAuth servers (settings/oauth/index.md: PHPSDK DefaultOAuthServerUrl
# west()/east()). A token call never goes anywhere else, whatever a payload says.
REGIONAL_OAUTH_URLS = ("https://oauth.bitrix.info", "https://oauth.bitrix24.tech")


class ConfigError(RuntimeError):
    """A setting is missing or malformed; the message says which and how to fix it."""


def _flag(value: str | None) -> bool:
    return (value or "").strip().lower() in {"1", "true", "yes", "on"}


def _float(env: Mapping[str, str], name: str, default: float) -> float:
    raw = env.get(name)
    if raw in (None, ""):
        return default
    try:
        return float(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a number, got {raw!r}") from None


def _count(env: Mapping[str, str], name: str, default: int) -> int:
    raw = env.get(name)
    if raw in (None, ""):
        return default
    try:
        value = int(raw)
    except ValueError:
        value = -1
    if value < 0:
        raise ConfigError(f"{name} must be a whole number >= 0, got {raw!r}")
    return value


def _choice(env: Mapping[str, str], name: str, allowed: tuple[str, ...], default: str) -> str:
    raw = (env.get(name) or "").strip().lower() or default
    if raw not in allowed:
        raise ConfigError(f"{name} must be one of {', '.join(allowed)}, got {raw!r}")
    return raw


def normalise_database_url(url: str) -> str:
    """Map the URL spellings hosting platforms use onto SQLAlchemy + psycopg 3."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix):]
    return url


@dataclass(frozen=True)
class Settings:
    client_id: str
    client_secret: str = field(repr=False)
    app_url: str
    oauth_url: str
    database_url: str
    secret_key: str = field(repr=False)
    allow_http: bool
    token_keys: str | None = field(repr=False, default=None)
    redis_url: str | None = None
    instance_path: str = "instance"
    connect_timeout: float = 3.05
    read_timeout: float = 6.0
    view_budget: float = 10.0
    rate_per_second: float = 2.0
    rate_burst: float = 50.0
    reference_ttl: float = 600.0
    auto_migrate: bool = True
    card_cache_entries: int = 256
    proxy_hops: int = 0
    log_format: str = "text"
    rest_log_days: float = 7.0  # REST log retention; Market asks for at least 3 days
    # Who runs this deployment: named on /privacy and /license (the licensor and the data
    # controller, market/preparing-to-publish/common-requirements.md §1.B.12).
    vendor_name: str = ""
    vendor_contact: str = ""
    # GET /metrics answers only `Authorization: Bearer <this>`; empty = no /metrics (404).
    metrics_token: str = ""

    @property
    def oauth_token_url(self) -> str:
        return self.oauth_url.rstrip("/") + "/oauth/token/"

    @property
    def oauth_rest_url(self) -> str:
        return self.oauth_url.rstrip("/") + "/rest/"

    @property
    def allowed_oauth_urls(self) -> tuple[str, ...]:
        """Token servers we may talk to: the configured one plus the documented regions."""
        return tuple(dict.fromkeys((self.oauth_url.rstrip("/"), *REGIONAL_OAUTH_URLS)))

    def url_for_handler(self, path: str) -> str:
        return self.app_url.rstrip("/") + path


REQUIRED = {
    "B24_CLIENT_ID": "the application's client_id from the Bitrix24 vendor console",
    "B24_CLIENT_SECRET": "the application's client_secret from the vendor console",
    "APP_URL": "the public https base URL of this app, e.g. https://leadcard.example.com",
    "SECRET_KEY": "a long random string, e.g. `python -c 'import secrets;print(secrets.token_urlsafe(48))'`",
}


def load_settings(
    overrides: Mapping[str, object] | None = None,
    environ: Mapping[str, str] | None = None,
    instance_path: str = "instance",
) -> Settings:
    """Build Settings from `environ` (default os.environ) with `overrides` on top; fail loudly."""
    env: dict[str, str] = dict(os.environ if environ is None else environ)
    for key, value in (overrides or {}).items():
        env[key] = "" if value is None else str(value)

    missing = [name for name in REQUIRED if not env.get(name, "").strip()]
    if missing:
        lines = [f"  {name}: {REQUIRED[name]}" for name in missing]
        raise ConfigError(
            "Lead Card cannot start; missing settings (see .env.example):\n" + "\n".join(lines)
        )

    allow_http = _flag(env.get("B24_ALLOW_HTTP"))
    oauth_url = env.get("B24_OAUTH_URL", "").strip() or DEFAULT_OAUTH_URL
    app_url = env["APP_URL"].strip().rstrip("/")
    for name, url in (("B24_OAUTH_URL", oauth_url), ("APP_URL", app_url)):
        parts = urlsplit(url)
        if parts.scheme not in ("https", "http") or not parts.hostname:
            raise ConfigError(f"{name} must be an absolute http(s) URL, got {url!r}")
        if parts.scheme == "http" and not allow_http:
            raise ConfigError(
                f"{name} is plain http ({url}); Bitrix24 requires https. "
                "Set B24_ALLOW_HTTP=1 only for the local simulator and tests."
            )

    # INSTANCE_PATH moves the key file and the default SQLite database (tests, containers).
    instance_path = env.get("INSTANCE_PATH", "").strip() or instance_path
    database_url = env.get("DATABASE_URL", "").strip()
    if not database_url:
        database_url = "sqlite:///" + os.path.join(
            os.path.abspath(instance_path), "leadcard.sqlite3"
        )
    database_url = normalise_database_url(database_url)
    is_sqlite = database_url.startswith("sqlite")
    token_keys = env.get("TOKEN_KEYS", "").strip() or None
    if not is_sqlite and token_keys is None:
        # A shared database is read by every host: a host that made up its own key file
        # would answer 500 for every view and re-encrypt the grants it writes under a key
        # no other host has. Only the embedded SQLite default, on one host, may do that.
        raise ConfigError(
            "Lead Card cannot start: TOKEN_KEYS is required when DATABASE_URL is not the "
            "embedded SQLite default. Give every host the same key ring, e.g. "
            "TOKEN_KEYS=$(python -c 'from cryptography.fernet import Fernet; "
            "print(Fernet.generate_key().decode())') (see .env.example)."
        )
    # Bitrix24 Market: REST request/response logs kept "for at least the last 3 days"
    # (market/preparing-to-publish/common-requirements.md); no setting turns the log off.
    rest_log_days = _float(env, "REST_LOG_DAYS", 7.0)
    if rest_log_days < 3:
        raise ConfigError(
            f"REST_LOG_DAYS must be at least 3 (Bitrix24 Market keeps REST logs 3 days), "
            f"got {env.get('REST_LOG_DAYS')!r}"
        )
    auto_migrate_raw = env.get("DB_AUTO_MIGRATE")
    auto_migrate = is_sqlite if auto_migrate_raw in (None, "") else _flag(auto_migrate_raw)

    return Settings(
        client_id=env["B24_CLIENT_ID"].strip(),
        client_secret=env["B24_CLIENT_SECRET"].strip(),
        app_url=app_url,
        oauth_url=oauth_url.rstrip("/"),
        database_url=database_url,
        secret_key=env["SECRET_KEY"],
        allow_http=allow_http,
        token_keys=token_keys,
        redis_url=env.get("REDIS_URL") or None,
        instance_path=os.path.abspath(instance_path),
        connect_timeout=_float(env, "B24_CONNECT_TIMEOUT", 3.05),
        read_timeout=_float(env, "B24_READ_TIMEOUT", 6.0),
        view_budget=_float(env, "VIEW_BUDGET_SECONDS", 10.0),
        rate_per_second=_float(env, "B24_RATE_PER_SECOND", 2.0),
        rate_burst=_float(env, "B24_RATE_BURST", 50.0),
        reference_ttl=_float(env, "REFERENCE_TTL_SECONDS", 600.0),
        auto_migrate=auto_migrate,
        card_cache_entries=_count(env, "CARD_CACHE_ENTRIES", 256),
        proxy_hops=_count(env, "PROXY_HOPS", 0),
        log_format=_choice(env, "LOG_FORMAT", ("text", "json"), "text"),
        rest_log_days=rest_log_days,
        vendor_name=env.get("VENDOR_NAME", "").strip()[:200],
        vendor_contact=env.get("VENDOR_CONTACT", "").strip()[:200],
        metrics_token=env.get("METRICS_TOKEN", "").strip(),
    )
