"""Sessions and their refresh tokens. Rotation is one compare-and-set on the spent token."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from enum import Enum
from typing import cast

from sqlalchemy import Connection, Table, bindparam, delete, func, select, update

from cypher.store.database import Database
from cypher.store.models import RefreshToken, UserSession
from cypher.store.records import users
from cypher.store.sql import Row, Transaction, utc_required

sessions = cast(Table, UserSession.__table__)
refresh_tokens = cast(Table, RefreshToken.__table__)


@dataclass(frozen=True)
class SessionRecord:
    id: str
    user_id: int
    username: str
    created_at: datetime
    last_seen_at: datetime
    expires_at: datetime
    ip: str | None
    user_agent: str | None


@dataclass(frozen=True)
class NewSession:
    """A session row to create, with its first refresh token."""

    session_id: str
    user_id: int
    refresh_token_id: str
    created_at: datetime
    expires_at: datetime
    ip: str | None
    user_agent: str | None


class Rotation(Enum):
    ROTATED = "rotated"
    REUSED = "reused"  # the token was spent before: the session is now revoked
    UNKNOWN = "unknown"  # no such token, or it or its session has expired or been revoked


_SESSION_COLUMNS = (
    sessions.c.id,
    sessions.c.user_id,
    users.c.username,
    sessions.c.created_at,
    sessions.c.last_seen_at,
    sessions.c.expires_at,
    sessions.c.ip,
    sessions.c.user_agent,
)
_LIVE = (sessions.c.revoked_at.is_(None), sessions.c.expires_at > bindparam("now"))

# The request path's statements, in plain SQL (see sql.py); columns in SessionRecord's order.
_SELECT_LIVE_SESSION = """
    SELECT sessions.id, sessions.user_id, users.username, sessions.created_at, sessions.last_seen_at,
           sessions.expires_at, sessions.ip, sessions.user_agent
    FROM sessions JOIN users ON users.id = sessions.user_id
    WHERE sessions.id = :session_id AND sessions.revoked_at IS NULL AND sessions.expires_at > :now
"""
_SPEND_REFRESH = """
    UPDATE refresh_tokens SET spent_at = :now
    WHERE id = :token_id AND session_id = :session_id AND spent_at IS NULL AND expires_at > :now
"""
_SELECT_REFRESH_SPENT_AT = "SELECT spent_at FROM refresh_tokens WHERE id = :token_id AND session_id = :session_id"
_REVOKE_SESSION = "UPDATE sessions SET revoked_at = :now WHERE id = :session_id AND revoked_at IS NULL"
_TOUCH = "UPDATE sessions SET last_seen_at = :now WHERE id = :session_id"
_INSERT_SESSION = """
    INSERT INTO sessions (id, user_id, created_at, last_seen_at, expires_at, ip, user_agent)
    VALUES (:id, :user_id, :created_at, :created_at, :expires_at, :ip, :user_agent)
"""
_INSERT_REFRESH = """
    INSERT INTO refresh_tokens (id, session_id, issued_at, expires_at)
    VALUES (:id, :session_id, :issued_at, :expires_at)
"""


def revoke_sessions(connection: Connection, user_id: int, now: datetime, keep_session_id: str | None = None) -> int:
    """Revoke the user's live sessions but `keep_session_id`, inside the caller's transaction."""
    condition = [sessions.c.user_id == user_id, *_LIVE]
    if keep_session_id is not None:
        condition.append(sessions.c.id != keep_session_id)
    return connection.execute(update(sessions).where(*condition).values(revoked_at=now), {"now": now}).rowcount


def insert_session(transaction: Transaction, new: NewSession) -> None:
    """Create the session and its first refresh token, inside the caller's transaction."""
    transaction.execute(
        _INSERT_SESSION,
        {
            "id": new.session_id,
            "user_id": new.user_id,
            "created_at": new.created_at,
            "expires_at": new.expires_at,
            "ip": new.ip,
            "user_agent": new.user_agent,
        },
    )
    transaction.execute(
        _INSERT_REFRESH,
        {
            "id": new.refresh_token_id,
            "session_id": new.session_id,
            "issued_at": new.created_at,
            "expires_at": new.expires_at,
        },
    )


def _was_spent(transaction: Transaction, token: dict[str, str]) -> bool:
    """Whether the refresh token (`token_id`, `session_id`) exists and was spent before."""
    row = transaction.first(_SELECT_REFRESH_SPENT_AT, token)
    return row is not None and row[0] is not None


def _session_record(row: Row) -> SessionRecord:
    """A SessionRecord from a row of _SESSION_COLUMNS (Core) or _SELECT_LIVE_SESSION (SQL)."""
    session_id, user_id, username, created_at, last_seen_at, expires_at, ip, user_agent = row
    return SessionRecord(
        id=session_id,
        user_id=user_id,
        username=username,
        created_at=utc_required(created_at),
        last_seen_at=utc_required(last_seen_at),
        expires_at=utc_required(expires_at),
        ip=ip,
        user_agent=user_agent,
    )


