"""The benchmark's settings: what it measures against (targets), the command line, `Config`.

Pure: nothing here starts a process or opens a socket (tests/unit/test_bench_config.py).
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path

PORTAL = "a"
LEAD_ID = 101  # the rich sample lead: person, company + contact, UF fields, assigned to user 2
VIEWER = 1  # portal admin
SUBJECT_KEYS = ["baseline", "leadcard"]

TARGETS = {"warm_ratio": 1.10, "warm_requests": 1, "throughput_pct": 80.0, "refresh_calls": 1}


@dataclass
class Config:
    latency: float
    workers: int
    threads: int
    viewers: int
    storm: int
    storm_procs: int
    rounds: int
    baseline_rounds: int
    duration: float
    warmup_views: int
    quick: bool
    tmp: Path
    sim_server: str = "keepalive"
    gunicorn_conf: str = "gunicorn.conf.py"
    stall_oauth_latency: float = 1.0
    py_spy: Path | None = None
    py_spy_format: str = "flamegraph"
    rate_per_second: float = 100000.0
    keepalive_viewers: bool = False
    lead_id: int = 101
    only: str | None = None
    paint: bool = True



def parse_args(argv: list[str] | None, description: str = "Lead Card benchmark") -> argparse.Namespace:
    """The command line (`python -m bench.run --help`)."""
    ap = argparse.ArgumentParser(
        prog="python -m bench.run",
        description=description,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    ap.add_argument("--quick", action="store_true", help="short run (~1 min): fewer samples")
    ap.add_argument(
        "--latency", type=float, default=0.05, help="injected upstream latency, s (default 0.05)"
    )
    ap.add_argument("--workers", type=int, default=2, help="WEB_CONCURRENCY (default 2)")
    ap.add_argument("--threads", type=int, default=8, help="GUNICORN_THREADS (default 8)")
    ap.add_argument(
        "--viewers", type=int, default=None, help="parallel viewers (default workers x threads)"
    )
    ap.add_argument(
        "--storm", type=int, default=None, help="concurrent views in the viewer storm (default 16)"
    )
    ap.add_argument(
        "--storm-procs",
        type=int,
        default=None,
        help="processes in the stored-token storm (default 6)",
    )
    ap.add_argument(
        "--rounds", type=int, default=None, help="view/bare rounds for Lead Card (default 150)"
    )
    ap.add_argument(
        "--duration", type=float, default=None, help="throughput window, s (default 10)"
    )
    ap.add_argument(
        "--sim-server",
        choices=["keepalive", "werkzeug"],
        default="keepalive",
        help="HTTP server under the simulator: keepalive (default; bench/keepalive_sim.py) "
        "or werkzeug (as shipped: closes every connection)",
    )
    ap.add_argument(
        "--stall-oauth-latency",
        type=float,
        default=1.0,
        help="token-endpoint delay for the refresh-stall check, s (default 1.0)",
    )
    ap.add_argument(
        "--py-spy",
        type=Path,
        metavar="DIR",
        help="record py-spy flame graphs (--gil) of the workers and the simulator during the "
        "throughput window into DIR (needs `.venv/bin/pip install py-spy`; not a project dependency)",
    )
    ap.add_argument(
        "--py-spy-format",
        choices=["flamegraph", "raw"],
        default="flamegraph",
        help="py-spy output: flamegraph (SVG, default) or raw (collapsed stacks, text)",
    )
    ap.add_argument(
        "--lead",
        type=int,
        default=LEAD_ID,
        help="lead viewed on portal a (default 101, the rich one; 102 is minimal)",
    )
    ap.add_argument("--only", choices=SUBJECT_KEYS, help="measure one subject only")
    ap.add_argument(
        "--keepalive-viewers",
        action="store_true",
        help="throughput viewers keep one connection each (default: a new connection per view)",
    )
    ap.add_argument(
        "--no-paint",
        action="store_true",
        help="skip the paint phase (Chromium: placement POST to the card painted; bench/paint.py)",
    )
    ap.add_argument("--no-doc", action="store_true", help="do not rewrite docs/performance.md")
    ap.add_argument("--json", type=Path, help="also write raw results as JSON to this file")
    ap.add_argument("--keep-tmp", action="store_true", help="keep the temp dir (logs, databases)")
    return ap.parse_args(argv)



def config_from_args(args: argparse.Namespace, tmp: Path) -> Config:
    """The run's `Config`: the command line, with --quick's shorter defaults where a figure
    was not given (viewers default to every gunicorn slot: workers x threads)."""
    quick = args.quick
    rounds = args.rounds or (40 if quick else 150)
    return Config(
        latency=args.latency,
        workers=args.workers,
        threads=args.threads,
        viewers=args.viewers or args.workers * args.threads,
        storm=args.storm or (8 if quick else 16),
        storm_procs=args.storm_procs or (3 if quick else 6),
        rounds=rounds,
        baseline_rounds=max(10, rounds // 3),
        duration=args.duration or (4.0 if quick else 10.0),
        warmup_views=3 if quick else 5,
        quick=quick,
        tmp=tmp,
        sim_server=args.sim_server,
        stall_oauth_latency=args.stall_oauth_latency,
        py_spy=args.py_spy,
        py_spy_format=args.py_spy_format,
        keepalive_viewers=args.keepalive_viewers,
        lead_id=args.lead,
        only=args.only,
        paint=not args.no_paint,
    )
