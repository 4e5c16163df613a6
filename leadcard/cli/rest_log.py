"""`flask --app app rest-log show|prune`: the REST log for Bitrix24 support and the operator.

`show` prints one line per call (time UTC, service, method, HTTP status, error code,
duration); `--full` adds the request and answer as stored: redacted before they were
encrypted, so no token reaches the screen. What is queued in this process is flushed first.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime

import click
from flask.cli import AppGroup

from leadcard.cli.common import ready
from leadcard.flows.rest_log_writer import RestLogWriter

rest_log_cli = AppGroup("rest-log", help="The log of REST calls to Bitrix24 (REST_LOG_DAYS).")


@rest_log_cli.command("show")
@click.option("--portal", "member_id", required=True, help="The portal's member_id.")
@click.option("--since", "hours", type=click.FloatRange(min=0), default=24.0, show_default=True,
              help="Hours back.")
@click.option("--method", default=None, help="Only this REST method (e.g. crm.lead.get).")
@click.option("--full", is_flag=True, help="Also print the redacted request and answer.")
def show(member_id: str, hours: float, method: str | None, full: bool) -> None:
    """One line per call of a portal."""
    svc = ready()
    writer = _writer()
    writer.flush()
    if not writer.store.known(member_id) and svc.store.get(member_id) is None:
        raise click.ClickException(f"no portal {member_id!r} in the store or the REST log")
    rows = writer.store.rows(member_id, time.time() - hours * 3600, method=method, full=full)
    for row in rows:
        at = datetime.fromtimestamp(row["called_at"], UTC).strftime("%Y-%m-%d %H:%M:%S")
        status = row["http_status"] if row["http_status"] is not None else "-"
        click.echo(f"{at} {row['service']} {row['method']} {status} "
                   f"{row['error_code'] or '-'} {row['duration_ms']}ms")
        if full:
            click.echo(f"  request:  {row['request']}")
            click.echo(f"  response: {row['response']}")
    click.echo(f"{len(rows)} call(s) in the last {hours:g} h", err=True)


@rest_log_cli.command("prune")
def prune() -> None:
    """Delete rows older than REST_LOG_DAYS now."""
    svc = ready()
    writer = _writer()
    total = 0
    while (n := writer.store.prune(svc.settings.rest_log_days)) > 0:
        total += n
    click.echo(f"pruned {total} row(s) older than {svc.settings.rest_log_days:g} days")


def _writer() -> RestLogWriter:
    writer = ready().rest_log
    if writer is None:  # only a test's hand-built Services lacks it
        raise click.ClickException("this app instance has no REST log")
    return writer
