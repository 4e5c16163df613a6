"""Operator commands: `flask --app app portals list|check|renew`, `keys rotate`, `db upgrade`.

Output never contains tokens; `check` exits non-zero when any portal fails.
"""

from __future__ import annotations

import sys

import click
from flask import Flask
from flask.cli import AppGroup

from leadcard.bitrix24.rest import Deadline
from leadcard.core import errors
from leadcard.flows import services
from leadcard.storage import db
from leadcard.storage.portals import UNINSTALLED, iter_expiring

portals_cli = AppGroup("portals", help="Inspect and maintain stored portals.")
keys_cli = AppGroup("keys", help="Token encryption keys.")
db_cli = AppGroup("db", help="Database schema.")


def _ready() -> services.Services:
    """The app's services, on a schema at the code's revision (the embedded default migrates
    itself; a shared database must have had `flask db upgrade`). `create_app` skips this
    check under the `flask` command so that `db upgrade` can run on an old schema."""
    svc = services.current()
    db.ensure_schema(svc.engine, svc.settings.auto_migrate)
    return svc


def _fmt(value: object) -> str:
    return "-" if value is None else str(value)


@portals_cli.command("list")
def portals_list() -> None:
    """member_id, domain, status and token expiry of every stored portal (never tokens)."""
    rows = _ready().store.list()
    click.echo(f"{'member_id':34} {'domain':32} {'status':16} token_expires_at")
    for p in rows:
        expires = p.token_expires_at.isoformat(timespec="seconds") if p.token_expires_at else "-"
        click.echo(f"{p.member_id:34} {p.domain:32} {p.status:16} {expires}")
    click.echo(f"{len(rows)} portal(s)")


@portals_cli.command("check")
def portals_check() -> None:
    """Call app.info on every installed portal with its stored grant (renewing if expired)."""
    svc = _ready()
    failed = 0
    for p in svc.store.list():
        if p.status == UNINSTALLED:
            continue
        try:
            svc.portal_api.call(p.member_id, "app.info", {}, deadline=Deadline.after(20))
        except errors.LeadCardError as exc:
            failed += 1
            click.echo(f"FAIL {p.member_id} {p.domain}: {exc.code}")
            if exc.code in ("token_revoked", "app_not_installed", "payment_required"):
                svc.store.mark(p.member_id, svc.store.get(p.member_id).status, exc.code)  # type: ignore[union-attr]
        else:
            click.echo(f"ok   {p.member_id} {p.domain}")
    if failed:
        click.echo(f"{failed} portal(s) failed", err=True)
        sys.exit(1)


@portals_cli.command("renew")
@click.option("--older-than", "older_than", type=float, required=True,
              help="Renew grants last renewed more than DAYS ago (refresh tokens live 180 days).")
def portals_renew(older_than: float) -> None:
    """Spend and replace old refresh tokens so rarely used portals stay connected."""
    svc = _ready()
    failed = renewed = 0
    for p in list(iter_expiring(svc.store, older_than)):
        try:
            svc.portal_api.renew(p.member_id, p.token_version)
        except errors.LeadCardError as exc:
            failed += 1
            click.echo(f"FAIL {p.member_id} {p.domain}: {exc.code}")
        else:
            renewed += 1
            click.echo(f"renewed {p.member_id} {p.domain}")
    click.echo(f"{renewed} renewed, {failed} failed")
    if failed:
        sys.exit(1)


@keys_cli.command("rotate")
def keys_rotate() -> None:
    """Re-encrypt every stored token under the newest key of TOKEN_KEYS."""
    changed = _ready().store.rotate_keys()
    click.echo(f"re-encrypted {changed} row(s) under the newest key")


@db_cli.command("upgrade")
def db_upgrade() -> None:
    """Apply the migration history to DATABASE_URL."""
    engine = services.current().engine
    db.upgrade(engine)
    click.echo(f"database at revision {db.current_revision(engine)}")


def register(app: Flask) -> None:
    for group in (portals_cli, keys_cli, db_cli):
        app.cli.add_command(group)
