"""What the store hands to services: plain, frozen records, never rows or connections."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import cast

from sqlalchemy import Row, Table

from cypher.services.sealing import SealedValue
from cypher.store.models import User

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


def user_record(row: Row) -> UserRecord:  # type: ignore[type-arg]
    """A UserRecord from a row selected with USER_COLUMNS."""
    return UserRecord(
        id=row.id,
        username=row.username,
        status=row.status,
        opaque_record=SealedValue(row.opaque_record_key_id, row.opaque_record),
        totp_secret=None if row.totp_secret is None else SealedValue(row.totp_secret_key_id, row.totp_secret),
        totp_last_step=row.totp_last_step,
        totp_failures=row.totp_failures,
        totp_locked_until=row.totp_locked_until,
        password_changed_at=row.password_changed_at,
        created_at=row.created_at,
    )
