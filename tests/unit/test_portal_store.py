"""The portal store on SQLite and PostgreSQL: encryption at rest, single-flight refresh,
uninstall, key rotation, one-time OAuth state, viewer renewals, the schema it mirrors."""

from __future__ import annotations

import threading
import time

import pytest
import sqlalchemy as sa
from cryptography.fernet import Fernet

from leadcard.core import errors
from leadcard.core.grant import Grant
from leadcard.storage import db, key_rotation
from leadcard.storage.db import metadata
from leadcard.storage.keyring import KeyRing
from leadcard.storage.portals import ACTIVE, REAUTH_REQUIRED, UNINSTALLED, PortalStore, ViewerTokens
from leadcard.storage.tables import oauth_states, portals, viewer_renewals

STORE_TABLES = (portals, viewer_renewals, oauth_states)

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
    return PortalStore(engine, keyring, "test-secret")


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
    assert store.refresh_calls == 1  # what the benchmark and the process tests count


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
    PortalStore(engine, KeyRing([old_key]), "s").save_grant(grant(1), application_token="q" * 32)
    during = PortalStore(engine, KeyRing([new_key, old_key]), "s")
    assert during.credentials(MEMBER).access_token == grant(1).access_token  # old row, new ring
    assert during.rotate_keys() == 1
    after = PortalStore(engine, KeyRing([new_key]), "s")
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


def test_viewer_renewal_answers_the_viewer_pair_whoever_renewed_it(store):
    """The request that renews and the requests that find the renewal stored get the same
    `ViewerTokens` — no half-filled grant — and their repr names no token."""
    refresh_id = "viewer-refresh-" + "w" * 30
    first = store.renew_viewer(MEMBER, refresh_id, lambda rt: grant(7))
    again = store.renew_viewer(MEMBER, refresh_id, lambda rt: pytest.fail("renewed twice"))
    assert isinstance(first, ViewerTokens) and isinstance(again, ViewerTokens)
    assert first == again == ViewerTokens(
        access_token=grant(7).access_token, refresh_token=grant(7).refresh_token,
        expires_at=first.expires_at, member_id=MEMBER)
    assert abs(first.expires_at - grant(7).expires_at) < 5
    assert grant(7).access_token not in repr(first) and grant(7).refresh_token not in repr(again)


def test_viewer_renewals_go_with_the_portal_on_uninstall(store, engine):
    store.save_grant(grant(1))
    store.renew_viewer(MEMBER, "viewer-refresh-" + "u" * 30, lambda rt: grant(8))
    store.uninstall(MEMBER, clean=False)
    with engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(viewer_renewals)).scalar() == 0


# --- the schema the store's statements assume ------------------------------------------------


def schema_differences(engine, metadata: sa.MetaData) -> list:
    """What Alembic's autogenerate would change to make the migrated database match
    `metadata`, for the portal store's tables only."""
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    ours = {t.name for t in STORE_TABLES}

    def include(obj, name, type_, reflected, compare_to):  # noqa: ARG001 - Alembic's signature
        return type_ != "table" or name in ours

    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"include_object": include,
                                                         "compare_type": True})
        return compare_metadata(context, metadata)


def test_tables_mirror_the_migrations(engine):
    assert schema_differences(engine, metadata) == []


def test_the_mirror_check_sees_a_column_the_migrations_lack(engine):
    changed = sa.MetaData()
    for table in STORE_TABLES:
        table.to_metadata(changed)
    sa.Table("oauth_states", changed, sa.Column("extra", sa.Integer), extend_existing=True)
    assert [d[0] for d in schema_differences(engine, changed)] == ["add_column"]


def test_every_token_column_is_re_encrypted_by_key_rotation():
    rotated = {table.name: set(columns) for table, _key, columns in key_rotation.ENCRYPTED}
    for table in STORE_TABLES:
        tokens = {c.name for c in table.columns if c.name.endswith("_token")}
        assert tokens <= rotated.get(table.name, set()), table.name


# --- database failures are the error family ---------------------------------------------------


def operational_error(message: str) -> sa.exc.OperationalError:
    return sa.exc.OperationalError("SELECT 1", {}, Exception(message))


@pytest.mark.parametrize("failure, expected", [
    (operational_error("database is locked"), errors.Busy),
    (operational_error("canceling statement due to lock timeout"), errors.Busy),
    (operational_error("connection refused"), errors.DatabaseUnavailable),
    (sa.exc.TimeoutError("QueuePool limit reached"), errors.DatabaseUnavailable),
])
def test_database_failures_map_to_busy_or_unavailable(failure, expected):
    mapped = db.database_error(failure)
    assert type(mapped) is expected
    assert "SELECT" not in str(mapped)  # the statement (and its parameters) stay out


def test_a_bug_is_not_dressed_up_as_an_outage():
    assert db.database_error(sa.exc.IntegrityError("INSERT", {}, Exception("dup"))) is None
    assert db.database_error(ValueError("x")) is None
    assert db.database_error(None) is None


def test_an_unreachable_database_is_unavailable_on_every_path(tmp_path, keyring):
    """The hot path (a raw DBAPI statement), ordinary reads and writes all say the same."""
    dead = sa.create_engine(f"sqlite:///{tmp_path}/missing-dir/portals.db")
    try:
        store = PortalStore(dead, keyring, "test-secret")
        with pytest.raises(errors.DatabaseUnavailable):
            store.get_for_request(MEMBER, "")
        with pytest.raises(errors.DatabaseUnavailable):
            store.get(MEMBER)
        with pytest.raises(errors.DatabaseUnavailable):
            store.new_oauth_state(MEMBER)
    finally:
        dead.dispose()


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
    waiting = PortalStore(short, store._keys, "test-secret")  # noqa: SLF001 - same key ring
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
    return PortalStore(engine, keyring, "test-secret", journal=journal)


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
    import leadcard.storage.refresh as refresh_module

    monkeypatch.setattr(refresh_module, "STORE_RETRY_SECONDS", 0.5)
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
