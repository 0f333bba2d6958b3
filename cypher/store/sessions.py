"""Sessions, each naming its current refresh token. Rotation is one compare-and-set on the session row."""

from __future__ import annotations

import hmac
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from enum import Enum
from typing import cast

from sqlalchemy import Connection, Table, bindparam, delete, func, select, update

from cypher.store.database import Database
from cypher.store.models import UserSession
from cypher.store.records import users
from cypher.store.sql import Row, Transaction, utc_required

sessions = cast(Table, UserSession.__table__)


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
    """A session row to create, naming its first refresh token."""

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
    UNKNOWN = "unknown"  # no such session, or it has expired or been revoked


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
# The same columns, then revoked_at and refresh_token_id, live or not: a spent refresh token of a
# revoked session still answers token_reused.
_SELECT_SESSION_FOR_REFRESH = """
    SELECT sessions.id, sessions.user_id, users.username, sessions.created_at, sessions.last_seen_at,
           sessions.expires_at, sessions.ip, sessions.user_agent, sessions.revoked_at, sessions.refresh_token_id
    FROM sessions JOIN users ON users.id = sessions.user_id
    WHERE sessions.id = :session_id
"""
# The compare-and-set: only the current token of a live session moves it on (and marks it seen).
_ROTATE_REFRESH = """
    UPDATE sessions SET refresh_token_id = :new_token_id, last_seen_at = :now
    WHERE id = :session_id AND refresh_token_id = :token_id AND revoked_at IS NULL AND expires_at > :now
"""
_REVOKE_SESSION = "UPDATE sessions SET revoked_at = :now WHERE id = :session_id AND revoked_at IS NULL"
_TOUCH = "UPDATE sessions SET last_seen_at = :now WHERE id = :session_id"
_INSERT_SESSION = """
    INSERT INTO sessions (id, user_id, created_at, last_seen_at, expires_at, ip, user_agent, refresh_token_id)
    VALUES (:id, :user_id, :created_at, :created_at, :expires_at, :ip, :user_agent, :refresh_token_id)
"""


def revoke_sessions(connection: Connection, user_id: int, now: datetime, keep_session_id: str | None = None) -> int:
    """Revoke the user's live sessions but `keep_session_id`, inside the caller's transaction."""
    condition = [sessions.c.user_id == user_id, *_LIVE]
    if keep_session_id is not None:
        condition.append(sessions.c.id != keep_session_id)
    return connection.execute(update(sessions).where(*condition).values(revoked_at=now), {"now": now}).rowcount


def insert_session(transaction: Transaction, new: NewSession) -> None:
    """Create the session, naming its first refresh token, inside the caller's transaction."""
    transaction.execute(
        _INSERT_SESSION,
        {
            "id": new.session_id,
            "user_id": new.user_id,
            "created_at": new.created_at,
            "expires_at": new.expires_at,
            "ip": new.ip,
            "user_agent": new.user_agent,
            "refresh_token_id": new.refresh_token_id,
        },
    )


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
        self, token_id: str, session_id: str, now: datetime, successor: Callable[[SessionRecord], str]
    ) -> Rotation:
        """Move the session on from refresh token `token_id` to its successor, or detect reuse.

        `token_id` is the jti of an authentic refresh token of this session (the caller parsed
        it), so if it is not the session's current token it was spent before. `successor` gets
        the live session and returns the new token's jti. Of several concurrent calls with one
        token exactly one moves the session on; every other one finds the token spent and so
        revokes the session, as RFC 9700 recommends.
        """
        revoke = {"session_id": session_id, "now": now}
        with self._database.direct.writing() as transaction:
            row = transaction.first(_SELECT_SESSION_FOR_REFRESH, {"session_id": session_id})
            if row is None:
                return Rotation.UNKNOWN  # purged, or its account was deleted
            session, revoked_at, current_token_id = _session_record(row[:8]), row[8], row[9]
            if current_token_id is None or not hmac.compare_digest(current_token_id, token_id):
                transaction.execute(_REVOKE_SESSION, revoke)  # a no-op for a session already revoked
                return Rotation.REUSED
            if revoked_at is not None or session.expires_at <= now:
                return Rotation.UNKNOWN
            rotate = {"session_id": session_id, "token_id": token_id, "new_token_id": successor(session), "now": now}
            if transaction.execute(_ROTATE_REFRESH, rotate) != 1:
                # Spent since the read above: on PostgreSQL, by a concurrent refresh whose row
                # lock this statement waited for (SQLite's BEGIN IMMEDIATE lets no one between).
                transaction.execute(_REVOKE_SESSION, revoke)
                return Rotation.REUSED
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
        """Delete expired and revoked sessions, and with them the refresh tokens they name."""
        with self._database.writing() as connection:
            return connection.execute(
                delete(sessions).where((sessions.c.expires_at <= now) | sessions.c.revoked_at.is_not(None))
            ).rowcount
