"""bench/config.py: the command line and the defaults --quick changes (no servers)."""

from pathlib import Path

import pytest

from bench.config import LEAD_ID, TARGETS, config_from_args, parse_args


def _config(*argv: str):
    return config_from_args(parse_args(list(argv)), Path("/tmp/bench-test"))


def test_full_run_defaults():
    cfg = _config()
    assert (cfg.latency, cfg.workers, cfg.threads) == (0.05, 2, 8)
    assert cfg.viewers == 16  # every gunicorn slot: workers x threads
    assert (cfg.rounds, cfg.baseline_rounds, cfg.duration) == (150, 50, 10.0)
    assert (cfg.storm, cfg.storm_procs, cfg.warmup_views) == (16, 6, 5)
    assert cfg.lead_id == LEAD_ID and cfg.only is None and not cfg.quick
    assert cfg.sim_server == "keepalive" and not cfg.keepalive_viewers
    assert cfg.tmp == Path("/tmp/bench-test")


def test_quick_run_is_shorter():
    cfg = _config("--quick")
    assert cfg.quick
    assert (cfg.rounds, cfg.baseline_rounds, cfg.duration) == (40, 13, 4.0)
    assert (cfg.storm, cfg.storm_procs, cfg.warmup_views) == (8, 3, 3)


def test_explicit_figures_win_over_quick_defaults():
    cfg = _config("--quick", "--rounds", "300", "--storm", "4", "--duration", "2.5",
                  "--workers", "3", "--threads", "2", "--lead", "102", "--only", "leadcard")
    assert (cfg.rounds, cfg.baseline_rounds) == (300, 100)
    assert (cfg.storm, cfg.duration, cfg.viewers) == (4, 2.5, 6)
    assert cfg.lead_id == 102 and cfg.only == "leadcard"


def test_baseline_rounds_never_below_ten():
    assert _config("--rounds", "12").baseline_rounds == 10


@pytest.mark.parametrize("argv", [["--only", "nginx"], ["--sim-server", "apache"],
                                  ["--workers", "two"]])
def test_bad_command_lines_are_refused(argv, capsys):
    with pytest.raises(SystemExit):
        parse_args(argv)


def test_targets_are_the_issue_figures():
    assert TARGETS == {"warm_ratio": 1.10, "warm_requests": 1, "throughput_pct": 80.0,
                       "refresh_calls": 1}
