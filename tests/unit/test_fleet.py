"""flows/fleet.py, the fan-out of `portals check|renew`: bounded threads, the summary, a
clean stop, failures that never end the run; and the CLI's exit codes over it (fakes)."""

from __future__ import annotations

import threading
from datetime import UTC, datetime

import pytest

from leadcard.core import errors
from leadcard.flows import fleet
from leadcard.storage.records import Portal


def portal(n: int) -> Portal:
    now = datetime.now(UTC)
    return Portal(member_id=f"m{n:04d}", domain=f"p{n}.example", client_endpoint="https://x/rest/",
                  server_endpoint="", scope="crm", license_status="", status="active",
                  language="en", installed_by=1, expires_at=None, token_version=1,
                  placement_bound=True, events_bound=True, has_tokens=True, last_error=None,
                  installed_at=now, updated_at=now, refreshed_at=now)


class Job:
    """Fails the portals in `failing` with their code; records the peak of jobs at once."""

    def __init__(self, failing: dict[int, str] | None = None, gate: threading.Event | None = None):
        self.failing = failing or {}
        self.gate = gate
        self.lock = threading.Lock()
        self.now = self.peak = self.calls = 0

    def __call__(self, p: Portal) -> fleet.Outcome:
        with self.lock:
            self.now += 1
            self.calls += 1
            self.peak = max(self.peak, self.now)
        try:
            if self.gate is not None:
                self.gate.wait(5)
            code = self.failing.get(int(p.member_id[1:]))
            if code == "bug":
                raise errors.PortalError("boom")
            if code:
                return fleet.Outcome(p.member_id, p.domain, fleet.FAILED, code)
            return fleet.Outcome(p.member_id, p.domain, fleet.OK)
        finally:
            with self.lock:
                self.now -= 1


def test_every_portal_once_and_a_summary_by_outcome_and_code():
    job = Job({3: "token_revoked", 7: "token_revoked", 11: "bug"})
    seen: list[str] = []
    summary = fleet.run((portal(n) for n in range(40)), job, concurrency=8, on_done=lambda r: seen.append(r.member_id))
    assert sorted(seen) == [f"m{n:04d}" for n in range(40)]
    assert summary.total == 40 and summary.failed == 3 and not summary.interrupted
    assert summary.outcomes == {"ok": 37, "failed": 3}
    assert summary.codes == {"token_revoked": 2, "portal_error": 1}  # an error is a failure, not the end
    body = summary.as_json()
    assert {f["member_id"] for f in body["failures"]} == {"m0003", "m0007", "m0011"}


def test_concurrency_is_bounded_and_the_source_is_read_lazily():
    gate = threading.Event()
    job = Job(gate=gate)
    pulled = 0

    def source():
        nonlocal pulled
        for n in range(100):
            pulled += 1
            yield portal(n)

    timer = threading.Timer(0.2, gate.set)
    timer.start()
    summary = fleet.run(source(), job, concurrency=4)
    timer.join()
    assert summary.total == 100 and job.peak <= 4 and job.peak >= 2
    assert pulled == 100


def test_ctrl_c_starts_nothing_new_and_joins_every_thread():
    job = Job()
    before = threading.active_count()

    def interrupt(result: fleet.Outcome) -> None:
        if result.member_id == "m0005":
            raise KeyboardInterrupt

    summary = fleet.run((portal(n) for n in range(1000)), job, concurrency=4, on_done=interrupt)
    assert summary.interrupted
    assert job.calls < 50 and summary.total <= job.calls
    assert not any(t.name.startswith("fleet") for t in threading.enumerate())
    assert threading.active_count() == before


def test_a_stop_event_ends_the_run_early():
    stop = threading.Event()
    summary = fleet.run((portal(n) for n in range(500)), Job(), concurrency=2,
                        on_done=lambda r: stop.set(), stop=stop)
    assert summary.interrupted and summary.total < 500


@pytest.mark.parametrize(("asked", "pool", "used"), [
    (16, 20, 16), (64, 20, 20), (0, None, 1), (500, None, fleet.MAX_CONCURRENCY), (8, 15, 8),
])
def test_threads_fit_the_database_pool(asked, pool, used):
    assert fleet.clamp(asked, pool) == used


# --- the command over the fan-out (fake Bitrix24, real store) ------------------------------

@pytest.fixture
def cli(tmp_path):
    from flask import Flask

    from leadcard.cli.portals import portals_cli
    from tests.unit.fakes import FakeBitrix24, fake_services

    fake = FakeBitrix24()
    svc = fake_services(tmp_path, fake)
    names = [f"p{n:02d}" for n in range(12)]
    portals = [fake.add_portal(name) for name in names]
    for p in portals:
        svc.store.save_grant(fake.grant(p))
    app = Flask("fleet-test")
    app.extensions["leadcard"] = svc
    app.cli.add_command(portals_cli)
    yield app.test_cli_runner(), fake, portals, svc
    svc.engine.dispose()


