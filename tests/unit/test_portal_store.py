"""The token store on SQLite and PostgreSQL: encryption at rest, single-flight refresh,
uninstall, key rotation, one-time OAuth state."""

from __future__ import annotations

import threading
import time

import pytest
import sqlalchemy as sa
from cryptography.fernet import Fernet

from leadcard.storage import db
from leadcard.core import errors
from leadcard.storage.keyring import KeyRing
from leadcard.core.grant import Grant
from leadcard.storage.portals import ACTIVE, REAUTH_REQUIRED, UNINSTALLED, TokenStore

MEMBER = "a223c6b3710f85df22e9377d6c4f7553"


def grant(n: int, *, member_id: str = MEMBER, expires_in: float = 3600) -> Grant:
    return Grant(
        access_token=f"access-{n}-" + "a" * 40,
        refresh_token=f"refresh-{n}-" + "r" * 40,
        expires_at=time.time() + expires_in,
        member_id=member_id,
        client_endpoint="https://portal.bitrix24.com/rest/",
        server_endpoint="https://oauth.bitrix.info/rest/",
        scope="crm,placement,user_brief",
        status="F",
        user_id=1,
    )


@pytest.fixture
def engine(migrated_engine):
    return migrated_engine


@pytest.fixture
def keyring():
    return KeyRing([Fernet.generate_key()])


@pytest.fixture
def store(engine, keyring):
    return TokenStore(engine, keyring, "test-secret")


def raw_dump(engine) -> str:
    with engine.connect() as conn:
        rows = []
        for table in ("portals", "viewer_renewals", "oauth_states"):
            rows += [repr(tuple(r)) for r in conn.execute(sa.text(f"SELECT * FROM {table}"))]
    return "\n".join(rows)


def test_schema_is_at_head(engine):
    assert db.current_revision(engine) == db.head_revision(engine)
    db.ensure_schema(engine, auto_migrate=False)  # does not raise


def test_save_and_read_back(store):
    g = grant(1)
    portal = store.save_grant(g, installed_by=1, license_status="F", language="en",
                              application_token="apptok-" + "x" * 30)
    assert portal.domain == "portal.bitrix24.com" and portal.status == ACTIVE
    creds = store.credentials(MEMBER)
    assert creds.access_token == g.access_token and creds.refresh_token == g.refresh_token
    assert store.application_token_matches(MEMBER, "apptok-" + "x" * 30)
    assert not store.application_token_matches(MEMBER, "apptok-" + "y" * 30)
    assert not store.application_token_matches(MEMBER, "")
    assert store.get("0" * 32) is None


def test_secrets_are_encrypted_at_rest(store, engine):
    g = grant(1)
    store.save_grant(g, application_token="apptoken-plain-" + "z" * 20)
    store.new_oauth_state(MEMBER)
    dump = raw_dump(engine)
    assert MEMBER in dump  # the row is there…
    for secret in (g.access_token, g.refresh_token, "apptoken-plain-"):
        assert secret not in dump  # …but no secret in clear text


def test_refresh_spends_once_across_threads(store):
    store.save_grant(grant(1, expires_in=-10))
    seen = store.credentials(MEMBER).version
    calls = []

    def refresher(rt: str) -> Grant:
        calls.append(rt)
        time.sleep(0.2)  # hold the lock while others pile up
        return grant(2)

    results, failures = [], []

    def worker():
        try:
            results.append(store.refresh(MEMBER, seen, refresher))
        except Exception as exc:  # noqa: BLE001 - collected for the assertion
            failures.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert failures == []
    assert calls == [grant(1).refresh_token]
    assert {r.access_token for r in results} == {grant(2).access_token}
    assert store.credentials(MEMBER).version == seen + 1


def test_stale_caller_reuses_newer_token_without_spending(store):
    store.save_grant(grant(1, expires_in=-10))
    old = store.credentials(MEMBER).version
    store.refresh(MEMBER, old, lambda rt: grant(2))
    creds = store.refresh(MEMBER, old, lambda rt: pytest.fail("must not spend again"))
    assert creds.access_token == grant(2).access_token


def test_revoked_grant_marks_portal_and_keeps_row(store):
    store.save_grant(grant(1, expires_in=-10))
    seen = store.credentials(MEMBER).version

    def refused(rt):
        raise errors.TokenRevoked("invalid_grant")

    with pytest.raises(errors.TokenRevoked):
        store.refresh(MEMBER, seen, refused)
    portal = store.get(MEMBER)
    assert portal.status == REAUTH_REQUIRED and portal.last_error == "token_revoked"
    assert store.credentials(MEMBER).refresh_token == grant(1).refresh_token  # nothing lost


def test_refresh_for_another_portal_is_refused(store):
    store.save_grant(grant(1, expires_in=-10))
    seen = store.credentials(MEMBER).version
    with pytest.raises(errors.VerificationFailed):
        store.refresh(MEMBER, seen, lambda rt: grant(2, member_id="f" * 32))
    assert store.credentials(MEMBER).refresh_token == grant(1).refresh_token


