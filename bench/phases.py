"""The benchmark's phases: each drives the simulator and one app, and returns raw figures.

Cold view, warm-view latency against bare round trips, throughput with N viewers, the viewer
and stored-token refresh storms, warm views during a slow refresh. The arithmetic is
bench/stats.py; the clients are bench/loadgen.py.
"""

from __future__ import annotations

import http.client
import json
import os
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import requests

from bench.config import Config
from bench.loadgen import Conn, OneShot, new_session
from bench.servers import PY, Procs, Sim, Subject, counts
from bench.stats import latency_summary, pct, throughput_summary
from devtools.harness import AppProcess
from devtools.harness.processes import cpu_seconds, machine_busy
from devtools.harness.settings import ROOT
from leadcard.bitrix24.rest import php_query
from leadcard.flows.lead_context import context_commands


def install(sim: Sim, app: AppProcess) -> dict:
    url, form = sim.install_request(user_id=1)
    r = requests.post(url, data=form, timeout=60, allow_redirects=False)
    if r.status_code != 200:
        raise SystemExit(f"install POST answered {r.status_code}: {r.text[:300]}")
    delivery = sim.finish_install(user_id=1)
    return {
        "install_status": r.status_code,
        "onappinstall_delivery": delivery,
        "stored_access_token": form["AUTH_ID"],
    }


def view(session: requests.Session, url: str, form: dict, timeout: float = 60) -> requests.Response:
    return session.post(url, data=form, timeout=timeout, allow_redirects=False)


def phase_cold(sim: Sim) -> dict:
    """First view after the app started: every per-process cache is empty."""
    url, form = sim.placement_request()
    sim.reset_stats()
    with new_session() as s:
        t0 = time.perf_counter()
        r = view(s, url, form)
        elapsed = time.perf_counter() - t0
    c = counts(sim.stats())
    return {
        "status": r.status_code,
        "seconds": elapsed,
        "requests": c["rest"],
        "methods": c["methods"],
        "batch_commands": c["batch_commands"],
    }


def phase_latency(sim: Sim, rounds: int, warmup: int, edit: bool = False) -> dict:
    """Warm views (same lead, same viewer) interleaved with bare crm.lead.get (keep-alive).

    ``edit``: the lead is changed at the simulator (untimed) before every view, so no view can
    reuse an earlier rendered card (leadcard/card/rendered.py): the full build-and-render path.
    """
    url, form = sim.placement_request()
    token = sim.tokens()["access_token"]
    bare_url = sim.portal["client_endpoint"].rstrip("/") + "/crm.lead.get"
    bare_body = {"id": sim.lead_id, "auth": token}
    # The app's warm view asks one batch: the lead and its context panels. The same batch,
    # sent bare, is the round trip the app cannot beat (issue 12's second ratio).
    batch_url = sim.portal["client_endpoint"].rstrip("/") + "/batch"
    batch_body = {"auth": token, "halt": 0, "cmd": warm_view_commands(int(sim.lead_id))}
    app_s, bare_s = Conn(url), Conn(bare_url, timeout=30)
    batch_s = Conn(batch_url, timeout=30)
    try:
        for _ in range(warmup):
            if app_s.form(url, form)[0] != 200 or bare_s.json(bare_url, bare_body)[0] != 200:
                raise SystemExit("warm-up view or bare call failed")
        sim.reset_stats()
        views, bares, batches, bad = [], [], [], 0
        busy0, started = machine_busy()[0], time.perf_counter()
        for round_no in range(rounds):
            if edit:
                sim.edit_lead(sim.lead_id, round_no)
            t0 = time.perf_counter()
            r_status, _ = app_s.form(url, form)
            t1 = time.perf_counter()
            b_status, b_body = bare_s.json(bare_url, bare_body)
            t2 = time.perf_counter()
            batch_status, batch_answer = batch_s.json(batch_url, batch_body)
            t3 = time.perf_counter()
            if r_status != 200 or b_status != 200 or "error" in json.loads(b_body):
                bad += 1
            if batch_status != 200 or json.loads(batch_answer)["result"]["result_error"]:
                bad += 1
            views.append(t1 - t0)
            bares.append(t2 - t1)
            batches.append(t3 - t2)
        machine_cores = (machine_busy()[0] - busy0) / (time.perf_counter() - started)
        c = counts(sim.stats())
    finally:
        app_s.close()
        bare_s.close()
        batch_s.close()
    return latency_summary(views, bares, bad, c["rest"], c["methods"], machine_cores, batches)


