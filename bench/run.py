"""Lead Card benchmark: real gunicorn, real HTTP, the local Bitrix24 simulator with injected latency.

    .venv/bin/python -m bench.run [--quick] [--latency 0.05] [--workers 2] [--threads 8] ...

Measures, for Lead Card and for a hand-made baseline (`bench/baseline_app.py`) served by the
same gunicorn settings, in ONE run (the machine is shared and noisy, so every figure is read
as a ratio against a baseline measured in the same run):

1. warm view latency p50/p95, and its ratio to one bare `crm.lead.get` round trip to the
   simulator over a keep-alive client (interleaved with the views, round by round); then the
   same with the lead edited at the simulator before every view, so no view can reuse a
   rendered card (leadcard/card/rendered.py);
2. upstream requests per view, cold (first view after the app started: empty caches) and warm,
   counted by the simulator;
3. throughput with N parallel viewers (a new connection per view, or `--keepalive-viewers`)
   against the ideal `workers x threads / RTT`;
4. refresh storms: M concurrent views carrying the same expired AUTH_ID + REFRESH_ID, and M
   concurrent app-level commands (`flask portals check`) needing the same expired stored token
   -> calls the token endpoint received; plus warm views while one refresh waits on a slow
   token endpoint (does a refresh hold up other viewers?);
5. (Lead Card only, after the latency rounds; `--no-paint` skips it) the card painted in
   Chromium: the simulator's lead page POSTs the placement into the frame; first contentful
   paint and frame fit, cold and warm browser cache, page weight (bench/paint.py, which also
   runs alone with more runs and writes its own docs block);

then prints a table and (unless --no-doc) writes it into docs/performance.md.

Modules, one job each: `config` (targets, command line, Config), `servers` (the subjects and
the simulator, started with devtools/harness), `loadgen` (the cheap HTTP clients), `phases`
(the measurements), `stats` (their arithmetic), `report` (table, notes, docs block); this
module only runs them in order.

Everything listens on 127.0.0.1 only; every loop is bounded by a count or a duration; every
process this script starts is stopped by its id when it ends (also on Ctrl-C / errors).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import platform
import shlex
import signal
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if __package__ in (None, ""):  # `python bench/run.py`
    sys.path.insert(0, str(ROOT))

from bench.config import PORTAL, Config, config_from_args, parse_args
from bench.phases import (
    install,
    phase_cold,
    phase_latency,
    phase_refresh_stall,
    phase_stored_storm,
    phase_throughput,
    phase_viewer_storm,
    start_py_spy,
)
from bench.report import (
    build_table,
    render_markdown,
    render_text,
    speedups,
    target_notes,
    write_doc,
)
from bench.servers import SUBJECTS, Procs, Sim, Subject, start_app
from bench.stats import ms
from devtools.harness import free_ports

# --- orchestration ------------------------------------------------------------------------------


def run_subject(cfg: Config, procs: Procs, subject: Subject, log: Callable[[str], None]) -> dict:
    (cfg.tmp / subject.key).mkdir(parents=True, exist_ok=True)
    (app_port,) = free_ports(1)
    sim = Sim(
        procs,
        f"http://127.0.0.1:{app_port}",
        cfg.tmp / subject.key / "simulator.log",
        cfg.sim_server,
        cfg.lead_id,
    )
    app = None
    try:
        # Upstream latency on every REST request and on the token endpoint; the simulator's
        # own leaky bucket (2 req/s, burst 50) off for the portal so it never interferes.
        sim.knobs(latency=cfg.latency, oauth_latency=cfg.latency)
        sim.knobs(portal=PORTAL, latency=cfg.latency, rate_limit=False)
        app = start_app(procs, cfg, subject, sim, app_port)
        log(
            f"[{subject.key}] gunicorn up: {' '.join(app.cmd[1:])} "
            f"(WEB_CONCURRENCY={cfg.workers} GUNICORN_THREADS={cfg.threads}, workers {app.worker_pids()})"
        )
        inst = install(sim, app)
        log(
            f"[{subject.key}] installed (install POST {inst['install_status']}, "
            f"ONAPPINSTALL delivery {inst['onappinstall_delivery']})"
        )
        out: dict[str, Any] = {
            "install": {k: v for k, v in inst.items() if k != "stored_access_token"}
        }
        out["cold"] = phase_cold(sim)
        if out["cold"]["status"] != 200:
            raise SystemExit(
                f"[{subject.key}] first view answered HTTP {out['cold']['status']}; "
                f"see {app.log_path}"
            )
        log(
            f"[{subject.key}] cold view: {out['cold']['requests']} upstream request(s) "
            f"{out['cold']['methods']} in {ms(out['cold']['seconds'])} ms"
        )
        rounds = cfg.rounds if subject.key == "leadcard" else cfg.baseline_rounds
        out["latency"] = phase_latency(sim, rounds, cfg.warmup_views)
        lat = out["latency"]
        log(
            f"[{subject.key}] warm view p50 {ms(lat['view_p50'])} ms p95 {ms(lat['view_p95'])} ms; "
            f"bare crm.lead.get p50 {ms(lat['bare_p50'])} ms -> ratio {lat['ratio_p50']:.3f}; "
            f"{lat['requests_per_view']:.2f} req/view {lat['methods']}; bare batch of the same "
            f"commands p50 {ms(lat['batch_p50'])} ms -> ratio {lat['ratio_batch_p50']:.3f}"
        )
        out["latency_edited"] = phase_latency(sim, max(rounds // 2, 10), 0, edit=True)
        led = out["latency_edited"]
        log(
            f"[{subject.key}] warm view of a lead edited before every view: p50 "
            f"{ms(led['view_p50'])} ms (bare {ms(led['bare_p50'])} ms) -> ratio "
            f"{led['ratio_p50']:.3f}; {led['requests_per_view']:.2f} req/view"
        )
        if subject.key == "leadcard" and cfg.paint:
            out["paint"] = run_paint(cfg, sim, app, log)
        spy = None
        if cfg.py_spy:
            spy = lambda: [
                *start_py_spy(
                    procs, cfg.py_spy, subject.key, app.worker_pids(), cfg.duration, cfg.py_spy_format
                ),
                *start_py_spy(
                    procs, cfg.py_spy, f"{subject.key}-simulator", [sim.proc.pid], cfg.duration,
                    cfg.py_spy_format,
                ),
            ]
        out["throughput"] = phase_throughput(
            sim,
            app,
            cfg.viewers,
            cfg.duration,
            cfg.warmup_views,
            lat["bare_p50"],
            cfg.workers * cfg.threads,
            spy,
            cfg.keepalive_viewers,
        )
        tp = out["throughput"]
        tp["ideal_nominal"] = cfg.workers * cfg.threads / cfg.latency
        log(
            f"[{subject.key}] throughput {tp['throughput']:.1f} views/s with {tp['viewers']} viewers "
            f"= {tp['pct_of_ideal']:.1f}% of ideal {tp['ideal']:.1f}/s; p50 {ms(tp['p50'])} ms "
            f"p95 {ms(tp['p95'])} ms (bare RTT meanwhile p50 {ms(tp['bare_under_load_p50'])} ms "
            f"p95 {ms(tp['bare_under_load_p95'])} ms); {tp['requests_per_view']:.2f} req/view; "
            f"CPU ms/view {json.dumps({k: round(v, 2) for k, v in tp['cpu_ms_per_view'].items()})}, "
            f"{tp['cpu_cores_busy']:.2f} cores busy (+{tp['other_cores_busy']:.2f} by other processes); "
            f"CPU ceiling {tp['cpu_ceiling']:.0f} views/s"
        )
        out["viewer_storm"] = phase_viewer_storm(sim, cfg.storm)
        vs = out["viewer_storm"]
        log(
            f"[{subject.key}] viewer refresh storm: {vs['m']} views -> {vs['refresh_calls']} "
            f"refresh call(s), {vs['ok']} answered 200 {vs['statuses']}"
        )
        out["refresh_stall"] = phase_refresh_stall(sim, cfg, cfg.stall_oauth_latency)
        st = out["refresh_stall"]
        log(
            f"[{subject.key}] warm views while one viewer refresh waits {st['oauth_latency']:.1f} s on the "
            f"token endpoint: max {ms(st['warm_during_max'])} ms (before: p50 {ms(st['warm_before_p50'])} ms)"
        )
        out["stored_storm"] = phase_stored_storm(
            procs, sim, app, subject, cfg.storm_procs, inst["stored_access_token"], cfg.tmp
        )
        ss = out["stored_storm"]
        log(
            f"[{subject.key}] stored-token storm: {ss['m']} processes -> {ss['refresh_calls']} "
            f"refresh call(s), {ss['ok']} ok; post-check exit {ss['post_check_exit']} "
            f"({ss['post_check_output']})"
        )
        return out
    finally:
        if app is not None:
            procs.stop_server(app)
        procs.stop_server(sim.process)
        sim.close()


def run_paint(cfg: Config, sim: Sim, app: Any, log: Callable[[str], None]) -> dict | None:
    """The card painted in Chromium (bench/paint.py, fewer runs); None without Chromium."""
    from bench.paint import CHROMIUM, phase_paint

    if not os.path.exists(CHROMIUM):
        log(f"[leadcard] paint phase skipped: no {CHROMIUM} (`python -m bench.paint` needs it too)")
        return None
    runs = 3 if cfg.quick else 8
    res = phase_paint(sim.portal["base_url"], app.url, cfg.lead_id, runs, cfg.latency,
                      log=lambda s: None)
    cold, warm = res["cold"], res["warm"]
    log(
        f"[leadcard] paint ({runs} runs): first contentful paint cold median "
        f"{cold['fcp']['median']:.0f} ms, warm {warm['fcp']['median']:.0f} ms after the placement "
        f"POST; frame fitted cold {cold['fitted']['median']:.0f} ms, warm "
        f"{warm['fitted']['median']:.0f} ms; page {res['weight']['total']['transfer']:,} bytes "
        f"transferred cold, frame library {res['weight']['sdk_share']['transfer'] * 100:.0f} %"
    )
    return res


def machine_notes(cfg: Config) -> dict:
    load = os.getloadavg()
    try:
        with open("/proc/cpuinfo") as fh:
            model = next(
                (ln.split(":", 1)[1].strip() for ln in fh if ln.startswith("model name")), "?"
            )
    except OSError:
        model = "?"
    import gunicorn

    return {
        "cores": os.cpu_count(),
        "cpu": model,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "gunicorn": gunicorn.__version__,
        "loadavg_at_start": [round(x, 2) for x in load],
    }


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv, description=__doc__.split("\n\n")[0])
    tmp = Path(tempfile.mkdtemp(prefix="leadcard-bench-"))
    cfg = config_from_args(args, tmp)
    command = ".venv/bin/python -m bench.run" + (
        ""
        if not argv and not sys.argv[1:]
        else " " + " ".join(shlex.quote(a) for a in (argv if argv is not None else sys.argv[1:]))
    )
    notes = machine_notes(cfg)
    notes["date"] = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    print(f"Lead Card benchmark — {notes['date']}")
    print(
        f"machine: {notes['cores']} cores, {notes['cpu']}, Python {notes['python']}, gunicorn "
        f"{notes['gunicorn']}, load {notes['loadavg_at_start']}"
    )
    print(
        f"gunicorn -c gunicorn.conf.py: WEB_CONCURRENCY={cfg.workers} GUNICORN_THREADS={cfg.threads}; "
        f"injected latency {cfg.latency * 1000:.0f} ms; viewers {cfg.viewers}; tmp {tmp}",
        flush=True,
    )

    procs = Procs()
    previous = signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    results: dict[str, Any] = {}
    started = time.monotonic()
    finished = False
    try:
        for key in ["leadcard", "baseline"] if not cfg.only else [cfg.only]:
            results[key] = run_subject(cfg, procs, SUBJECTS[key], lambda s: print(s, flush=True))
        finished = True
    except KeyboardInterrupt:
        print("interrupted; stopping everything this run started", file=sys.stderr)
        return 130
    finally:
        procs.stop_all()
        signal.signal(signal.SIGTERM, previous)
        if finished and not args.keep_tmp:
            import shutil

            shutil.rmtree(tmp, ignore_errors=True)
        else:
            print(f"logs and databases kept in {tmp}", file=sys.stderr)
    notes["wall_seconds"] = round(time.monotonic() - started, 1)

    if "leadcard" not in results:
        print(json.dumps(results, indent=2, default=str))
        return 0
    header, rows = build_table(cfg, results)
    print()
    print(render_text(header, rows))
    for line in speedups(results):
        print("  " + line)
    for line in target_notes(cfg, results):
        print("  MISSED: " + line)
    print(f"(wall time {notes['wall_seconds']} s)")
    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    "config": {k: str(v) for k, v in vars(cfg).items()},
                    "notes": notes,
                    "results": results,
                },
                indent=2,
                default=str,
            )
        )
    if not args.no_doc:
        doc = ROOT / "docs" / "performance.md"
        write_doc(doc, cfg, results, command, render_markdown(header, rows), notes)
        print(f"results written to {doc.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