def test_check_prints_a_fail_line_per_failing_portal_and_exits_1(cli):
    runner, fake, portals, svc = cli
    fake.uninstall(portals[2])
    fake.uninstall(portals[5])
    result = runner.invoke(args=["portals", "check", "--concurrency", "4"])
    assert result.exit_code == 1, result.output
    fails = [line for line in result.output.splitlines() if line.startswith("FAIL ")]
    # The fake refuses an uninstalled portal's token (invalid_token).
    assert sorted(fails) == sorted(f"FAIL {p.member_id} {p.domain}: invalid_token"
                                   for p in (portals[2], portals[5]))
    assert result.output.count("ok   ") == 10
    assert "12 portal(s): failed 2, ok 10" in result.output
    assert "by error code: invalid_token 2" in result.output
    for p in portals:  # never a token on screen
        creds = svc.store.credentials(p.member_id)
        assert creds.access_token not in result.output


def test_check_all_ok_exits_0_and_json_is_the_only_stdout(cli):
    import json

    runner, _fake, _portals, _svc = cli
    result = runner.invoke(args=["portals", "check", "--json"])
    assert result.exit_code == 0, result.output
    body = json.loads(result.output)
    assert body["total"] == 12 and body["outcomes"] == {"ok": 12} and body["failures"] == []


def test_on_a_terminal_a_progress_bar_then_the_failures(cli, monkeypatch):
    from leadcard.cli import portals as cli_portals

    runner, fake, portals, _svc = cli
    fake.uninstall(portals[0])
    monkeypatch.setattr(cli_portals, "_on_terminal", lambda stream: True)
    result = runner.invoke(args=["portals", "check"])
    assert result.exit_code == 1
    # click draws the bar only on a real terminal (it asks the stream): its label is here.
    assert result.output.startswith("portals")
    assert "ok   " not in result.output  # no per-portal line under a bar
    assert f"FAIL {portals[0].member_id}" in result.output


def test_ctrl_c_exits_130_with_a_partial_summary(cli, monkeypatch):
    from leadcard.flows import fleet as flows_fleet

    runner, _fake, portals, _svc = cli
    real = flows_fleet.check_job

    def interrupted_job(svc):
        job = real(svc)

        def run(p):
            if p.member_id == portals[3].member_id:
                raise KeyboardInterrupt
            return job(p)
        return run

    monkeypatch.setattr(flows_fleet, "check_job", interrupted_job)
    result = runner.invoke(args=["portals", "check", "--concurrency", "1"])
    assert result.exit_code == 130, result.output
    assert "(interrupted)" in result.output
    assert not any(t.name.startswith("fleet") for t in threading.enumerate())


def test_usage_errors_exit_2(cli):
    runner, *_ = cli
    assert runner.invoke(args=["portals", "check", "--concurrency", "65"]).exit_code == 2
    assert runner.invoke(args=["portals", "renew"]).exit_code == 2
    result = runner.invoke(args=["portals", "show", "nobody"])
    assert result.exit_code == 2 and "no portal 'nobody'" in result.output


def test_renew_is_gentler_by_default_and_counts(cli):
    runner, _fake, _portals, svc = cli
    result = runner.invoke(args=["portals", "renew", "--older-than", "0"])
    assert result.exit_code == 0, result.output
    assert "12 renewed, 0 failed" in result.output
    assert fleet.RENEW_CONCURRENCY < fleet.CHECK_CONCURRENCY


def test_show_reports_the_portal_and_its_calls_by_method(cli):
    import json

    runner, fake, portals, svc = cli
    fake.uninstall(portals[1])
    svc.store.mark(portals[1].member_id, "reauth_required", "token_revoked")
    runner.invoke(args=["portals", "check"])
    result = runner.invoke(args=["portals", "show", portals[1].member_id, "--json"])
    assert result.exit_code == 0, result.output
    body = json.loads(result.output)
    assert body["status"] and body["domain"] == portals[1].domain
    assert body["status"] == "reauth_required" and body["last_error"] == "token_revoked"
    assert body["calls_last_24h"]["app.info"]["errors"] >= 1
    text = runner.invoke(args=["portals", "show", portals[1].member_id]).output
    assert "last_error:" in text and "app.info" in text


def test_the_store_streams_portals_in_batches(cli):
    _runner, _fake, portals, svc = cli
    got = [p.member_id for p in svc.store.iter_all(batch=5)]
    assert got == sorted(p.member_id for p in portals)  # 5 + 5 + 2 rows, each once
    assert svc.store.count() == 12
    svc.store.uninstall(portals[0].member_id, clean=False)
    assert svc.store.count(exclude="uninstalled") == 11
    assert portals[0].member_id not in {p.member_id for p in flows_fleet_check(svc)}


def flows_fleet_check(svc):
    return fleet.check_portals(svc.store, batch=4)
