"""Thin Flask views: parse, look up, call a service, render. No SQL, no Bitrix24 URLs."""

from flask import Flask


def register_blueprints(app: Flask) -> None:
    from . import actions, events, health, home, install, legal, metrics, oauth_callback, placement

    for module in (install, placement, events, home, health, oauth_callback, legal, metrics,
                   actions):
        app.register_blueprint(module.bp)
