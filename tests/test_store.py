"""The store on SQLite and, when CYPHER_TEST_DATABASE_URL is set, on PostgreSQL.

Every test here takes `database_url`, which conftest parametrizes over both databases.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import inspect, select

from cypher.services.sealing import SealedValue
from cypher.store import Store, StoreConflict
from cypher.store.migrate import current_revision, head_revision, upgrade
from cypher.store.models import RegistrationState, SpentLogin, User
from tests.concurrency import race

NOW = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)
TTL = timedelta(minutes=5)
SECRET = SealedValue("kid", b"sealed-secret")


def _seal_record(sealed: SealedValue) -> SealedValue:
    return SealedValue(sealed.key_id, b"record-from-" + sealed.ciphertext)


def _register(store: Store, username: str = "alice", now: datetime = NOW) -> None:
    store.accounts.begin_registration(username, SECRET, now, TTL, pending_cutoff=now - TTL)
    assert store.accounts.finish_registration(username, now, _seal_record) is not None


def test_migrations_reach_head_and_are_idempotent(store: Store) -> None:
    assert current_revision(store.engine) == head_revision() is not None
    upgrade(store.engine)
    tables = set(inspect(store.engine).get_table_names())
    assert {"users", "registration_states", "spent_logins", "alembic_version"} <= tables


def test_concurrent_migrations_from_fresh_database(database_url: str) -> None:
    stores = [Store(database_url) for _ in range(4)]
    try:
        outcomes = race(4, lambda: upgrade(stores.pop().engine))
        assert outcomes == [None] * 4
    finally:
        for leftover in stores:
            leftover.dispose()
    check = Store(database_url)
    assert current_revision(check.engine) == head_revision()
    check.dispose()


def test_datetimes_come_back_aware_utc(store: Store) -> None:
    _register(store)
    user = store.accounts.find_user("alice")
    assert user is not None and user.created_at == NOW and user.created_at.tzinfo is UTC
    with pytest.raises(Exception, match="naive"):
        store.accounts.begin_registration("bob", SECRET, NOW.replace(tzinfo=None), TTL, pending_cutoff=NOW)
    assert store.accounts.find_user("bob") is None


def test_registration_creates_a_pending_user_with_the_sealed_record(store: Store) -> None:
    _register(store)
    user = store.accounts.find_user("alice")
    assert user is not None
    assert user.status == "pending"
    assert user.opaque_record == SealedValue("kid", b"record-from-sealed-secret")
    with store.database.reading() as session:
        assert session.scalar(select(RegistrationState).where(RegistrationState.username == "alice")) is None


def test_a_taken_name_or_a_live_registration_holds_the_name(store: Store) -> None:
    store.accounts.begin_registration("alice", SECRET, NOW, TTL, pending_cutoff=NOW - TTL)
    with pytest.raises(StoreConflict):
        store.accounts.begin_registration("alice", SECRET, NOW + timedelta(seconds=1), TTL, pending_cutoff=NOW - TTL)
    assert store.accounts.finish_registration("alice", NOW, _seal_record) is not None
    with pytest.raises(StoreConflict):
        store.accounts.begin_registration("alice", SECRET, NOW, TTL, pending_cutoff=NOW - TTL)


def test_an_expired_registration_state_frees_the_name(store: Store) -> None:
    store.accounts.begin_registration("alice", SECRET, NOW, TTL, pending_cutoff=NOW - TTL)
    later = NOW + TTL
    assert store.accounts.finish_registration("alice", later, _seal_record) is None
    assert store.accounts.find_user("alice") is None
    store.accounts.begin_registration("alice", SECRET, later, TTL, pending_cutoff=later - TTL)


def test_finish_without_state_is_none_and_writes_nothing(store: Store) -> None:
    assert store.accounts.finish_registration("nobody", NOW, _seal_record) is None
    assert store.accounts.find_user("nobody") is None


def test_a_failing_seal_rolls_back_and_keeps_the_state(store: Store) -> None:
    store.accounts.begin_registration("alice", SECRET, NOW, TTL, pending_cutoff=NOW - TTL)

    def broken_seal(_: SealedValue) -> SealedValue:
        raise RuntimeError("sealing failed")

    with pytest.raises(RuntimeError):
        store.accounts.finish_registration("alice", NOW, broken_seal)
    assert store.accounts.find_user("alice") is None
    assert store.accounts.finish_registration("alice", NOW, _seal_record) is not None


def test_an_expired_pending_account_frees_its_name(store: Store) -> None:
    _register(store)
    later = NOW + TTL + timedelta(seconds=1)
    store.accounts.begin_registration("alice", SECRET, later, TTL, pending_cutoff=later - TTL)
    assert store.accounts.find_user("alice") is None


def test_an_active_account_is_never_swept(store: Store) -> None:
    _register(store)
    user = store.accounts.find_user("alice")
    assert user is not None and store.accounts.change_status(user.id, "pending", "active", NOW) is not None
    later = NOW + timedelta(days=30)
    with pytest.raises(StoreConflict):
        store.accounts.begin_registration("alice", SECRET, later, TTL, pending_cutoff=later - TTL)
    assert store.accounts.change_status(10_000, "pending", "active", NOW) is None


def test_concurrent_finishes_create_exactly_one_user(store: Store) -> None:
    store.accounts.begin_registration("alice", SECRET, NOW, TTL, pending_cutoff=NOW - TTL)
    outcomes = race(6, lambda: store.accounts.finish_registration("alice", NOW, _seal_record))
    created = [outcome for outcome in outcomes if not isinstance(outcome, Exception)]
    assert len(created) == 1 and created[0] is not None
    assert all(isinstance(outcome, StoreConflict) for outcome in outcomes if outcome not in created)
    with store.database.reading() as session:
        assert len(session.scalars(select(User)).all()) == 1


def test_a_login_is_spent_exactly_once(store: Store) -> None:
    _register(store)
    user = store.accounts.find_user("alice")
    assert user is not None
    login = "1" * 64
    outcomes = race(8, lambda: store.accounts.spend_login(login, NOW + timedelta(seconds=60), user.id, NOW))
    refused = [outcome for outcome in outcomes if isinstance(outcome, Exception)]
    assert [outcome for outcome in outcomes if outcome not in refused] == [user], outcomes
    assert len(refused) == 7 and all(isinstance(outcome, StoreConflict) for outcome in refused)
    with pytest.raises(StoreConflict):
        store.accounts.spend_login(login, NOW + timedelta(seconds=60), user.id, NOW + timedelta(seconds=59))


def test_logins_without_an_account_and_expired_spent_logins(store: Store) -> None:
    old, new = "1" * 64, "2" * 64
    assert store.accounts.spend_login(old, NOW + timedelta(seconds=60), None, NOW) is None
    # Past its expiry a spent login is garbage, cleared on the way past by a later login.
    later = NOW + timedelta(seconds=61)
    assert store.accounts.spend_login(new, later + timedelta(seconds=60), None, later) is None
    with store.database.reading() as session:
        assert session.scalars(select(SpentLogin.id)).all() == [new]
    assert store.accounts.purge(later + timedelta(seconds=60), pending_cutoff=NOW)["spent_logins"] == 1


def test_ping_answers(store: Store) -> None:
    store.ping()


def test_migrations_and_models_agree(store: Store) -> None:
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    from cypher.store.models import Base

    with store.engine.connect() as connection:
        differences = compare_metadata(MigrationContext.configure(connection), Base.metadata)
    assert differences == []
