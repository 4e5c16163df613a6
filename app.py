"""The application factory: `create_app()` is the only wiring point of Lead Card.

gunicorn runs `app:create_app()`; tests call `create_app({...overrides})`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

import click
from flask import Flask
from flask.cli import FlaskGroup
from werkzeug.middleware.proxy_fix import ProxyFix

from leadcard import cli
from leadcard.core import logs
from leadcard.core.config import load_settings
from leadcard.flows.services import build_services
from leadcard.storage import db
from leadcard.web import error_pages, frontend, request_log, security, static_files
from leadcard.web.views import register_blueprints


def create_app(overrides: Mapping[str, object] | None = None) -> Flask:
    app = Flask(__name__, instance_relative_config=True)
    settings = load_settings(overrides, instance_path=app.instance_path)
    app.instance_path = settings.instance_path  # INSTANCE_PATH may move it
    os.makedirs(app.instance_path, exist_ok=True)
    logs.configure(os.environ.get("LOG_LEVEL", "INFO"), settings.log_format)

    # No Flask SECRET_KEY, on purpose: without one Flask gives every request its read-only
    # null session and refuses any write, so the card can neither read nor set a session
    # cookie (threats.md §3.2). settings.secret_key keys the app's own hashes instead.
    services = build_services(settings)
    if not _loaded_by_flask_command():
        # A host serves only on the schema its code needs (migrating the embedded default
        # itself). The `flask` command defers this check to each command (cli.py): the
        # release step, `flask db upgrade`, must run precisely when the schema is old.
        db.ensure_schema(services.engine, settings.auto_migrate)
    app.extensions["leadcard"] = services

    if settings.proxy_hops:
        # Behind `proxy_hops` reverse proxies (the shipped nginx front: 1), the client's
        # address is the one the nearest proxy wrote into X-Forwarded-For; without a proxy
        # that header is the client's own claim and is ignored (per-client limits use it).
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=settings.proxy_hops)  # type: ignore[method-assign]
    security.init_app(app)
    if settings.log_format == "json":
        request_log.init_app(app)
    frontend.init_app(app)
    # Static files are answered before Flask: versioned ones cached for a year, gzip/brotli
    # variants kept in the instance folder (leadcard/web/static_files.py).
    static_files.wrap(app, os.path.join(app.instance_path, "static-variants"))
    if app.debug or app.config.get("TEMPLATES_AUTO_RELOAD"):
        services.rendered.max_entries = 0  # an edited template must show at once (rendered.py)
    register_blueprints(app)
    error_pages.register_error_handlers(app)
    cli.register(app)
    return app


def _loaded_by_flask_command() -> bool:
    """Is this app being built by the `flask` command line (`flask --app app …`)?"""
    context = click.get_current_context(silent=True)
    return context is not None and isinstance(context.find_root().command, FlaskGroup)
