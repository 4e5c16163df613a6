"""The benchmark's arithmetic: percentiles, ratios, per-view figures from raw samples.

Pure: the phases (bench/phases.py) collect timings and counters, these functions turn them
into the figures the report prints (tests/unit/test_bench_stats.py).
"""

from __future__ import annotations

import statistics


def pct(values: list[float], q: float) -> float:
    """Percentile (0..100) by linear interpolation; NaN for no data."""
    if not values:
        return float("nan")
    data = sorted(values)
    k = (len(data) - 1) * q / 100.0
    lo, hi = int(k), min(int(k) + 1, len(data) - 1)
    return data[lo] + (data[hi] - data[lo]) * (k - lo)


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f}"


def without_probe(methods: dict[str, int], probe_calls: int, batch_probes: int = 0) -> dict[str, int]:
    """The app's upstream calls per method: the simulator counted the benchmark's own bare
    `crm.lead.get` and bare `batch` probes too; methods left at zero are dropped."""
    out = dict(methods)
    out["crm.lead.get"] = out.get("crm.lead.get", 0) - probe_calls
    out["batch"] = out.get("batch", 0) - batch_probes
    return {m: n for m, n in out.items() if n}


def latency_summary(views: list[float], bares: list[float], errors: int, rest_requests: int,
                    methods: dict[str, int], machine_cores: float,
                    batches: list[float] | None = None) -> dict:
    """Warm views against bare `crm.lead.get` round trips measured in the same rounds (one
    bare call per round, counted by the simulator among ``rest_requests``) and, when given,
    against bare `batch` calls with the same commands as the app's warm view (also one per
    round and counted)."""
    rounds = len(views)
    batches = batches or []
    extra: dict = {}
    if batches:
        extra = {"batch_p50": pct(batches, 50), "batch_p95": pct(batches, 95),
                 "ratio_batch_p50": pct(views, 50) / pct(batches, 50)}
    return {**extra,
        "rounds": rounds,
        "errors": errors,
        "view_p50": pct(views, 50),
        "view_p95": pct(views, 95),
        "view_mean": statistics.fmean(views),
        "bare_p50": pct(bares, 50),
        "bare_p95": pct(bares, 95),
        "bare_mean": statistics.fmean(bares),
        "ratio_p50": pct(views, 50) / pct(bares, 50),
        "ratio_p95": pct(views, 95) / pct(bares, 95),
        "requests_per_view": (rest_requests - len(bares) - len(batches)) / rounds,
        "methods": without_probe(methods, len(bares), len(batches)),
        "overhead_p50_ms": (pct(views, 50) - pct(bares, 50)) * 1000,
        # whole machine, this benchmark included (one request at a time: ~0.1-0.2 cores)
        "machine_cores_busy": machine_cores,
    }


def throughput_summary(*, results: list[list[tuple[float, int]]], client_failures: int,
                       elapsed: float, slots: int, bare_rtt: float, probe_times: list[float],
                       rest_requests: int, methods: dict[str, int], rate_limited: int,
                       cpu_app: float, cpu_sim: float, cpu_client: float, machine_busy: float,
                       cores: int, workers: int) -> dict:
    """N viewers' (seconds, status) samples over ``elapsed`` seconds against the ideal rate
    ``slots / bare_rtt``, with the CPU each process spent meanwhile (seconds)."""
    lat = [d for per in results for d, st in per if st == 200]
    done = sum(len(per) for per in results)
    ok = len(lat)
    per_viewer = [len(per) for per in results]
    ideal = slots / bare_rtt
    throughput = ok / elapsed
    views = max(done, 1)
    cpu_all = cpu_app + cpu_sim + cpu_client
    return {
        "viewers": len(results),
        "seconds": elapsed,
        "views": done,
        "ok": ok,
        "failures": done - ok + client_failures,
        "throughput": throughput,
        "ideal": ideal,
        "ideal_nominal": None,
        "pct_of_ideal": 100.0 * throughput / ideal,
        "p50": pct(lat, 50),
        "p95": pct(lat, 95),
        "requests_per_view": (rest_requests - len(probe_times)) / views,
        "methods": {**methods, "crm.lead.get": methods.get("crm.lead.get", 0) - len(probe_times)},
        "bare_under_load_p50": pct(probe_times, 50),
        "bare_under_load_p95": pct(probe_times, 95),
        "rate_limited": rate_limited,
        "cpu_ms_per_view": {
            "app": 1000 * cpu_app / views,
            "simulator": 1000 * cpu_sim / views,
            "client": 1000 * cpu_client / views,
        },
        "cpu_cores_busy": cpu_all / elapsed,
        # everything else on the (shared) machine during the window, in cores
        "other_cores_busy": max(machine_busy - cpu_all, 0.0) / elapsed,
        # views/s if every core did nothing but this benchmark's three processes
        "cpu_ceiling": cores * views / max(cpu_all, 1e-9),
        # the same if the app had the cores to itself (production: Bitrix24 and the browsers
        # are elsewhere); a gthread worker uses at most one core (GIL)
        "app_cpu_ceiling": min(cores, workers) * views / max(cpu_app, 1e-9),
        "per_viewer_min_max": (min(per_viewer), max(per_viewer)),
    }
