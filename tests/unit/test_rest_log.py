"""RestLog storage: every field kept, secrets redacted, bodies encrypted, cap, prune, summary."""

from __future__ import annotations

import json
import time

import pytest
import sqlalchemy as sa

from leadcard.storage import db
from leadcard.storage.keyring import KeyRing, generate_key
from leadcard.storage.rest_log import BODY_CAP, TRUNCATED, Entry, RestLog, rest_log

TOKEN = "a1b2c3d4" * 8
TITLE = "Zyxwvut Distinctive Lead Title"


def entry(member_id="m1", method="crm.lead.get", at=None, error="", params=None, response=None):
    return Entry(called_at=time.time() if at is None else at, member_id=member_id,
                 service="rest", method=method, http_status=200 if not error else 401,
                 error_code=error, duration_ms=12,
                 params=params if params is not None else {"auth": TOKEN, "id": 7},
                 response=response if response is not None
                 else json.dumps({"result": {"TITLE": TITLE}}).encode())


@pytest.fixture
def log(migrated_engine):
    return RestLog(migrated_engine, KeyRing([generate_key()]))


def test_a_call_is_logged_with_every_field_and_no_secret(log, migrated_engine):
    log.insert([entry(params={"auth": TOKEN, "id": 7, "nested": {"client_secret": "s3cr3t"},
                              "code": "authcode123"})])
    [row] = log.rows("m1", 0, full=True)
    assert (row["member_id"], row["service"], row["method"], row["http_status"],
            row["error_code"], row["duration_ms"]) == ("m1", "rest", "crm.lead.get", 200, "", 12)
    for secret in (TOKEN, "s3cr3t", "authcode123"):
        assert secret not in row["request"]
    assert '"id": 7' in row["request"] and TITLE in row["response"]
    with migrated_engine.connect() as conn:
        stored = conn.execute(sa.select(rest_log.c.request, rest_log.c.response)).one()
    assert TOKEN not in stored.request and TITLE not in stored.response  # encrypted at rest


def test_raw_sqlite_file_holds_neither_token_nor_lead_title(tmp_path):
    path = tmp_path / "rl.sqlite"
    engine = db.make_engine(f"sqlite:///{path}")
    db.upgrade(engine)
    RestLog(engine, KeyRing([generate_key()])).insert([entry()])
    engine.dispose()
    raw = b"".join(p.read_bytes() for p in tmp_path.iterdir())  # the file, and any -wal
    assert b"crm.lead.get" in raw  # the metadata is there, plain
    assert TOKEN.encode() not in raw and TITLE.encode() not in raw


def test_bodies_are_capped_and_say_so(log):
    log.insert([entry(response=b"ab " * BODY_CAP)])
    [row] = log.rows("m1", 0, full=True)
    assert len(row["response"]) == BODY_CAP and row["response"].endswith(TRUNCATED)


def test_prune_deletes_only_old_rows_bounded(log):
    now = time.time()
    log.insert([entry(at=now - 8 * 86400) for _ in range(3)] + [entry(at=now)])
    assert log.prune(7, limit=2, now=now) == 2
    assert log.prune(7, limit=2, now=now) == 1
    assert log.prune(7, now=now) == 0
    assert len(log.rows("m1", 0)) == 1


def test_delete_portal_keeps_other_portals(log):
    log.insert([entry("m1"), entry("m2")])
    assert log.delete_portal("m1") == 1
    assert not log.known("m1") and log.known("m2")


def test_rows_filter_and_summary(log):
    now = time.time()
    log.insert([entry(at=now - 7200), entry(at=now, method="batch"),
                entry(at=now, error="expired_token"), entry(at=now)])
    assert [r["method"] for r in log.rows("m1", now - 3600, method="crm.lead.get")] == \
        ["crm.lead.get", "crm.lead.get"]
    assert "request" not in log.rows("m1", 0)[0]
    assert log.summary("m1", now - 3600) == {"crm.lead.get": (2, 1), "batch": (1, 0)}