class SessionStore:
    def __init__(self, database: Database) -> None:
        self._database = database

    def live_session(self, session_id: str, now: datetime) -> SessionRecord | None:
        """The session if it is neither revoked nor expired."""
        with self._database.direct.reading() as transaction:
            row = transaction.first(_SELECT_LIVE_SESSION, {"session_id": session_id, "now": now})
            return None if row is None else _session_record(row)

    def touch(self, session_id: str, now: datetime) -> None:
        with self._database.direct.writing() as transaction:
            transaction.execute(_TOUCH, {"session_id": session_id, "now": now})

    def rotate_refresh(
        self, token_id: str, session_id: str, now: datetime, successor: Callable[[SessionRecord], tuple[str, datetime]]
    ) -> Rotation:
        """Spend a refresh token and record its successor, or detect its reuse.

        `successor` gets the live session and returns the new refresh token's id and expiry.
        Of several concurrent calls with one token, exactly one finds it unspent; every other
        call finds it spent and so revokes the session, as RFC 9700 recommends.
        """
        token = {"token_id": token_id, "session_id": session_id}
        with self._database.direct.writing() as transaction:
            row = transaction.first(_SELECT_LIVE_SESSION, {"session_id": session_id, "now": now})
            if row is None:
                # Revoked or over: nothing is spent; a spent token still counts as reused.
                return Rotation.REUSED if _was_spent(transaction, token) else Rotation.UNKNOWN
            if transaction.execute(_SPEND_REFRESH, {**token, "now": now}) != 1:
                if not _was_spent(transaction, token):
                    return Rotation.UNKNOWN  # no such token, or it has expired
                transaction.execute(_REVOKE_SESSION, {"session_id": session_id, "now": now})
                return Rotation.REUSED
            new_token_id, new_expires_at = successor(_session_record(row))
            transaction.execute(
                _INSERT_REFRESH,
                {"id": new_token_id, "session_id": session_id, "issued_at": now, "expires_at": new_expires_at},
            )
            transaction.execute(_TOUCH, {"session_id": session_id, "now": now})
            return Rotation.ROTATED

    def count_live(self, now: datetime) -> int:
        with self._database.reading() as connection:
            live = select(func.count()).select_from(sessions).where(*_LIVE)
            return int(connection.execute(live, {"now": now}).scalar_one())

    def list_all_live(self, now: datetime) -> list[SessionRecord]:
        """Every live session of every account, newest first (for operators)."""
        with self._database.reading() as connection:
            rows = connection.execute(
                select(*_SESSION_COLUMNS)
                .join(users, users.c.id == sessions.c.user_id)
                .where(*_LIVE)
                .order_by(sessions.c.created_at.desc(), sessions.c.id),
                {"now": now},
            ).all()
            return [_session_record(row) for row in rows]

    def revoke_by_id(self, session_id: str, now: datetime) -> bool:
        """Revoke a live session whoever owns it (for operators)."""
        with self._database.writing() as connection:
            result = connection.execute(
                update(sessions).where(sessions.c.id == session_id, *_LIVE).values(revoked_at=now), {"now": now}
            )
            return result.rowcount == 1

    def list_live(self, user_id: int, now: datetime) -> list[SessionRecord]:
        with self._database.reading() as connection:
            rows = connection.execute(
                select(*_SESSION_COLUMNS)
                .join(users, users.c.id == sessions.c.user_id)
                .where(sessions.c.user_id == user_id, *_LIVE)
                .order_by(sessions.c.created_at.desc(), sessions.c.id),
                {"now": now},
            ).all()
            return [_session_record(row) for row in rows]

    def revoke(self, session_id: str, user_id: int, now: datetime) -> bool:
        """Revoke one of the user's live sessions; False when it is not theirs or not live."""
        with self._database.writing() as connection:
            result = connection.execute(
                update(sessions)
                .where(sessions.c.id == session_id, sessions.c.user_id == user_id, *_LIVE)
                .values(revoked_at=now),
                {"now": now},
            )
            return result.rowcount == 1

    def revoke_all(self, user_id: int, now: datetime) -> int:
        """Revoke every live session of the user; returns how many."""
        with self._database.writing() as connection:
            return revoke_sessions(connection, user_id, now)

    def purge(self, now: datetime) -> int:
        """Delete expired and revoked sessions (their refresh tokens go with them)."""
        with self._database.writing() as connection:
            return connection.execute(
                delete(sessions).where((sessions.c.expires_at <= now) | sessions.c.revoked_at.is_not(None))
            ).rowcount
