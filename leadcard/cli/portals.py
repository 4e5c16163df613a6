"""`flask --app app portals list|check|renew`: the stored portals, for the operator.

Output never contains tokens; `check` and `renew` exit non-zero when any portal fails.
"""

from __future__ import annotations

import sys

import click
from flask.cli import AppGroup

from leadcard.bitrix24.rest import Deadline
from leadcard.cli.common import ready
from leadcard.core import errors
from leadcard.storage.portals import UNINSTALLED, iter_expiring

portals_cli = AppGroup("portals", help="Inspect and maintain stored portals.")


@portals_cli.command("list")
def portals_list() -> None:
    """member_id, domain, status and token expiry of every stored portal (never tokens)."""
    rows = ready().store.list()
    click.echo(f"{'member_id':34} {'domain':32} {'status':16} token_expires_at")
    for p in rows:
        expires = p.token_expires_at.isoformat(timespec="seconds") if p.token_expires_at else "-"
        click.echo(f"{p.member_id:34} {p.domain:32} {p.status:16} {expires}")
    click.echo(f"{len(rows)} portal(s)")


@portals_cli.command("check")
def portals_check() -> None:
    """Call app.info on every installed portal with its stored grant (renewing if expired)."""
    svc = ready()
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
    svc = ready()
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
