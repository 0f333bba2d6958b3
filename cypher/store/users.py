"""Statements on accounts and their OPAQUE protocol state: users, open registrations, spent logins."""

from __future__ import annotations

from datetime import datetime
from typing import Any, cast

from sqlalchemy import Connection, Row, Table, bindparam, delete, insert, literal, select, update
from sqlalchemy.exc import IntegrityError

from cypher.domain import STATUS_PENDING, SealedValue
from cypher.store.models import RegistrationState, SpentLogin, User
from cypher.store.records import LoginRecord, OpenRegistration, UserRecord

users = cast(Table, User.__table__)
registration_states = cast(Table, RegistrationState.__table__)
spent_logins = cast(Table, SpentLogin.__table__)


class StoreConflict(Exception):
    """A row that must be unique already exists."""


_USER_COLUMNS = (
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
_SELECT_BY_NAME = select(*_USER_COLUMNS).where(users.c.username == bindparam("username"))
_SELECT_BY_ID = select(*_USER_COLUMNS).where(users.c.id == bindparam("user_id"))
# One row whether or not the name has an account (the account's, or NULLs), of three columns that
# need no conversion: /login/init must cost the same for both (services/login.py).
_SELECT_LOGIN_RECORD = select(users.c.id, users.c.opaque_record, users.c.opaque_record_key_id).select_from(
    select(literal(1).label("one")).subquery().outerjoin(users, users.c.username == bindparam("username"))
)
_LOCK_BY_NAME = _SELECT_BY_NAME.with_for_update()
_LOCK_BY_ID = _SELECT_BY_ID.with_for_update()
_UPDATE_USER = update(users).where(users.c.id == bindparam("user_id"))
_SET_TOTP_STATE = _UPDATE_USER.values(
    totp_last_step=bindparam("last_step"),
    totp_failures=bindparam("failures"),
    totp_locked_until=bindparam("locked_until"),
)
_INSERT_SPENT_LOGIN = insert(spent_logins)


def user_record(row: Row[*tuple[Any, ...]]) -> UserRecord:
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


class Users:
    def __init__(self, connection: Connection) -> None:
        self._connection = connection

    def by_name(self, username: str, *, lock: bool = False) -> UserRecord | None:
        """The account, locked against concurrent writers until the transaction ends if `lock`."""
        statement = _LOCK_BY_NAME if lock else _SELECT_BY_NAME
        row = self._connection.execute(statement, {"username": username}).first()
        return None if row is None else user_record(row)

    def login_record(self, username: str) -> LoginRecord | None:
        """The account's id and sealed OPAQUE record, read alike for a name with no account."""
        row = self._connection.execute(_SELECT_LOGIN_RECORD, {"username": username}).one()
        # Built from the row of NULLs too, and then dropped: the same work either way.
        record = LoginRecord(row.id, SealedValue(row.opaque_record_key_id, row.opaque_record))
        return None if row.id is None else record

    def by_id(self, user_id: int | None, *, lock: bool = False) -> UserRecord | None:
        statement = _LOCK_BY_ID if lock else _SELECT_BY_ID
        row = self._connection.execute(statement, {"user_id": user_id}).first()
        return None if row is None else user_record(row)

    def all(self) -> list[UserRecord]:
        return [user_record(row) for row in self._connection.execute(select(*_USER_COLUMNS).order_by(users.c.username))]

    def add_pending(self, username: str, record: SealedValue, now: datetime) -> UserRecord:
        """A new pending account; StoreConflict when the name is taken."""
        try:
            row = self._connection.execute(
                insert(users)
                .values(
                    username=username,
                    status=STATUS_PENDING,
                    opaque_record=record.ciphertext,
                    opaque_record_key_id=record.key_id,
                    created_at=now,
                    updated_at=now,
                )
                .returning(*_USER_COLUMNS)
            ).one()
        except IntegrityError:
            raise StoreConflict("user") from None
        return user_record(row)

    def delete_pending_created_before(self, cutoff: datetime) -> int:
        return self._connection.execute(
            delete(users).where(users.c.status == STATUS_PENDING, users.c.created_at < cutoff)
        ).rowcount

    def set_status(self, user_id: int, status: str, now: datetime) -> None:
        self._update(user_id, status=status, updated_at=now)

    def set_opaque_record(self, user_id: int, record: SealedValue, now: datetime) -> None:
        self._update(
            user_id,
            opaque_record=record.ciphertext,
            opaque_record_key_id=record.key_id,
            password_changed_at=now,
            updated_at=now,
        )

    def set_totp_secret(self, user_id: int, secret: SealedValue, now: datetime) -> None:
        """A new secret, with no step used yet."""
        self._update(
            user_id,
            totp_secret=secret.ciphertext,
            totp_secret_key_id=secret.key_id,
            totp_last_step=None,
            updated_at=now,
        )

    def set_totp_state(self, user_id: int, last_step: int | None, failures: int, locked_until: datetime | None) -> None:
        """The last step accepted, and the wrong codes in a row with the lockout they earned."""
        state = {"user_id": user_id, "last_step": last_step, "failures": failures, "locked_until": locked_until}
        self._connection.execute(_SET_TOTP_STATE, state)

    def delete(self, user_id: int) -> bool:
        """The account goes, and its sessions, codes and pass-auth records with it (ON DELETE CASCADE)."""
        return self._connection.execute(delete(users).where(users.c.id == user_id)).rowcount == 1

    def _update(self, user_id: int, **values: object) -> None:
        self._connection.execute(_UPDATE_USER.values(**values), {"user_id": user_id})


class Registrations:
    """The server's secret between the two steps of a registration, one per username at a time."""

    def __init__(self, connection: Connection) -> None:
        self._connection = connection

    def open(
        self, username: str, purpose: str, server_secret: SealedValue, now: datetime, expires_at: datetime
    ) -> None:
        """StoreConflict while another one is open for the name (an expired one is replaced)."""
        self._connection.execute(
            delete(registration_states).where(
                registration_states.c.username == username, registration_states.c.expires_at <= now
            )
        )
        try:
            self._connection.execute(
                insert(registration_states).values(
                    username=username,
                    purpose=purpose,
                    server_secret=server_secret.ciphertext,
                    server_secret_key_id=server_secret.key_id,
                    created_at=now,
                    expires_at=expires_at,
                )
            )
        except IntegrityError:
            raise StoreConflict(purpose) from None

    def take(self, username: str, purpose: str) -> OpenRegistration | None:
        """Delete and return the name's open registration of this purpose, live or not."""
        row = self._connection.execute(
            delete(registration_states)
            .where(registration_states.c.username == username, registration_states.c.purpose == purpose)
            .returning(
                registration_states.c.server_secret,
                registration_states.c.server_secret_key_id,
                registration_states.c.expires_at,
            )
        ).first()
        if row is None:
            return None
        return OpenRegistration(SealedValue(row.server_secret_key_id, row.server_secret), row.expires_at)

    def delete_for(self, username: str) -> None:
        self._connection.execute(delete(registration_states).where(registration_states.c.username == username))

    def delete_expired(self, now: datetime) -> int:
        return self._connection.execute(
            delete(registration_states).where(registration_states.c.expires_at <= now)
        ).rowcount


class SpentLogins:
    """The loginIds /login/finish has accepted, each kept until it would have expired."""

    def __init__(self, connection: Connection) -> None:
        self._connection = connection

    def spend(self, spent_key: str, expires_at: datetime) -> None:
        """StoreConflict when it was spent before: of two requests with one loginId, one wins."""
        try:
            self._connection.execute(_INSERT_SPENT_LOGIN, {"id": spent_key, "expires_at": expires_at})
        except IntegrityError:
            raise StoreConflict("login") from None

    def delete_expired(self, now: datetime) -> int:
        return self._connection.execute(delete(spent_logins).where(spent_logins.c.expires_at <= now)).rowcount
