"""The store's unit of work and its statements, on SQLite and, when CYPHER_TEST_DATABASE_URL is
set, on PostgreSQL. The policy that uses them is tested through the services and the API.

Every test here takes `database_url`, which conftest parametrizes over both databases.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import inspect, select, text

from cypher.domain import STATUS_ACTIVE, SealedValue
from cypher.store import NewSession, Store, StoreConflict
from cypher.store.migrate import current_revision, head_revision, upgrade
from cypher.store.models import SpentLogin, User
from tests.concurrency import race

NOW = datetime(2026, 11, 21, 12, 0, 0, 123456, tzinfo=UTC)
TTL = timedelta(minutes=5)
SECRET = SealedValue("kid", b"sealed-secret")


def _user_id(store: Store, username: str = "alice") -> int:
    with store.transaction() as tx:
        return tx.users.add_pending(username, SECRET, NOW).id


def _session(user_id: int, session_id: str = "session-1", expires_at: datetime = NOW + TTL) -> NewSession:
    return NewSession(session_id, user_id, f"refresh-of-{session_id}", NOW, expires_at, "192.0.2.1", "pytest")


def _add_session(store: Store, new: NewSession) -> None:
    with store.transaction() as tx:
        tx.sessions.add(new)


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


def test_migrations_and_models_agree(store: Store) -> None:
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    from cypher.store.models import Base

    with store.engine.connect() as connection:
        differences = compare_metadata(MigrationContext.configure(connection), Base.metadata)
    assert differences == []


def test_datetimes_come_back_aware_utc_to_the_microsecond(store: Store) -> None:
    user_id = _user_id(store)
    _add_session(store, _session(user_id))
    with store.transaction(readonly=True) as tx:
        user = tx.users.by_id(user_id)
        live = tx.sessions.live("session-1", NOW)
        [listed] = tx.sessions.list_live(NOW, user_id=user_id)
    assert user is not None and user.created_at == NOW and user.created_at.tzinfo is UTC
    assert live == listed and (live.created_at, live.expires_at) == (NOW, NOW + TTL)


def test_expiry_holds_to_the_microsecond(store: Store) -> None:
    user_id = _user_id(store)
    expires_at = NOW + timedelta(microseconds=1)
    _add_session(store, _session(user_id, expires_at=expires_at))
    with store.transaction(readonly=True) as tx:
        assert tx.sessions.live("session-1", NOW) is not None
        assert tx.sessions.live("session-1", expires_at) is None
        assert tx.sessions.count_live(NOW) == 1
        assert tx.sessions.list_live(expires_at, user_id=user_id) == []


def test_naive_datetimes_are_refused(store: Store) -> None:
    user_id = _user_id(store)
    with pytest.raises(Exception, match="naive"):
        _add_session(store, _session(user_id, expires_at=(NOW + TTL).replace(tzinfo=None)))
    with store.transaction(readonly=True) as tx:
        assert tx.sessions.list_live(NOW) == []


def test_a_block_that_raises_rolls_everything_back(store: Store) -> None:
    user_id = _user_id(store)
    with pytest.raises(RuntimeError), store.transaction() as tx:
        tx.sessions.add(_session(user_id))
        tx.users.set_status(user_id, STATUS_ACTIVE, NOW)
        raise RuntimeError("after the writes")
    with store.transaction(readonly=True) as tx:
        assert tx.sessions.live("session-1", NOW) is None
        assert tx.users.by_id(user_id).status == "pending"  # type: ignore[union-attr]
    _add_session(store, _session(user_id))  # the connection went back clean
    with store.transaction(readonly=True) as tx:
        assert tx.sessions.live("session-1", NOW) is not None


def test_a_taken_name_is_a_conflict_and_exactly_one_of_many_wins(store: Store) -> None:
    outcomes = race(6, lambda: _user_id(store))
    assert len([outcome for outcome in outcomes if isinstance(outcome, int)]) == 1
    assert all(isinstance(outcome, StoreConflict) for outcome in outcomes if not isinstance(outcome, int))
    with store.engine.connect() as connection:
        assert len(connection.execute(select(User.id)).all()) == 1


def test_the_login_record_is_the_accounts_and_none_for_a_name_without_one(store: Store) -> None:
    user_id = _user_id(store, "alice")
    _user_id(store, "bob")
    with store.transaction(readonly=True) as tx:
        alice, nobody = tx.users.login_record("alice"), tx.users.login_record("mallory")
    assert alice is not None and (alice.id, alice.opaque_record) == (user_id, SECRET)
    assert nobody is None


def test_one_registration_per_name_at_a_time(store: Store) -> None:
    with store.transaction() as tx:
        tx.registrations.open("alice", "register", SECRET, NOW, NOW + TTL)
    with pytest.raises(StoreConflict), store.transaction() as tx:
        tx.registrations.open("alice", "register", SECRET, NOW + timedelta(seconds=1), NOW + TTL)
    with store.transaction() as tx:  # an expired one is replaced
        tx.registrations.open("alice", "password", SECRET, NOW + TTL, NOW + 2 * TTL)
    with store.transaction() as tx:
        assert tx.registrations.take("alice", "register") is None
        taken = tx.registrations.take("alice", "password")
        assert taken is not None and taken.server_secret == SECRET and taken.expires_at == NOW + 2 * TTL
        assert tx.registrations.take("alice", "password") is None


def test_a_login_is_spent_exactly_once(store: Store) -> None:
    def spend() -> str:
        with store.transaction() as tx:
            tx.spent_logins.spend("login-1", NOW + TTL)
        return "spent"

    outcomes = race(8, spend)
    assert outcomes.count("spent") == 1
    assert all(isinstance(outcome, StoreConflict) for outcome in outcomes if outcome != "spent")
    with store.transaction() as tx:
        tx.spent_logins.spend("login-2", NOW + 2 * TTL)
        assert tx.spent_logins.delete_expired(NOW + TTL) == 1
    with store.engine.connect() as connection:
        assert connection.execute(select(SpentLogin.id)).scalars().all() == ["login-2"]


def test_a_locked_row_makes_concurrent_writers_take_turns(store: Store) -> None:
    """A read-decide-write on a row read with lock=True loses no update, on both databases
    (SQLite's write transactions begin IMMEDIATE; PostgreSQL's row lock holds the others)."""
    user_id = _user_id(store)

    def count_one_failure() -> None:
        with store.transaction() as tx:
            user = tx.users.by_id(user_id, lock=True)
            assert user is not None
            tx.users.set_totp_state(user_id, None, user.totp_failures + 1, None)

    assert race(12, count_one_failure) == [None] * 12
    with store.transaction(readonly=True) as tx:
        assert tx.users.by_id(user_id).totp_failures == 12  # type: ignore[union-attr]


def test_ping_answers(store: Store) -> None:
    store.ping()


@pytest.fixture
def sqlite_store(tmp_path: Path) -> Iterator[Store]:
    store = Store(f"sqlite:///{tmp_path / 'cypher.db'}")
    upgrade(store.engine)
    yield store
    store.dispose()


def test_sqlite_connections_hold_under_concurrent_transactions(sqlite_store: Store) -> None:
    """Threads writing and reading at once each get a connection of their own; a finished read
    leaves no snapshot behind, so each sees every commit before it; none is lost."""
    store = sqlite_store
    user_id = _user_id(store)
    counter = itertools.count()

    def write_then_read() -> int:
        session_id = f"session-{next(counter)}"
        _add_session(store, _session(user_id, session_id))
        with store.transaction(readonly=True) as tx:
            assert tx.sessions.live(session_id, NOW) is not None
        return 1

    outcomes = [outcome for _ in range(5) for outcome in race(16, write_then_read)]
    assert outcomes == [1] * 80
    with store.transaction(readonly=True) as tx:
        assert len(tx.sessions.list_live(NOW, user_id=user_id)) == 80


def test_a_forked_process_opens_its_own_connections(sqlite_store: Store) -> None:
    """gunicorn with --preload forks after the app has run: a child must not use the parent's
    SQLite handles. The parent's pooled connection holds a TEMP table; the child must not see it."""
    with sqlite_store.engine.connect() as connection:
        connection.execute(text("CREATE TEMP TABLE marker (x INTEGER)"))
    child = os.fork()
    if child == 0:  # pragma: no cover - the child reports through its exit code
        try:
            with sqlite_store.engine.connect() as connection:
                found = connection.execute(text("SELECT count(*) FROM sqlite_temp_master WHERE name = 'marker'"))
                os._exit(0 if found.scalar() == 0 else 1)
        except BaseException:
            os._exit(2)
    _, status = os.waitpid(child, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    with sqlite_store.engine.connect() as connection:  # the parent still has its own
        assert connection.execute(text("SELECT count(*) FROM temp.marker")).scalar() == 0
