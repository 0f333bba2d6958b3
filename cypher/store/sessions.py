"""Statements on sessions. Each session row names its one current refresh token."""

from __future__ import annotations

from datetime import datetime
from typing import Any, cast

from sqlalchemy import Connection, Row, Table, bindparam, delete, func, insert, select, update

from cypher.store.models import UserSession
from cypher.store.records import NewSession, RefreshableSession, SessionRecord
from cypher.store.users import users

sessions = cast(Table, UserSession.__table__)

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
_WITH_USER = sessions.join(users, users.c.id == sessions.c.user_id)
_SELECT_LIVE = select(*_SESSION_COLUMNS).select_from(_WITH_USER).where(sessions.c.id == bindparam("session_id"), *_LIVE)
_SELECT_FOR_REFRESH = (
    select(*_SESSION_COLUMNS, sessions.c.revoked_at, sessions.c.refresh_token_id)
    .select_from(_WITH_USER)
    .where(sessions.c.id == bindparam("session_id"))
    .with_for_update(of=sessions)
)
_UPDATE_SESSION = update(sessions).where(sessions.c.id == bindparam("session_id"))
_SET_REFRESH_TOKEN = _UPDATE_SESSION.values(refresh_token_id=bindparam("token_id"), last_seen_at=bindparam("now"))
_TOUCH = _UPDATE_SESSION.values(last_seen_at=bindparam("now"))
_REVOKE = _UPDATE_SESSION.where(sessions.c.revoked_at.is_(None)).values(revoked_at=bindparam("now"))
_INSERT = insert(sessions)


def _session_record(row: Row[*tuple[Any, ...]]) -> SessionRecord:
    return SessionRecord(
        id=row.id,
        user_id=row.user_id,
        username=row.username,
        created_at=row.created_at,
        last_seen_at=row.last_seen_at,
        expires_at=row.expires_at,
        ip=row.ip,
        user_agent=row.user_agent,
    )


class Sessions:
    def __init__(self, connection: Connection) -> None:
        self._connection = connection

    def add(self, new: NewSession) -> None:
        self._connection.execute(
            _INSERT,
            {
                "id": new.session_id,
                "user_id": new.user_id,
                "created_at": new.created_at,
                "last_seen_at": new.created_at,
                "expires_at": new.expires_at,
                "ip": new.ip,
                "user_agent": new.user_agent,
                "refresh_token_id": new.refresh_token_id,
            },
        )

    def live(self, session_id: str, now: datetime) -> SessionRecord | None:
        """The session if it is neither revoked nor expired."""
        row = self._connection.execute(_SELECT_LIVE, {"session_id": session_id, "now": now}).first()
        return None if row is None else _session_record(row)

    def for_refresh(self, session_id: str) -> RefreshableSession | None:
        """The session, live or not, locked until the transaction ends."""
        row = self._connection.execute(_SELECT_FOR_REFRESH, {"session_id": session_id}).first()
        if row is None:
            return None
        return RefreshableSession(_session_record(row), row.revoked_at is not None, row.refresh_token_id)

    def set_refresh_token(self, session_id: str, token_id: str, now: datetime) -> None:
        self._connection.execute(_SET_REFRESH_TOKEN, {"session_id": session_id, "token_id": token_id, "now": now})

    def touch(self, session_id: str, now: datetime) -> None:
        self._connection.execute(_TOUCH, {"session_id": session_id, "now": now})

    def revoke(self, session_id: str, now: datetime) -> None:
        """A no-op for a session already revoked."""
        self._connection.execute(_REVOKE, {"session_id": session_id, "now": now})

    def revoke_live(
        self,
        now: datetime,
        *,
        user_id: int | None = None,
        session_id: str | None = None,
        keep_session_id: str | None = None,
    ) -> int:
        """Revoke the live sessions that match (of a user, one by id, all but one); returns how many."""
        condition = [*_LIVE]
        if user_id is not None:
            condition.append(sessions.c.user_id == user_id)
        if session_id is not None:
            condition.append(sessions.c.id == session_id)
        if keep_session_id is not None:
            condition.append(sessions.c.id != keep_session_id)
        return self._connection.execute(
            update(sessions).where(*condition).values(revoked_at=now), {"now": now}
        ).rowcount

    def list_live(self, now: datetime, user_id: int | None = None) -> list[SessionRecord]:
        """Live sessions, of one user or of everyone, newest first."""
        statement = select(*_SESSION_COLUMNS).select_from(_WITH_USER).where(*_LIVE)
        if user_id is not None:
            statement = statement.where(sessions.c.user_id == user_id)
        rows = self._connection.execute(
            statement.order_by(sessions.c.created_at.desc(), sessions.c.id), {"now": now}
        ).all()
        return [_session_record(row) for row in rows]

    def count_live(self, now: datetime) -> int:
        return int(
            self._connection.execute(
                select(func.count()).select_from(sessions).where(*_LIVE), {"now": now}
            ).scalar_one()
        )

    def delete_ended(self, now: datetime) -> int:
        """Delete expired and revoked sessions."""
        return self._connection.execute(
            delete(sessions).where((sessions.c.expires_at <= now) | sessions.c.revoked_at.is_not(None))
        ).rowcount
