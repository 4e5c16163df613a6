"""The action-key ledger on SQLite and PostgreSQL: one winner per key, replays, releases,
24-hour retention, and the race of duplicates arriving at once."""

from __future__ import annotations

import threading

import pytest
import sqlalchemy as sa

from leadcard.core import errors
from leadcard.storage import action_keys as ledger_module
from leadcard.storage.action_keys import DONE, PENDING, UNKNOWN, ActionKeys, action_keys

M, K, F = "member-aaaa", "key-0123456789abcdef", "f" * 64


@pytest.fixture
def engine(migrated_engine):
    return migrated_engine


class Clock:
    def __init__(self, now: float = 1_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_first_claim_wins_then_its_answer_is_replayed(engine):
    keys = ActionKeys(engine)
    assert keys.claim(M, K, F).won
    second = keys.claim(M, K, F)
    assert not second.won and second.state == PENDING and second.same_request
    keys.finish(M, K, 200, {"ok": True, "result": {"comment_id": 7}})
    third = keys.claim(M, K, F)
    assert (third.won, third.state, third.status) == (False, DONE, 200)
    assert third.answer == {"ok": True, "result": {"comment_id": 7}}
    assert keys.claim("member-bbbb", K, F).won  # keys are per portal


def test_a_key_reused_for_another_request_is_told_apart(engine):
    keys = ActionKeys(engine)
    keys.claim(M, K, F)
    assert not keys.claim(M, K, "0" * 64).same_request


def test_release_frees_the_key_unknown_and_done_do_not(engine):
    keys = ActionKeys(engine)
    keys.claim(M, K, F)
    keys.release(M, K)
    assert keys.lookup(M, K) is None and keys.claim(M, K, F).won
    keys.unknown(M, K, 504, {"ok": False, "error": {"code": "outcome_unknown"}})
    keys.release(M, K)  # only a pending key is released: an unknown write stays unknown
    found = keys.lookup(M, K)
    assert found is not None and found.state == UNKNOWN and found.status == 504


def test_rows_live_24_hours(engine):
    clock = Clock()
    keys = ActionKeys(engine, clock=clock)
    keys.claim(M, K, F)
    keys.finish(M, K, 200, {"ok": True})
    keys.claim(M, "other-key-0123456789", F)
    clock.now += ledger_module.RETENTION - 1
    assert not keys.claim(M, K, F).won
    clock.now += 2
    assert keys.claim(M, K, F).won  # a day later the key is new again
    with engine.connect() as conn:
        left = {r.key for r in conn.execute(sa.select(action_keys.c.key))}
    assert left == {K}  # the other old row was pruned by the claim


def test_the_ledger_holds_no_token_and_no_text(engine):
    keys = ActionKeys(engine)
    keys.claim(M, K, F)
    keys.finish(M, K, 200, {"ok": True, "result": {"comment_id": 7}})
    with engine.connect() as conn:
        row = conn.execute(sa.select(action_keys)).one()
    assert set(row._mapping) == {"member_id", "key", "fingerprint", "state", "status", "answer",
                                 "created_at", "updated_at"}


def test_duplicates_at_once_have_exactly_one_winner(engine):
    keys = ActionKeys(engine)
    start = threading.Barrier(6)
    wins: list[bool] = []

    def claim():
        start.wait()
        wins.append(keys.claim(M, K, F).won)

    threads = [threading.Thread(target=claim) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert sorted(wins) == [False] * 5 + [True]


def test_an_unreachable_database_is_the_error_family(tmp_path):
    dead = sa.create_engine(f"sqlite:///{tmp_path}/missing-dir/keys.db")
    try:
        with pytest.raises(errors.DatabaseUnavailable):
            ActionKeys(dead).claim(M, K, F)
    finally:
        dead.dispose()
