"""`flask --app app keys rotate` and `db upgrade`: the token keys and the schema."""

from __future__ import annotations

import click
from flask.cli import AppGroup

from leadcard.cli.common import ready
from leadcard.flows import services
from leadcard.storage import db

keys_cli = AppGroup("keys", help="Token encryption keys.")
db_cli = AppGroup("db", help="Database schema.")


@keys_cli.command("rotate")
def keys_rotate() -> None:
    """Re-encrypt every stored token under the newest key of TOKEN_KEYS."""
    changed = ready().store.rotate_keys()
    click.echo(f"re-encrypted {changed} row(s) under the newest key")


@db_cli.command("upgrade")
def db_upgrade() -> None:
    """Apply the migration history to DATABASE_URL."""
    engine = services.current().engine
    db.upgrade(engine)
    click.echo(f"database at revision {db.current_revision(engine)}")
