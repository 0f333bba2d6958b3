"""The request paths' plain SQL (cypher/store/sql.py) next to SQLAlchemy Core, on both databases.

Both kinds of access share rows, so each must read exactly what the other wrote: datetimes to the
microsecond, and expiry comparisons at the boundary (SQLite compares the stored text).
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from cypher.services.sealing import SealedValue
from cypher.store import NewSession, Store
from cypher.store.migrate import upgrade
from cypher.store.sessions import insert_session
from cypher.store.sql import pyformat
from tests.concurrency import race

NOW = datetime(2026, 11, 21, 12, 0, 0, 123456, tzinfo=UTC)
TTL = timedelta(minutes=5)


def _user_id(store: Store, username: str = "alice") -> int:
    """A user written through Core (registration)."""
    store.accounts.begin_registration(username, SealedValue("kid", b"secret"), NOW, TTL, pending_cutoff=NOW - TTL)
    user = store.accounts.finish_registration(username, NOW, lambda sealed: sealed)
    assert user is not None
    return user.id


def _session(user_id: int, session_id: str = "session-1", expires_at: datetime = NOW + TTL) -> NewSession:
    return NewSession(session_id, user_id, f"refresh-of-{session_id}", NOW, expires_at, "192.0.2.1", "pytest")


def test_core_and_plain_sql_read_each_others_datetimes(store: Store) -> None:
    user_id = _user_id(store)
    found = store.accounts.find_user("alice")  # plain SQL reads what Core wrote
    assert found is not None and found.created_at == NOW and found.created_at.tzinfo is UTC

    with store.database.direct.writing() as transaction:
        insert_session(transaction, _session(user_id))
    [listed] = store.sessions.list_live(user_id, NOW)  # Core reads what plain SQL wrote
    live = store.sessions.live_session("session-1", NOW)
    assert live == listed
    assert (live.created_at, live.expires_at) == (NOW, NOW + TTL)


def test_expiry_holds_to_the_microsecond_on_both_paths(store: Store) -> None:
    user_id = _user_id(store)
    expires_at = NOW + timedelta(microseconds=1)
    with store.database.direct.writing() as transaction:
        insert_session(transaction, _session(user_id, expires_at=expires_at))
    assert store.sessions.live_session("session-1", NOW) is not None
    assert store.sessions.live_session("session-1", expires_at) is None
    assert len(store.sessions.list_live(user_id, NOW)) == 1
    assert store.sessions.list_live(user_id, expires_at) == []


def test_a_revocation_through_core_ends_the_session_for_plain_sql(store: Store) -> None:
    user_id = _user_id(store)
    with store.database.direct.writing() as transaction:
        insert_session(transaction, _session(user_id))
    assert store.sessions.revoke_by_id("session-1", NOW)
    assert store.sessions.live_session("session-1", NOW) is None


def test_a_block_that_raises_rolls_everything_back(store: Store) -> None:
    user_id = _user_id(store)
    with pytest.raises(RuntimeError), store.database.direct.writing() as transaction:
        insert_session(transaction, _session(user_id))
        raise RuntimeError("after the insert")
    assert store.sessions.live_session("session-1", NOW) is None
    assert store.sessions.list_live(user_id, NOW) == []
    with store.database.direct.writing() as transaction:  # the connection went back clean
        insert_session(transaction, _session(user_id))
    assert store.sessions.live_session("session-1", NOW) is not None


def test_naive_datetimes_are_refused(store: Store) -> None:
    user_id = _user_id(store)
    with pytest.raises(ValueError, match="naive"), store.database.direct.writing() as transaction:
        insert_session(transaction, _session(user_id, expires_at=(NOW + TTL).replace(tzinfo=None)))
    assert store.sessions.list_live(user_id, NOW) == []


def test_named_parameters_become_psycopg_placeholders() -> None:
    assert pyformat("SELECT a FROM t WHERE id = :id AND b > :now") == (
        "SELECT a FROM t WHERE id = %(id)s AND b > %(now)s"
    )
    assert pyformat("SELECT x::text, :step") == "SELECT x::text, %(step)s"  # casts stay casts
    with pytest.raises(ValueError, match="%"):
        pyformat("SELECT 1 WHERE name LIKE 'a%'")


@pytest.fixture
def sqlite_store(tmp_path: Path) -> Iterator[Store]:
    """SQLite only: its connections are kept by DirectAccess, PostgreSQL's by SQLAlchemy's pool."""
    store = Store(f"sqlite:///{tmp_path / 'cypher.db'}")
    upgrade(store.engine)
    yield store
    store.dispose()


def _open_database_files(path: str) -> int:
    """How many of this process's file descriptors are open on the SQLite file `path`."""
    count = 0
    for fd in os.listdir("/proc/self/fd"):
        try:
            count += os.readlink(f"/proc/self/fd/{fd}") == path
        except OSError:
            continue
    return count