def warm_view_commands(lead_id: int) -> dict[str, str]:
    """The ``cmd`` of Lead Card's warm-view batch, as the app encodes it."""
    commands = {"lead": ("crm.lead.get", {"id": lead_id}), **context_commands(lead_id)}
    return {key: f"{method}?{php_query(params)}" for key, (method, params) in commands.items()}


def start_py_spy(
    procs: Procs, out_dir: Path, label: str, pids: list[int], seconds: float, fmt: str
) -> list:
    """py-spy profiles (GIL-holding samples) of the given processes, as flame graphs or as
    collapsed stacks (``fmt`` "raw": one line per stack, for grep and scripts); only with
    --py-spy; py-spy is not a project dependency: `.venv/bin/pip install py-spy`."""
    exe = Path(PY).with_name("py-spy")
    if not exe.exists():
        print(f"  (--py-spy: {exe} not found; `.venv/bin/pip install py-spy` to profile)")
        return []
    out_dir.mkdir(parents=True, exist_ok=True)
    return [
        procs.start(
            [
                str(exe),
                "record",
                "--pid",
                str(pid),
                "--duration",
                str(int(seconds) + 1),
                "--rate",
                "200",
                "--gil",
                "--format",
                fmt,
                "--output",
                str(out_dir / f"{label}-{pid}.{'txt' if fmt == 'raw' else 'svg'}"),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for pid in pids
    ]


def phase_throughput(
    sim: Sim,
    app: AppProcess,
    n: int,
    duration: float,
    warmup: int,
    bare_rtt: float,
    slots: int,
    spy: Callable[[], list] | None = None,
    keepalive: bool = False,
) -> dict:
    """N viewers, each with its own viewer token, for `duration` seconds.

    Each view opens a new connection and says `Connection: close`, as a reverse proxy in front
    of gunicorn does by default (gunicorn.conf.py turns keep-alive off anyway). ``keepalive``:
    each viewer tries to keep one connection instead, which only holds with keep-alive turned
    on (GUNICORN_KEEPALIVE); then which worker serves a viewer is decided once, by the accept
    race when the 16 connections open together, and a 10/6 split leaves slots idle for the
    whole window (runs varied 59-79 % of ideal on the same code).
    """
    forms = [sim.placement_request() for _ in range(n)]
    ready = threading.Barrier(n + 1)
    go = threading.Event()
    stop_at = [0.0]
    results: list[list[tuple[float, int]]] = [[] for _ in range(n)]
    failures: list[str] = []

    def viewer(i: int) -> None:
        url, form = forms[i]  # the app's handler URL, as registered at install
        if keepalive:
            conn = Conn(app.url)
            post = lambda: conn.form(url, form)  # noqa: E731
        else:
            post = OneShot(url, form).post
        try:
            for _ in range(warmup):
                post()
        except (http.client.HTTPException, OSError) as exc:
            failures.append(type(exc).__name__)
        ready.wait()
        go.wait()
        while time.perf_counter() < stop_at[0]:
            t0 = time.perf_counter()
            try:
                status = post()[0]
            except (http.client.HTTPException, OSError) as exc:
                failures.append(type(exc).__name__)
                status = 0
            results[i].append((time.perf_counter() - t0, status))
        if keepalive:
            conn.close()

    # One probe, sequential bare crm.lead.get calls during the window: does the simulator
    # (and the machine) still answer in one RTT while the app is loaded?
    probe_token = sim.tokens()["access_token"]
    probe_url = sim.portal["client_endpoint"].rstrip("/") + "/crm.lead.get"
    probe_times: list[float] = []

    def probe() -> None:
        ps = Conn(probe_url, timeout=30)
        try:
            ps.json(probe_url, {"id": sim.lead_id, "auth": probe_token})
            go.wait()
            while time.perf_counter() < stop_at[0]:
                t0 = time.perf_counter()
                ps.json(probe_url, {"id": sim.lead_id, "auth": probe_token})
                probe_times.append(time.perf_counter() - t0)
        finally:
            ps.close()

    threads = [threading.Thread(target=viewer, args=(i,), daemon=True) for i in range(n)]
    prober = threading.Thread(target=probe, daemon=True)
    for t in threads:
        t.start()
    prober.start()
    ready.wait(timeout=120)
    sim.reset_stats()
    app_pids, sim_pid = app.pids(), sim.proc.pid
    cpu_app0, cpu_sim0, cpu_me0 = cpu_seconds(app_pids), cpu_seconds([sim_pid]), time.process_time()
    busy0, _ = machine_busy()
    spies = spy() if spy else []
    start = time.perf_counter()
    stop_at[0] = start + duration
    go.set()
    for t in threads:
        t.join(timeout=duration + 90)
    elapsed = time.perf_counter() - start
    prober.join(timeout=30)
    for p in spies:
        try:
            p.wait(timeout=30)
        except subprocess.TimeoutExpired:
            pass
    cpu_app = cpu_seconds(app_pids) - cpu_app0
    cpu_sim = cpu_seconds([sim_pid]) - cpu_sim0
    cpu_me = time.process_time() - cpu_me0
    machine = machine_busy()[0] - busy0
    c = counts(sim.stats())
    return throughput_summary(
        results=results, client_failures=len(failures), elapsed=elapsed, slots=slots,
        bare_rtt=bare_rtt, probe_times=probe_times, rest_requests=c["rest"],
        methods=c["methods"], rate_limited=c["rate_limited"], cpu_app=cpu_app,
        cpu_sim=cpu_sim, cpu_client=cpu_me, machine_busy=machine, cores=os.cpu_count() or 1,
        workers=len(app.worker_pids()),
    )


def phase_viewer_storm(sim: Sim, m: int) -> dict:
    """M concurrent views carrying the same expired AUTH_ID and the same REFRESH_ID."""
    url, form = sim.placement_request()
    sim.expire_token(form["AUTH_ID"])
    sessions = [new_session() for _ in range(m)]
    barrier = threading.Barrier(m)
    statuses: list[int] = [0] * m
    times: list[float] = [0.0] * m

    def one(i: int) -> None:
        barrier.wait()
        t0 = time.perf_counter()
        try:
            statuses[i] = view(sessions[i], url, form).status_code
        except requests.RequestException:
            statuses[i] = -1
        times[i] = time.perf_counter() - t0

    sim.reset_stats()
    threads = [threading.Thread(target=one, args=(i,), daemon=True) for i in range(m)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    for s in sessions:
        s.close()
    c = counts(sim.stats())
    return {
        "m": m,
        "refresh_calls": c["refresh"],
        "ok": statuses.count(200),
        "statuses": {str(s): statuses.count(s) for s in sorted(set(statuses))},
        "max_seconds": max(times),
        "token_statuses": c["token_statuses"],
        "rest_requests": c["rest"],
    }


def phase_refresh_stall(sim: Sim, cfg: Config, oauth_latency: float, viewers: int = 4) -> dict:
    """Warm views while ONE viewer-token refresh waits on a slow token endpoint.

    Only the OAuth server is slowed (knob `oauth_latency`); the warm views never call it.
    Any delay they see comes from waiting on something the refresh holds.
    """
    forms = [sim.placement_request() for _ in range(viewers)]
    sessions = [new_session() for _ in range(viewers)]
    for (url, form), s in zip(forms, sessions, strict=True):
        for _ in range(2):
            view(s, url, form)
    before = []
    for (url, form), s in zip(forms, sessions, strict=True):
        t0 = time.perf_counter()
        view(s, url, form)
        before.append(time.perf_counter() - t0)
    url, form = sim.placement_request()
    sim.expire_token(form["AUTH_ID"])
    sim.knobs(oauth_latency=oauth_latency)
    out: dict[str, Any] = {}
    try:

        def expired_view() -> None:
            with new_session() as s:
                t0 = time.perf_counter()
                out["refresh_status"] = view(s, url, form).status_code
                out["refresh_view_seconds"] = time.perf_counter() - t0

        refresher = threading.Thread(target=expired_view, daemon=True)
        refresher.start()
        time.sleep(min(0.2, oauth_latency / 4))  # the refresh is now waiting on the OAuth server
        during: list[float] = [0.0] * viewers

        def warm(i: int) -> None:
            t0 = time.perf_counter()
            view(sessions[i], *forms[i])
            during[i] = time.perf_counter() - t0

        ws = [threading.Thread(target=warm, args=(i,), daemon=True) for i in range(viewers)]
        for w in ws:
            w.start()
        for w in ws:
            w.join(timeout=60)
        refresher.join(timeout=60)
    finally:
        sim.knobs(oauth_latency=cfg.latency)
        for s in sessions:
            s.close()
    return {
        "oauth_latency": oauth_latency,
        "warm_before_p50": pct(before, 50),
        "warm_during_max": max(during),
        "warm_during_p50": pct(during, 50),
        **out,
    }


def phase_stored_storm(
    procs: Procs, sim: Sim, app: AppProcess, subject: Subject, m: int, stored_token: str, tmp: Path
) -> dict:
    """M parallel processes, each running the app-level command once with the stored token."""
    sim.expire_token(stored_token)
    drivers, logs = [], []
    for i in range(m):
        logs.append(open(tmp / f"storm-{subject.key}-{i}.log", "wb"))
        drivers.append(
            procs.start(
                [PY, "-m", "bench.storm_driver", subject.storm_driver],
                env=app.env,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=logs[-1],
                text=True,
            )
        )
    try:
        for d in drivers:  # imports done in every process before anyone goes
            line = ""
            end = time.monotonic() + 120
            while line.strip() != "READY" and time.monotonic() < end:
                line = d.stdout.readline()
                if not line and d.poll() is not None:
                    raise SystemExit(f"storm driver failed; see {tmp}/storm-{subject.key}-*.log")
        sim.reset_stats()
        for d in drivers:
            d.stdin.write("go\n")
        for d in drivers:
            d.stdin.flush()
        results = []
        for d in drivers:
            out, _ = d.communicate(timeout=120)
            line = next(
                (ln for ln in out.splitlines() if ln.startswith("RESULT ")), "RESULT -1 no result"
            )
            results.append(line.split(" ", 2)[1:])
    finally:
        for d in drivers:
            procs.stop(d)
        for fh in logs:
            fh.close()
    c = counts(sim.stats())
    ok = sum(1 for code, *_ in results if code == "0")
    # One real CLI run afterwards: is the stored grant still usable after the storm?
    post = subprocess.run(
        subject.post_check, cwd=ROOT, env=app.env, capture_output=True, text=True, timeout=120
    )
    return {
        "m": m,
        "refresh_calls": c["refresh"],
        "ok": ok,
        "outputs": sorted({" ".join(r) for r in results}),
        "token_statuses": c["token_statuses"],
        "post_check_exit": post.returncode,
        "post_check_output": (post.stdout.strip().splitlines() or [post.stderr.strip()[-200:]])[0],
    }


# --- orchestration ------------------------------------------------------------------------------
