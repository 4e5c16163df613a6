"""`flask --app app portals list|check|renew|show`: the stored portals, for the operator.

`check` and `renew` fan out over the fleet (flows/fleet.py owns the threads): a progress bar
on a terminal, plain lines otherwise (one `FAIL member_id domain: code` per failing portal),
a summary by outcome and error code, `--json` for machines. Exit status: 0 all ok, 1 any
portal failed, 2 usage (click), 130 interrupted. Output never contains tokens.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import click
from flask.cli import AppGroup

from leadcard.cli.common import ready
from leadcard.flows import fleet
from leadcard.flows.services import Services
from leadcard.storage import db
from leadcard.storage.portals import UNINSTALLED, Portal

portals_cli = AppGroup("portals", help="Inspect and maintain stored portals.")
INTERRUPTED = 130
_concurrency = click.IntRange(1, fleet.MAX_CONCURRENCY)


@portals_cli.command("list")
def portals_list() -> None:
    """member_id, domain, status and token expiry of every stored portal (never tokens)."""
    count = 0
    click.echo(f"{'member_id':34} {'domain':32} {'status':16} token_expires_at")
    for p in ready().store.iter_all():
        count += 1
        click.echo(f"{p.member_id:34} {p.domain:32} {p.status:16} {_when(p.expires_at)}")
    click.echo(f"{count} portal(s)")


@portals_cli.command("check")
@click.option("--concurrency", type=_concurrency, default=fleet.CHECK_CONCURRENCY,
              show_default=True, help="Portals checked at once (at most 64).")
@click.option("--json", "as_json", is_flag=True, help="Print a machine-readable summary.")
def portals_check(concurrency: int, as_json: bool) -> None:
    """Call app.info on every installed portal with its stored grant (renewing if expired)."""
    svc = ready()
    _fan_out(svc, fleet.check_portals(svc.store), fleet.check_job(svc), concurrency, as_json,
             ok_line="ok   {member_id} {domain}", total=svc.store.count(exclude=UNINSTALLED))


@portals_cli.command("renew")
@click.option("--older-than", "older_than", type=click.FloatRange(min=0), required=True,
              help="Renew grants last renewed more than DAYS ago (refresh tokens live 180 days).")
@click.option("--concurrency", type=_concurrency, default=fleet.RENEW_CONCURRENCY,
              show_default=True, help="Renewals at once (gentle on the OAuth server; at most 64).")
@click.option("--json", "as_json", is_flag=True, help="Print a machine-readable summary.")
def portals_renew(older_than: float, concurrency: int, as_json: bool) -> None:
    """Spend and replace old refresh tokens so rarely used portals stay connected."""
    svc = ready()
    summary = _fan_out(svc, fleet.renew_portals(svc.store, older_than), fleet.renew_job(svc),
                       concurrency, as_json, ok_line="renewed {member_id} {domain}",
                       total=svc.store.count(exclude=UNINSTALLED), finish=False)
    if not as_json:
        click.echo(f"{summary.outcomes[fleet.OK]} renewed, {summary.failed} failed")
    _exit(summary)


@portals_cli.command("show")
@click.argument("member_id")
@click.option("--json", "as_json", is_flag=True, help="Print it as JSON.")
def portals_show(member_id: str, as_json: bool) -> None:
    """One portal: status, domain, token expiry, last refresh, last error, and the last
    day's REST calls and errors by method (from the REST log)."""
    svc = ready()
    portal = svc.store.get(member_id)
    if portal is None:
        click.echo(f"no portal {member_id!r} in the store", err=True)
        sys.exit(2)
    calls: dict[str, tuple[int, int]] = {}
    if svc.rest_log is not None:
        svc.rest_log.flush()
        calls = svc.rest_log.store.summary(member_id, time.time() - 86400)
    info: dict[str, Any] = {
        "member_id": portal.member_id, "domain": portal.domain, "status": portal.status,
        "token_expires_at": _when(portal.expires_at, none=None),
        "last_refresh": portal.refreshed_at.isoformat(timespec="seconds")
        if portal.refreshed_at else None,
        "last_error": portal.last_error,
        "calls_last_24h": {m: {"calls": n, "errors": e} for m, (n, e) in sorted(calls.items())},
    }
    if as_json:
        click.echo(json.dumps(info, indent=2))
        return
    for key in ("member_id", "domain", "status", "token_expires_at", "last_refresh",
                "last_error"):
        click.echo(f"{key + ':':18} {info[key] if info[key] is not None else '-'}")
    click.echo("REST calls, last 24 h:")
    for method, (n, e) in sorted(calls.items()):
        click.echo(f"  {method:40} {n:6} call(s) {e:6} error(s)")
    if not calls:
        click.echo("  none")


