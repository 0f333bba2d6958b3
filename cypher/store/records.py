"""What the store hands to services: plain, frozen records, never rows or connections."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import cast

from sqlalchemy import Table

from cypher.services.sealing import SealedValue
from cypher.store.models import User
from cypher.store.sql import Row, utc, utc_required

users = cast(Table, User.__table__)

USER_COLUMNS = (
    users.c.id,
    users.c.username,
    users.c.status,
    users.c.opaque_record,
    users.c.opaque_record_key_id,
    users.c.totp_secret,
    users.c.totp_secret_key_id,
    users.c.totp_last_step,
    users.c.totp_failures,
    users.c.totp_locked_until,
    users.c.password_changed_at,
    users.c.created_at,
)


@dataclass(frozen=True)
class UserRecord:
    id: int
    username: str
    status: str
    opaque_record: SealedValue
    totp_secret: SealedValue | None
    totp_last_step: int | None
    totp_failures: int
    totp_locked_until: datetime | None
    password_changed_at: datetime | None
    created_at: datetime


# USER_COLUMNS for plain SQL (sql.py), in the same order.
USER_COLUMNS_SQL = ", ".join(f"users.{column.name}" for column in USER_COLUMNS)


def user_record(row: Row) -> UserRecord:
    """A UserRecord from a row selected with USER_COLUMNS (Core) or USER_COLUMNS_SQL."""
    (
        user_id,
        username,
        status,
        opaque_record,
        opaque_record_key_id,
        totp_secret,
        totp_secret_key_id,
        totp_last_step,
        totp_failures,
        totp_locked_until,
        password_changed_at,
        created_at,
    ) = row
    return UserRecord(
        id=user_id,
        username=username,
        status=status,
        opaque_record=SealedValue(opaque_record_key_id, opaque_record),
        totp_secret=None if totp_secret is None else SealedValue(totp_secret_key_id, totp_secret),
        totp_last_step=totp_last_step,
        totp_failures=totp_failures,
        totp_locked_until=utc(totp_locked_until),
        password_changed_at=utc(password_changed_at),
        created_at=utc_required(created_at),
    )
