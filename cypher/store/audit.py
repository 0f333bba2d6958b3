"""Statements on the audit log: write an event, read them back (a user's, or filtered), expire them."""

from __future__ import annotations

from datetime import datetime
from typing import Any, cast

from sqlalchemy import Connection, Row, Table, bindparam, delete, insert, select

from cypher.store.models import AuditEvent as AuditEventRow
from cypher.store.records import AuditEvent

audit_events = cast(Table, AuditEventRow.__table__)

_INSERT = insert(audit_events)
_COLUMNS = (
    audit_events.c.occurred_at,
    audit_events.c.event,
    audit_events.c.user_id,
    audit_events.c.username,
    audit_events.c.ip,
    audit_events.c.user_agent,
    audit_events.c.detail,
)
# Newest first; id breaks ties between events of one microsecond, in the order they were written.
_NEWEST_FIRST = (audit_events.c.occurred_at.desc(), audit_events.c.id.desc())
_OF_USER = (
    select(*_COLUMNS)
    .where(audit_events.c.user_id == bindparam("owner_id"), audit_events.c.occurred_at >= bindparam("since"))
    .order_by(*_NEWEST_FIRST)
    .limit(bindparam("most"))
)


def _event(row: Row[*tuple[Any, ...]]) -> AuditEvent:
    return AuditEvent(
        occurred_at=row.occurred_at,
        event=row.event,
        user_id=row.user_id,
        username=row.username,
        ip=row.ip,
        user_agent=row.user_agent,
        detail=dict(row.detail or {}),
    )


class AuditEvents:
    def __init__(self, connection: Connection) -> None:
        self._connection = connection

    def add(self, event: AuditEvent) -> None:
        self._connection.execute(
            _INSERT,
            {
                "occurred_at": event.occurred_at,
                "event": event.event,
                "user_id": event.user_id,
                "username": event.username,
                "ip": event.ip,
                "user_agent": event.user_agent,
                "detail": event.detail or None,
            },
        )

    def of_user(self, user_id: int, *, since: datetime, limit: int) -> list[AuditEvent]:
        """The newest events of a user id since a moment."""
        rows = self._connection.execute(_OF_USER, {"owner_id": user_id, "since": since, "most": limit})
        return [_event(row) for row in rows]

    def search(
        self, *, username: str | None, event_prefix: str | None, since: datetime | None, limit: int
    ) -> list[AuditEvent]:
        """The newest events matching every filter given: a username, an event name's start, a time."""
        statement = select(*_COLUMNS)
        if username is not None:
            statement = statement.where(audit_events.c.username == username)
        if event_prefix is not None:
            # Escaped: event names hold "_", LIKE's any-one-character.
            statement = statement.where(audit_events.c.event.startswith(event_prefix, autoescape=True))
        if since is not None:
            statement = statement.where(audit_events.c.occurred_at >= since)
        rows = self._connection.execute(statement.order_by(*_NEWEST_FIRST).limit(limit))
        return [_event(row) for row in rows]

    def delete_before(self, moment: datetime) -> int:
        return self._connection.execute(delete(audit_events).where(audit_events.c.occurred_at < moment)).rowcount
