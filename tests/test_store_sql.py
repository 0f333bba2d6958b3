"""The request paths' plain SQL (cypher/store/sql.py) next to SQLAlchemy Core, on both databases.

Both kinds of access share rows, so each must read exactly what the other wrote: datetimes to the
microsecond, and expiry comparisons at the boundary (SQLite compares the stored text).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from cypher.services.sealing import SealedValue
from cypher.store import NewSession, Store
from cypher.store.sessions import insert_session
from cypher.store.sql import pyformat

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
