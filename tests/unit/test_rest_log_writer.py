"""The REST log writer: a real view's calls are logged, a full queue drops and counts, a
database failure never reaches the view; REST_LOG_DAYS refuses less than 3 days."""

from __future__ import annotations

import json
import logging

import pytest

from leadcard.bitrix24.observe import UpstreamCall
from leadcard.bitrix24.payloads import parse_placement
from leadcard.core import errors
from leadcard.core.config import ConfigError, load_settings
from leadcard.flows.lead_tab import open_lead
from leadcard.flows.rest_log_writer import RestLogWriter
from tests.unit.fakes import FakeBitrix24, fake_services

APP_TOKEN = "apptoken" + "t" * 24
LEAD = {"ID": "7", "TITLE": "Qwertyuiop Lead", "ASSIGNED_BY_ID": "1"}


@pytest.fixture
def world(tmp_path):
    fake = FakeBitrix24()
    portal = fake.add_portal("a", leads={7: dict(LEAD)}, users={"1": {"ID": "1", "NAME": "Ann"}})
    svc = fake_services(tmp_path, fake)
    svc.store.save_grant(fake.grant(portal), installed_by=1, license_status="F", language="en",
                         application_token=APP_TOKEN)
    svc.rest_log._ensure_thread = lambda: None  # the test flushes, no race with the thread
    svc.rest_log.flush()
    return fake, portal, svc


def view(fake, portal, svc):
    auth, refresh = fake.issue(portal, 1)
    form = {"member_id": portal.member_id, "AUTH_ID": auth, "REFRESH_ID": refresh,
            "AUTH_EXPIRES": "3600", "APPLICATION_TOKEN": APP_TOKEN, "status": "F",
            "PLACEMENT": "CRM_LEAD_DETAIL_TAB", "PLACEMENT_OPTIONS": json.dumps({"ID": "7"})}
    result = open_lead(svc, parse_placement({"DOMAIN": portal.domain, "PROTOCOL": "1",
                                             "LANG": "en"}, form))
    return auth, result


def test_a_view_is_logged_without_its_token(world):
    fake, portal, svc = world
    auth, result = view(fake, portal, svc)
    assert result.lead["TITLE"] == "Qwertyuiop Lead"
    assert svc.rest_log.flush() >= 1
    rows = svc.rest_log.store.rows(portal.member_id, 0, full=True)
    assert [r["method"] for r in rows][-1] == "batch"
    last = rows[-1]
    assert last["service"] == "rest" and last["http_status"] == 200 and last["error_code"] == ""
    assert auth not in last["request"] and "Qwertyuiop Lead" in last["response"]


def test_a_failing_database_never_fails_a_view(world, monkeypatch, caplog):
    fake, portal, svc = world

    def broken(_entries):
        raise RuntimeError("database is gone")

    monkeypatch.setattr(svc.rest_log.store, "insert", broken)
    _auth, result = view(fake, portal, svc)  # the observer itself only queues
    assert result.lead["TITLE"] == "Qwertyuiop Lead"
    assert svc.rest_log.flush() == 0 and svc.rest_log.failed_batches == 1
    view(fake, portal, svc)
    svc.rest_log.flush()
    assert sum("writing" in r.getMessage() for r in caplog.records) == 1  # logged once


def test_a_lost_database_is_one_line_a_bug_keeps_its_traceback(caplog):
    # The writer's own method, called directly: no background thread races the log records.
    class Store:
        def __init__(self, failure):
            self.failure = failure

        def insert(self, _entries):
            raise self.failure

    lost = RestLogWriter(Store(errors.DatabaseUnavailable("OperationalError")), 7)
    assert lost._write([call()]) == 0
    [line] = [r for r in caplog.records if "writing" in r.getMessage()]
    assert not has_traceback(line) and "DatabaseUnavailable" in line.getMessage()
    caplog.clear()
    bug = RestLogWriter(Store(KeyError("called_at")), 7)
    assert bug._write([call()]) == 0
    [line] = [r for r in caplog.records if "writing" in r.getMessage()]
    assert has_traceback(line)


def has_traceback(record: logging.LogRecord) -> bool:
    # The app's redaction filter (core/redact.py), once installed by any app in this run,
    # renders exc_info into exc_text and drops it.
    return record.exc_info is not None or bool(record.exc_text and "Traceback" in record.exc_text)


def test_the_pools_dropped_connection_is_logged_in_one_line():
    from leadcard.core import logs

    try:
        raise OSError("server closed the connection unexpectedly\n\tThis probably means …")
    except OSError:
        import sys
        record = logging.LogRecord("sqlalchemy.pool.impl.QueuePool", logging.ERROR, __file__, 1,
                                   "Exception during reset or similar", (), sys.exc_info())
    assert logs._PoolDropsInOneLine().filter(record)
    assert record.exc_info is None
    assert record.getMessage() == ("Exception during reset or similar: OSError: server closed "
                                   "the connection unexpectedly")


def call(n=0):
    return UpstreamCall(service="rest", member_id="m", method=f"m{n}", params={}, http_status=200,
                        error_code="", started_at=0.0, duration=0.01, response=b"{}")


def test_a_full_queue_drops_and_counts(world):
    writer = RestLogWriter(world[2].rest_log.store, 7, queue_size=2)
    writer._ensure_thread = lambda: None  # no background thread: the test flushes itself
    for n in range(5):
        writer(call(n))
    assert writer.dropped == 3
    assert writer.flush() == 2


@pytest.mark.parametrize("days,ok", [("2", False), ("2.9", False), ("3", True), ("", True)])
def test_rest_log_days_refuses_less_than_three(days, ok):
    env = {"B24_CLIENT_ID": "c", "B24_CLIENT_SECRET": "s", "APP_URL": "https://a.test",
           "SECRET_KEY": "k" * 40, "REST_LOG_DAYS": days}
    if ok:
        assert load_settings(environ=env).rest_log_days == (float(days) if days else 7.0)
    else:
        with pytest.raises(ConfigError, match="REST_LOG_DAYS must be at least 3"):
            load_settings(environ=env)


def test_clean_uninstall_deletes_the_portals_rows_only(world):
    fake, portal, svc = world
    view(fake, portal, svc)
    writer = svc.rest_log
    writer(UpstreamCall(service="rest", member_id="other", method="crm.lead.get", params={},
                        http_status=200, error_code="", started_at=1e9, duration=0.0,
                        response=b"{}"))
    writer.flush()
    svc.store.uninstall(portal.member_id, clean=False)
    assert writer.store.known(portal.member_id)  # without CLEAN the rows wait for pruning
    svc.store.uninstall(portal.member_id, clean=True)
    assert not writer.store.known(portal.member_id) and writer.store.known("other")
