"""bench/stats.py: percentiles and the per-view figures the report prints (no servers)."""

import math

import pytest

from bench.stats import latency_summary, ms, pct, throughput_summary, without_probe


def test_percentile_interpolates_between_samples():
    assert pct([3.0, 1.0, 2.0], 50) == 2.0
    assert pct([1.0, 2.0, 3.0, 4.0], 50) == 2.5
    assert pct([1.0, 2.0, 3.0, 4.0], 95) == pytest.approx(3.85)
    assert pct([5.0], 95) == 5.0
    assert pct([1.0, 9.0], 0) == 1.0 and pct([1.0, 9.0], 100) == 9.0
    assert math.isnan(pct([], 50))


def test_ms_formats_seconds():
    assert ms(0.05) == "50.0" and ms(0.00125) == "1.2" and ms(1) == "1000.0"


def test_probe_calls_are_not_the_apps():
    assert without_probe({"crm.lead.get": 12, "batch": 2}, 10) == {"crm.lead.get": 2, "batch": 2}
    assert without_probe({"crm.lead.get": 10, "batch": 3}, 10) == {"batch": 3}


def test_latency_summary_ratio_and_requests_per_view():
    views = [0.060, 0.055, 0.065, 0.058]
    bares = [0.050, 0.050, 0.052, 0.048]
    # the simulator saw 4 bare calls + 4 app calls (one crm.lead.get per view)
    out = latency_summary(views, bares, errors=0, rest_requests=8,
                          methods={"crm.lead.get": 8}, machine_cores=0.2)
    assert out["rounds"] == 4 and out["errors"] == 0
    assert out["requests_per_view"] == 1.0
    assert out["methods"] == {"crm.lead.get": 4}
    assert out["view_p50"] == pytest.approx(0.059)
    assert out["bare_p50"] == pytest.approx(0.050)
    assert out["ratio_p50"] == pytest.approx(0.059 / 0.050)
    assert out["overhead_p50_ms"] == pytest.approx(9.0)
    assert out["machine_cores_busy"] == 0.2


def test_latency_summary_counts_extra_upstream_calls():
    out = latency_summary([0.1, 0.1], [0.05, 0.05], errors=1, rest_requests=2 + 2 * 6,
                          methods={"crm.lead.get": 4, "crm.status.list": 6, "user.get": 2},
                          machine_cores=0.1)
    assert out["requests_per_view"] == 6.0 and out["errors"] == 1
    assert out["methods"] == {"crm.lead.get": 2, "crm.status.list": 6, "user.get": 2}
    assert out["ratio_p50"] == pytest.approx(2.0)


def _throughput(**over):
    args = dict(
        # two viewers over 2 s: 3 ok + 1 failed view, 2 ok views
        results=[[(0.1, 200), (0.1, 200), (0.3, 200), (0.2, 502)], [(0.1, 200), (0.1, 200)]],
        client_failures=1, elapsed=2.0, slots=4, bare_rtt=0.05, probe_times=[0.05, 0.06],
        rest_requests=8, methods={"crm.lead.get": 8}, rate_limited=0, cpu_app=0.6,
        cpu_sim=0.3, cpu_client=0.1, machine_busy=1.5, cores=2, workers=2)
    args.update(over)
    return throughput_summary(**args)


def test_throughput_against_the_ideal_rate():
    out = _throughput()
    assert out["viewers"] == 2 and out["views"] == 6 and out["ok"] == 5
    assert out["failures"] == 1 + 1  # the 502 and the client-side error
    assert out["throughput"] == 2.5
    assert out["ideal"] == 80.0  # 4 slots / 50 ms
    assert out["pct_of_ideal"] == pytest.approx(100 * 2.5 / 80)
    assert out["requests_per_view"] == 1.0  # 8 counted - 2 probes over 6 views
    assert out["methods"] == {"crm.lead.get": 6}
    assert out["p50"] == pytest.approx(0.1)
    assert out["bare_under_load_p50"] == pytest.approx(0.055)
    assert out["per_viewer_min_max"] == (2, 4)


def test_throughput_cpu_figures():
    out = _throughput()
    assert out["cpu_ms_per_view"] == pytest.approx({"app": 100.0, "simulator": 50.0,
                                                    "client": 1000 * 0.1 / 6})
    assert out["cpu_cores_busy"] == pytest.approx(0.5)
    assert out["other_cores_busy"] == pytest.approx(0.25)
    assert out["cpu_ceiling"] == pytest.approx(2 * 6 / 1.0)
    assert out["app_cpu_ceiling"] == pytest.approx(2 * 6 / 0.6)
    # one worker uses one core at most (GIL): the app-only ceiling halves
    assert _throughput(workers=1)["app_cpu_ceiling"] == pytest.approx(6 / 0.6)
    # other processes never count negative
    assert _throughput(machine_busy=0.2)["other_cores_busy"] == 0.0


def test_latency_summary_against_a_bare_batch_too():
    # One bare crm.lead.get and one bare batch per round, both counted by the simulator.
    out = latency_summary([0.11, 0.11], [0.05, 0.05], errors=0, rest_requests=2 + 2 + 2,
                          methods={"crm.lead.get": 2, "batch": 4}, machine_cores=0.1,
                          batches=[0.1, 0.1])
    assert out["ratio_batch_p50"] == pytest.approx(1.1)
    assert out["requests_per_view"] == 1
    assert out["methods"] == {"batch": 2}
