"""What every operator command shares: the app's services on a schema at the code's revision."""

from __future__ import annotations

from leadcard.flows import services
from leadcard.storage import db


def ready() -> services.Services:
    """The app's services, on a schema at the code's revision (the embedded default migrates
    itself; a shared database must have had `flask db upgrade`). `create_app` skips this
    check under the `flask` command so that `db upgrade` can run on an old schema."""
    svc = services.current()
    db.ensure_schema(svc.engine, svc.settings.auto_migrate)
    return svc
