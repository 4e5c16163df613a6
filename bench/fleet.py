"""`portals check` over a fleet: how long 10,000 portals take at several concurrencies.

    .venv/bin/python -m bench.fleet [--portals 10000] [--latency 0.05] [--sequential 300]
                                    [--concurrency 16,32,64] [--no-doc]

The fleet simulator (devtools/devportal/fleet.py) hosts the generated portals on one
loopback server in a child process (its CPU is not the app's; `--in-process` shares this
one's GIL instead), every answer after `--latency` seconds; the app is built in this process
on a SQLite file in a temporary folder (DB_POOL_SIZE sized to the largest concurrency, so
no run is capped by the pool), seeded with every portal's grant, then:

- concurrency 1 (today's loop, one portal after another) on the first `--sequential`
  portals only, through flows/fleet.py, extrapolated to the fleet (a full sequential run
  would take longer than the others together);
- each `--concurrency` value: the real command, `flask portals check --concurrency N --json`,
  over the whole fleet, its exit code and its summary checked.

Prints a table and (unless --no-doc) writes it into docs/performance.md between
`<!-- fleet:begin -->` and `<!-- fleet:end -->`. Loopback only; the server is stopped at the
end, also on Ctrl-C.
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import json
import logging
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from devtools.devportal.fleet import Fleet
from devtools.devportal.servers import free_port
from devtools.harness import app_settings, sqlite_url

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "performance.md"
BEGIN, END = "<!-- fleet:begin -->", "<!-- fleet:end -->"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--portals", type=int, default=10_000)
    ap.add_argument("--latency", type=float, default=0.05)
    ap.add_argument("--sequential", type=int, default=300,
                    help="portals timed at concurrency 1 (extrapolated)")
    ap.add_argument("--concurrency", default="16,32,64")
    ap.add_argument("--in-process", action="store_true",
                    help="serve the fleet from a thread of this process (shares the GIL)")
    ap.add_argument("--database-url", default="",
                    help="an empty PostgreSQL database (e.g. a throwaway schema) instead of SQLite")
    ap.add_argument("--no-doc", action="store_true")
    args = ap.parse_args(argv)
    levels = [int(c) for c in args.concurrency.split(",") if c]
    # The simulator has one host for every portal; urllib3 keeps 8 idle sockets per host and
    # says so at every extra one (real portals are 10,000 hosts, each with its own pool).
    logging.getLogger("urllib3.connectionpool").setLevel(logging.ERROR)
    rows: list[tuple[str, int, float, float, str]] = []
    with tempfile.TemporaryDirectory(prefix="leadcard-fleet-") as tmp, \
            _fleet(args) as fleet:
        os.environ["DB_POOL_SIZE"] = str(max(levels + [1]))
        os.environ["DB_POOL_OVERFLOW"] = "4"
        from app import create_app
        from leadcard.flows import fleet as fan_out

        app = create_app(app_settings(
            app_url="http://127.0.0.1:9", oauth_url=fleet.url,
            database_url=args.database_url or sqlite_url(tmp),
            instance_path=Path(tmp) / "instance", B24_CLIENT_ID=fleet.client_id,
            B24_CLIENT_SECRET=fleet.client_secret, LOG_LEVEL="WARNING", DB_AUTO_MIGRATE="1"))
        svc = app.extensions["leadcard"]
        started = time.monotonic()
        fleet.seed(svc.store)
        print(f"seeded {args.portals} portals in {time.monotonic() - started:.1f} s", flush=True)

        n = min(args.sequential, args.portals)
        started = time.monotonic()
        summary = fan_out.run(itertools.islice(fan_out.check_portals(svc.store), n),
                              fan_out.check_job(svc), concurrency=1)
        took = time.monotonic() - started
        assert summary.total == n and summary.failed == 0, summary.as_json()
        rows.append(("1 (today's loop)", n, took, took * args.portals / n, "extrapolated"))
        print(_row(rows[-1]), flush=True)

        runner = app.test_cli_runner()
        for c in levels:
            started = time.monotonic()
            result = runner.invoke(args=["portals", "check", "--concurrency", str(c), "--json"])
            took = time.monotonic() - started
            body = json.loads(result.output[result.output.index("{"):])
            assert result.exit_code == 0 and body["total"] == args.portals, result.output[-500:]
            rows.append((str(body["concurrency"]), args.portals, took, took, "measured"))
            print(_row(rows[-1]), flush=True)
        svc.engine.dispose()
    table = _table(rows, args)
    print(table)
    if not args.no_doc:
        _write_doc(table)
    return 0


@contextlib.contextmanager
def _fleet(args: argparse.Namespace) -> Iterator[Fleet]:
    """The fleet served here, or by a child process and seeded from its twin built here."""
    if args.in_process:
        with Fleet(args.portals, latency=args.latency) as fleet:
            yield fleet
        return
    port = free_port()
    child = subprocess.Popen(  # noqa: S603 - our own module, fixed arguments
        [sys.executable, "-m", "devtools.devportal.fleet", "--portals", str(args.portals),
         "--latency", str(args.latency), "--port", str(port)],
        cwd=ROOT, env=dict(os.environ, PYTHONPATH=str(ROOT)), stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout is not None
        child.stdout.readline()  # "fleet of N on URL": it listens
        yield Fleet(args.portals, latency=args.latency, url=f"http://127.0.0.1:{port}")
    finally:
        child.terminate()
        child.wait(timeout=10)


def _row(row: tuple[str, int, float, float, str]) -> str:
    c, n, took, fleet_s, how = row
    return f"| {c} | {n} | {took:.1f} s | {fleet_s / 60:.1f} min ({fleet_s:.0f} s) | {how} |"


def _table(rows: list[tuple[str, int, float, float, str]], args: argparse.Namespace) -> str:
    base = rows[0][3]
    lines = [
        f"`flask portals check` over {args.portals} simulated portals, {args.latency * 1000:.0f} ms "
        f"per answer (`python -m bench.fleet`, {time.strftime('%Y-%m-%d', time.gmtime())}, "
        f"{'PostgreSQL' if args.database_url else 'SQLite'}, 2 shared cores, fleet served "
        f"{'in-process' if args.in_process else 'by a child process'}):",
        "",
        "| concurrency | portals timed | wall time | whole fleet | how | speed-up |",
        "|---|---|---|---|---|---|",
    ]
    for row in rows:
        lines.append(_row(row) + f" {base / row[3]:.1f}x |")
    return "\n".join(lines)


def _write_doc(table: str) -> None:
    text = DOC.read_text()
    block = f"{BEGIN}\n{table}\n{END}"
    if BEGIN in text and END in text:
        head, rest = text.split(BEGIN, 1)
        text = head + block + rest.split(END, 1)[1]
    else:
        text = text.rstrip("\n") + "\n\n## Fleet commands\n\n" + block + "\n"
    DOC.write_text(text)


if __name__ == "__main__":
    raise SystemExit(main())
