"""bench/report.py: the results table, the missed-target notes, the docs block (no servers)."""

from pathlib import Path

from bench.config import config_from_args, parse_args
from bench.report import (
    END_MARKER,
    START_MARKER,
    _methods,
    build_table,
    render_markdown,
    render_text,
    replace_block,
    results_block,
    speedups,
    target_notes,
)


def _subject(view_p50=0.052, bare_p50=0.050, requests=1.0, pct_of_ideal=85.0, refreshes=1):
    latency = {"rounds": 40, "bare_p50": bare_p50, "bare_p95": 0.06, "view_p50": view_p50,
               "view_p95": 0.07, "ratio_p50": view_p50 / bare_p50, "ratio_p95": 0.07 / 0.06,
               "machine_cores_busy": 0.15, "overhead_p50_ms": (view_p50 - bare_p50) * 1000,
               "requests_per_view": requests, "methods": {"crm.lead.get": 40 * requests},
               "batch_p50": bare_p50 * 1.02, "batch_p95": 0.065,
               "ratio_batch_p50": view_p50 / (bare_p50 * 1.02)}
    return {
        "latency": latency,
        "latency_edited": dict(latency, rounds=20),
        "cold": {"requests": 2, "methods": {"batch": 1, "crm.lead.get": 1}},
        "throughput": {"throughput": 0.8 * pct_of_ideal, "ideal": 80.0, "pct_of_ideal": pct_of_ideal,
                       "p50": 0.06, "p95": 0.09, "bare_under_load_p50": 0.05,
                       "bare_under_load_p95": 0.055, "requests_per_view": requests,
                       "cpu_ms_per_view": {"app": 4.0, "simulator": 2.0, "client": 0.5},
                       "cpu_cores_busy": 1.2, "other_cores_busy": 0.1, "cpu_ceiling": 300.0,
                       "app_cpu_ceiling": 500.0, "failures": 0},
        "viewer_storm": {"refresh_calls": refreshes, "ok": 16, "m": 16},
        "stored_storm": {"refresh_calls": refreshes, "ok": 6, "m": 6, "post_check_exit": 0},
        "refresh_stall": {"warm_during_max": 0.06, "warm_before_p50": 0.052},
    }


CFG = config_from_args(parse_args(["--quick"]), Path("/tmp/bench-test"))


def test_table_rows_and_verdicts_for_a_run_that_meets_every_target():
    res = {"leadcard": _subject(), "baseline": _subject(view_p50=0.3, requests=6.0,
                                                         pct_of_ideal=20.0, refreshes=16)}
    header, rows = build_table(CFG, res)
    assert header == ["metric", "Lead Card", "baseline", "target", "Lead Card vs target"]
    assert all(len(r) == 5 for r in rows)
    by_metric = {r[0]: r for r in rows}
    assert by_metric["warm view p50 / bare RTT p50"][1:] == ("1.040", "6.000", "<= 1.10", "met")
    assert by_metric["upstream requests per warm view"][4] == "met"
    assert by_metric["throughput / ideal"][1:] == ("85.0%", "20.0%", ">= 80%", "met")
    assert by_metric["upstream requests, cold first view"][1] == "2 (batch + lead.get)"
    verdicts = [r[4] for r in rows if r[4]]
    assert verdicts and set(verdicts) == {"met"}
    assert target_notes(CFG, res) == []


def test_missed_targets_say_why():
    res = {"leadcard": _subject(view_p50=0.070, requests=2.0, pct_of_ideal=50.0, refreshes=3)}
    _, rows = build_table(CFG, res)
    # warm ratio, warm / bare batch, requests per view, throughput, the two storms
    assert [r[4] for r in rows if r[4]].count("MISSED") == 6
    assert all(r[2] == "-" for r in rows)  # no baseline measured
    notes = target_notes(CFG, res)
    assert notes[0].startswith("warm ratio 1.400 > 1.10: the app adds 20.0 ms per view")
    assert notes[1].startswith("throughput 50.0% of ideal:")
    assert notes[2:] == ["viewer storm: 3 refresh calls (target 1)",
                         "stored-token storm: 3 refresh calls (target 1)"]


def test_speedups_are_ratios_of_the_same_run():
    res = {"leadcard": _subject(view_p50=0.05), "baseline": _subject(view_p50=0.2,
                                                                      pct_of_ideal=25.0)}
    lines = speedups(res)
    assert "-> 4.00x faster" in lines[0]
    assert lines[1].endswith("-> 3.40x")  # 68 vs 20 views/s
    assert speedups({"leadcard": _subject()}) == []


def test_methods_shortened_and_per_view():
    assert _methods({"crm.lead.get": 1, "batch": 1}) == "batch + lead.get"
    assert _methods({"crm.status.list": 3, "user.get": 1}) == "status.list x3 + user.get"
    assert _methods({"crm.lead.get": 40, "crm.status.list": 60}, per=20) \
        == "lead.get x2 + status.list x3"
    assert _methods({"crm.lead.get": 25}, per=20) == "lead.get x1.25"


def test_text_and_markdown_tables():
    header, rows = ["metric", "value"], [("a", "1"), ("longer name", "x|y")]
    text = render_text(header, rows).splitlines()
    assert text[0] == "metric       value" and text[1] == "-----------  -----"
    assert text[3] == "longer name  x|y  "  # every cell padded to its column
    md = render_markdown(header, rows).splitlines()
    assert md == ["| metric | value |", "|---|---|", "| a | 1 |", "| longer name | x\\|y |"]


def test_docs_block_replaced_between_markers_only():
    text = f"# Performance\n\nhand-written\n\n{START_MARKER}\nold\n{END_MARKER}\n\nmore text\n"
    new = f"{START_MARKER}\nnew\n{END_MARKER}"
    assert replace_block(text, new) == f"# Performance\n\nhand-written\n\n{new}\n\nmore text\n"
    assert replace_block("", new) == f"# Performance\n\n{new}\n"
    assert replace_block("# Perf\n\nintro\n", new) == f"# Perf\n\nintro\n\n{new}\n"


def test_results_block_names_the_run():
    res = {"leadcard": _subject()}
    header, rows = build_table(CFG, res)
    notes = {"date": "2024-01-01 00:00 UTC", "cores": 2, "cpu": "test cpu",
             "loadavg_at_start": [0.1, 0.2, 0.3], "python": "3.11", "gunicorn": "23.0"}
    block = results_block(CFG, res, ".venv/bin/python -m bench.run --quick",
                          render_markdown(header, rows), notes)
    assert block.startswith(START_MARKER + "\nCommand: `.venv/bin/python -m bench.run --quick`")
    assert block.endswith(END_MARKER)
    assert "Viewed: lead 101 of simulated portal `a`" in block
    assert "WEB_CONCURRENCY=2, GUNICORN_THREADS=8" in block
    assert "| warm view p50 / bare RTT p50 | 1.040 | - | <= 1.10 | met |" in block