def test_uninstall_wipes_tokens_and_clean_deletes_row(store, engine):
    g = grant(1)
    store.save_grant(g, application_token="t" * 32)
    assert store.uninstall(MEMBER, clean=False)
    portal = store.get(MEMBER)
    assert portal.status == UNINSTALLED and not portal.has_tokens
    with pytest.raises(errors.NotInstalled):
        store.credentials(MEMBER)
    assert g.refresh_token not in raw_dump(engine)
    store.uninstall(MEMBER, clean=True)
    assert store.get(MEMBER) is None


def test_reinstall_after_uninstall(store):
    store.save_grant(grant(1))
    store.uninstall(MEMBER, clean=False)
    store.save_grant(grant(5), application_token="n" * 32)
    assert store.get(MEMBER).status == ACTIVE
    assert store.credentials(MEMBER).access_token == grant(5).access_token


def test_key_rotation_keeps_old_rows_readable(engine):
    old_key, new_key = Fernet.generate_key(), Fernet.generate_key()
    TokenStore(engine, KeyRing([old_key]), "s").save_grant(grant(1), application_token="q" * 32)
    during = TokenStore(engine, KeyRing([new_key, old_key]), "s")
    assert during.credentials(MEMBER).access_token == grant(1).access_token  # old row, new ring
    assert during.rotate_keys() == 1
    after = TokenStore(engine, KeyRing([new_key]), "s")
    assert after.credentials(MEMBER).refresh_token == grant(1).refresh_token
    assert after.application_token_matches(MEMBER, "q" * 32)
    assert during.rotate_keys() == 0  # idempotent


def test_oauth_state_is_single_use(store):
    state = store.new_oauth_state(MEMBER)
    assert store.consume_oauth_state(state) == MEMBER
    assert store.consume_oauth_state(state) is None
    assert store.consume_oauth_state("forged") is None


