"""The REST log over real HTTP to the simulator: an install and a check are logged, the CLI
shows them (`--since`, `--method`, `--full`) without a token, and prune runs."""

from __future__ import annotations


def test_rest_log_show_and_prune(sim, live_app, installed):
    runner = live_app.app.test_cli_runner()
    assert runner.invoke(args=["portals", "check"]).exit_code == 0
    creds = live_app.services.store.credentials(installed.member_id)

    result = runner.invoke(args=["rest-log", "show", "--portal", installed.member_id])
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines and all(" rest " in line or " oauth " in line for line in lines)

    result = runner.invoke(args=["rest-log", "show", "--portal", installed.member_id,
                                 "--method", "app.info", "--full", "--since", "1"])
    assert result.exit_code == 0, result.output
    calls = [line for line in result.stdout.splitlines() if not line.startswith("  ")]
    assert calls and all(" app.info " in line for line in calls)
    assert "request:" in result.stdout and "response:" in result.stdout
    for secret in (creds.access_token, creds.refresh_token, live_app.services.settings.client_secret):
        assert secret not in result.output

    result = runner.invoke(args=["rest-log", "show", "--portal", "nosuchportal"])
    assert result.exit_code != 0 and "no portal 'nosuchportal'" in result.output

    result = runner.invoke(args=["rest-log", "prune"])
    assert result.exit_code == 0 and "pruned 0 row(s) older than 7 days" in result.output