# --- the fan-out's terminal side ------------------------------------------------------------

def _fan_out(svc: Services, portals: Iterator[Portal], job: Callable[[Portal], fleet.Outcome],
             concurrency: int, as_json: bool, *, ok_line: str, total: int,
             finish: bool = True) -> fleet.Summary:
    """Run the job over the fleet and print as the terminal allows; exit unless `finish`
    is False (then the caller prints its own last line and calls `_exit`)."""
    threads = fleet.clamp(concurrency, db.pool_capacity(svc.engine))
    if threads < concurrency:
        click.echo(f"concurrency {concurrency} capped at {threads}: the database pool holds "
                   f"{threads} connections (raise DB_POOL_SIZE / DB_POOL_OVERFLOW)", err=True)
    bar_stream = sys.stderr if as_json else sys.stdout
    if _on_terminal(bar_stream):
        with click.progressbar(length=total, label="portals", file=bar_stream,
                               show_pos=True) as bar:
            summary = fleet.run(portals, job, concurrency=threads,
                                on_done=lambda _r: bar.update(1))
        for failure in summary.failures:  # after the bar, which owns the line meanwhile
            _fail_line(failure, as_json)
    else:
        def plain(result: fleet.Outcome) -> None:
            if result.outcome != fleet.OK:
                _fail_line(result, as_json)
            elif not as_json:
                click.echo(ok_line.format(member_id=result.member_id, domain=result.domain))
        summary = fleet.run(portals, job, concurrency=threads, on_done=plain)
    if svc.rest_log is not None:
        svc.rest_log.flush()  # the calls just made are in the REST log before we exit
    if as_json:
        click.echo(json.dumps(dict(summary.as_json(), concurrency=threads), indent=2))
    else:
        _summary_lines(summary)
    if finish:
        _exit(summary)
    return summary


def _on_terminal(stream: Any) -> bool:
    return bool(getattr(stream, "isatty", lambda: False)())


def _fail_line(result: fleet.Outcome, as_json: bool) -> None:
    click.echo(f"FAIL {result.member_id} {result.domain}: {result.code}", err=as_json)


def _summary_lines(summary: fleet.Summary) -> None:
    outcomes = ", ".join(f"{k} {v}" for k, v in sorted(summary.outcomes.items())) or "none"
    click.echo(f"{summary.total} portal(s): {outcomes}"
               + (" (interrupted)" if summary.interrupted else ""), err=True)
    if summary.codes:
        codes = ", ".join(f"{k} {v}" for k, v in summary.codes.most_common())
        click.echo(f"by error code: {codes}", err=True)
    if summary.failed:
        click.echo(f"{summary.failed} portal(s) failed", err=True)


def _exit(summary: fleet.Summary) -> None:
    if summary.interrupted:
        sys.exit(INTERRUPTED)
    if summary.failed:
        sys.exit(1)


def _when(expires_at: float | None, none: str | None = "-") -> str | None:
    if expires_at is None:
        return none
    return datetime.fromtimestamp(expires_at, UTC).isoformat(timespec="seconds")