def test_viewer_renewal_is_shared_by_concurrent_requests(store):
    store.save_grant(grant(1))
    calls = []

    def refresher(rt):
        calls.append(rt)
        time.sleep(0.2)
        return grant(9)

    out = []
    threads = [threading.Thread(target=lambda: out.append(
        store.renew_viewer(MEMBER, "viewer-refresh-" + "v" * 30, refresher))) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(calls) == 1
    assert {g.access_token for g in out} == {grant(9).access_token}


def test_viewer_renewal_for_another_portal_is_refused(store):
    store.save_grant(grant(1))
    with pytest.raises(errors.VerificationFailed):
        store.renew_viewer(MEMBER, "x" * 40, lambda rt: grant(3, member_id="e" * 32))


def test_start_up_refuses_an_unmigrated_database(database_url):
    engine = db.make_engine(database_url)
    try:
        with pytest.raises(db.SchemaOutOfDate, match="db upgrade"):
            db.ensure_schema(engine, auto_migrate=False)
        db.ensure_schema(engine, auto_migrate=True)  # the embedded default migrates itself
        db.ensure_schema(engine, auto_migrate=False)
    finally:
        engine.dispose()


def test_a_refresh_waiting_too_long_for_the_lock_is_busy(store, engine, monkeypatch):
    """A lock held past LOCK_WAIT_SECONDS answers Busy (a designed 503), not a hang."""
    monkeypatch.setattr(db, "LOCK_WAIT_SECONDS", 1)
    short = db.make_engine(str(engine.url.render_as_string(hide_password=False)))
    waiting = TokenStore(short, store._keys, "test-secret")  # noqa: SLF001 - same key ring
    store.save_grant(grant(1, expires_in=-10))
    seen = store.credentials(MEMBER).version
    holder_started, release = threading.Event(), threading.Event()

    def slow_refresher(rt):
        holder_started.set()
        release.wait(10)
        return grant(2)

    holder = threading.Thread(target=lambda: store.refresh(MEMBER, seen, slow_refresher))
    holder.start()
    try:
        assert holder_started.wait(10)
        with pytest.raises(errors.Busy):
            waiting.refresh(MEMBER, seen, lambda rt: pytest.fail("must not spend"))
    finally:
        release.set()
        holder.join(10)
        short.dispose()
    assert store.credentials(MEMBER).access_token == grant(2).access_token


def test_get_for_request_checks_the_posted_application_token(store):
    assert store.get_for_request(MEMBER, "x" * 32) == (None, True)
    store.save_grant(grant(1))  # no application_token stored yet
    portal, agrees = store.get_for_request(MEMBER, "anything-" + "x" * 20)
    assert portal.member_id == MEMBER and agrees
    store.set_application_token(MEMBER, "a" * 32)
    assert store.get_for_request(MEMBER, "a" * 32)[1] is True
    assert store.get_for_request(MEMBER, "b" * 32)[1] is False
    assert store.get_for_request(MEMBER, "")[1] is True  # older portals post none


# --- the renewed pair survives a failed write (issue 10, defect 5) ---------------------------


@pytest.fixture
def journal(tmp_path, keyring):
    from leadcard.storage.grant_journal import GrantJournal

    return GrantJournal(str(tmp_path / "grant-journal"), keyring)


@pytest.fixture
def journaled_store(engine, keyring, journal):
    return TokenStore(engine, keyring, "test-secret", journal=journal)


class CommitFails:
    """The database refuses commits while `failing` (a reset, a full disk): the DBAPI's own
    OperationalError, raised where the driver's commit would run, so SQLAlchemy and the store
    see exactly what a real failure gives them."""

    def __init__(self, engine, monkeypatch, times: int | None) -> None:
        self.left = times
        self.failing = False
        self.refused = 0
        dialect = engine.dialect
        original = dialect.do_commit
        error = dialect.loaded_dbapi.OperationalError

        def do_commit(dbapi_connection):
            if self.failing and (self.left is None or self.left > 0):
                if self.left is not None:
                    self.left -= 1
                self.refused += 1
                raise error("database or disk is full")
            return original(dbapi_connection)

        monkeypatch.setattr(dialect, "do_commit", do_commit)


def spent_once(new: Grant, armed: CommitFails | None = None):
    """A refresher that behaves like the OAuth server: the first call rotates, any further
    call with the same token is refused (invalid_grant → TokenRevoked)."""
    calls: list[str] = []

    def refresher(rt: str) -> Grant:
        calls.append(rt)
        if len(calls) > 1:
            raise errors.TokenRevoked("invalid_grant")
        if armed is not None:
            armed.failing = True  # the answer is in; now the write fails
        return new

    return refresher, calls


def test_renewed_pair_is_written_again_when_the_commit_fails_once(journaled_store, engine,
                                                                 monkeypatch, journal):
    store = journaled_store
    store.save_grant(grant(1, expires_in=-10))
    v0 = store.credentials(MEMBER).version
    failing = CommitFails(engine, monkeypatch, times=1)
    refresher, calls = spent_once(grant(2), failing)

    creds = store.refresh(MEMBER, v0, refresher)

    assert failing.refused == 1
    assert creds.refresh_token == grant(2).refresh_token and creds.version == v0 + 1
    stored = store.credentials(MEMBER)
    assert stored.refresh_token == grant(2).refresh_token and stored.version == v0 + 1
    assert store.get(MEMBER).status == ACTIVE
    assert calls == [grant(1).refresh_token]
    assert journal.read(MEMBER) is None  # committed: nothing pending


def test_renewed_pair_waits_in_the_journal_while_the_database_stays_down(
        journaled_store, engine, monkeypatch, journal):
    """Every retry fails: the caller gets the designed 503, the pair stays in the journal,
    and the next refresh stores it instead of spending the spent token again — even after
    another caller marked the portal reauth_required meanwhile."""
    import leadcard.storage.portals as tokens_module

    monkeypatch.setattr(tokens_module, "STORE_RETRY_SECONDS", 0.5)
    store = journaled_store
    store.save_grant(grant(1, expires_in=-10))
    v0 = store.credentials(MEMBER).version
    failing = CommitFails(engine, monkeypatch, times=None)
    refresher, calls = spent_once(grant(2), failing)

    with pytest.raises(errors.DatabaseUnavailable):
        store.refresh(MEMBER, v0, refresher)
    assert failing.refused >= 2  # the first write and at least one more try
    failing.failing = False
    assert store.credentials(MEMBER).refresh_token == grant(1).refresh_token  # row unchanged
    assert journal.read(MEMBER).grant.refresh_token == grant(2).refresh_token
    store.mark(MEMBER, REAUTH_REQUIRED, "token_revoked")  # another host tried the spent token

    creds = store.refresh(MEMBER, v0, refresher)
    assert calls == [grant(1).refresh_token]  # the spent token was not sent again
    assert creds.refresh_token == grant(2).refresh_token and creds.version == v0 + 1
    portal = store.get(MEMBER)
    assert portal.status == ACTIVE and portal.token_version == v0 + 1
    assert journal.read(MEMBER) is None


def test_journal_entry_for_an_older_pair_is_dropped(journaled_store, journal):
    """A re-seed (reinstall, reconnect) moved the row on: the entry no longer applies."""
    store = journaled_store
    store.save_grant(grant(1, expires_in=-10))
    v0 = store.credentials(MEMBER).version
    journal.write(MEMBER, v0, grant(1).refresh_token, grant(2))
    store.save_grant(grant(3, expires_in=-10))
    refresher, calls = spent_once(grant(4))
    creds = store.refresh(MEMBER, v0 + 1, refresher)
    assert calls == [grant(3).refresh_token]
    assert creds.refresh_token == grant(4).refresh_token
    assert journal.read(MEMBER) is None


def test_journal_holds_no_secret_in_clear(journal, tmp_path):
    journal.write(MEMBER, 1, grant(1).refresh_token, grant(2))
    files = list((tmp_path / "grant-journal").iterdir())
    assert len(files) == 1 and MEMBER not in files[0].name
    blob = files[0].read_bytes()
    for secret in (grant(1).refresh_token, grant(2).refresh_token, grant(2).access_token, MEMBER):
        assert secret.encode() not in blob
    assert oct(files[0].stat().st_mode & 0o777) == "0o600"