def test_sqlite_transactions_reuse_their_connection(sqlite_store: Store) -> None:
    """A TEMP table lives on one connection only: the next transaction finds it."""
    store = sqlite_store
    with store.database.direct.writing() as transaction:
        transaction.execute("CREATE TEMP TABLE marker (x INTEGER)", {})
    with store.database.direct.reading() as transaction:
        assert transaction.first("SELECT count(*) FROM temp.marker", {}) == (0,)


def test_sqlite_connections_hold_under_concurrent_transactions(sqlite_store: Store) -> None:
    """Threads writing and reading at once each get a connection of their own; a finished
    read leaves no snapshot behind, so each sees every commit before it; none is lost."""
    store = sqlite_store
    user_id = _user_id(store)
    counter = itertools.count()

    def write_then_read() -> int:
        session_id = f"session-{next(counter)}"
        with store.database.direct.writing() as transaction:
            insert_session(transaction, _session(user_id, session_id))
        assert store.sessions.live_session(session_id, NOW) is not None
        return 1

    outcomes = [outcome for _ in range(5) for outcome in race(16, write_then_read)]
    assert outcomes == [1] * 80
    assert len(store.sessions.list_live(user_id, NOW)) == 80


def test_dispose_closes_the_kept_connections(sqlite_store: Store) -> None:
    store = sqlite_store
    _user_id(store)
    race(12, lambda: store.accounts.find_user("alice"))  # more connections than are kept
    database_path = store.engine.url.database
    assert database_path is not None and _open_database_files(database_path) > 0
    store.dispose()
    assert _open_database_files(database_path) == 0


def test_an_in_memory_database_keeps_its_one_connection() -> None:
    """sqlite:// lives in its pool's single connection: plain SQL and Core must see one database."""
    store = Store("sqlite://")
    try:
        upgrade(store.engine)
        user_id = _user_id(store)
        with store.database.direct.writing() as transaction:
            insert_session(transaction, _session(user_id))
        assert [session.id for session in store.sessions.list_live(user_id, NOW)] == ["session-1"]
    finally:
        store.dispose()


def test_a_forked_process_opens_its_own_connections(sqlite_store: Store) -> None:
    """gunicorn with --preload forks after the app has run: a child must not use the parent's
    SQLite handles. The parent's kept connection holds a TEMP table; the child must not see it."""
    with sqlite_store.database.direct.writing() as transaction:
        transaction.execute("CREATE TEMP TABLE marker (x INTEGER)", {})
    child = os.fork()
    if child == 0:  # pragma: no cover - the child reports through its exit code
        try:
            with sqlite_store.database.direct.reading() as transaction:
                row = transaction.first("SELECT count(*) FROM sqlite_temp_master WHERE name = 'marker'", {})
            os._exit(0 if row == (0,) else 1)
        except BaseException:
            os._exit(2)
    _, status = os.waitpid(child, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    with sqlite_store.database.direct.reading() as transaction:  # the parent still has its own
        assert transaction.first("SELECT count(*) FROM temp.marker", {}) == (0,)
