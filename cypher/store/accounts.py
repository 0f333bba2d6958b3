"""Accounts and their OPAQUE protocol state: users, open registrations, logins already used."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import Connection, Row, Table, delete, insert, select, update
from sqlalchemy.exc import IntegrityError

from cypher.services.sealing import SealedValue
from cypher.services.users import STATUS_PENDING
from cypher.store.database import Database
from cypher.store.models import RegistrationState, SpentLogin
from cypher.store.records import USER_COLUMNS, USER_COLUMNS_SQL, UserRecord, user_record, users
from cypher.store.sessions import revoke_sessions

registration_states = cast(Table, RegistrationState.__table__)
spent_logins = cast(Table, SpentLogin.__table__)

# Expired protocol state is garbage; it is cleared at most this often, on the way past.
GARBAGE_INTERVAL = timedelta(seconds=60)

REGISTER = "register"
PASSWORD_CHANGE = "password"


class StoreConflict(Exception):
    """A row that must be unique already exists."""


# The login path's statements, in plain SQL (see sql.py).
_SELECT_USER_BY_NAME = f"SELECT {USER_COLUMNS_SQL} FROM users WHERE username = :username"
_SELECT_USER_BY_ID = f"SELECT {USER_COLUMNS_SQL} FROM users WHERE id = :user_id"
_DELETE_EXPIRED_SPENT_LOGINS = "DELETE FROM spent_logins WHERE expires_at <= :now"
_SPEND_LOGIN = "INSERT INTO spent_logins (id, expires_at) VALUES (:id, :expires_at) ON CONFLICT (id) DO NOTHING"


def _open_state(
    connection: Connection, username: str, purpose: str, server_secret: SealedValue, now: datetime, ttl: timedelta
) -> None:
    """Keep the server's registration secret for `ttl`; StoreConflict while one is open for the name."""
    connection.execute(
        delete(registration_states).where(
            registration_states.c.username == username, registration_states.c.expires_at <= now
        )
    )
    try:
        connection.execute(
            insert(registration_states).values(
                username=username,
                purpose=purpose,
                server_secret=server_secret.ciphertext,
                server_secret_key_id=server_secret.key_id,
                created_at=now,
                expires_at=now + ttl,
            )
        )
    except IntegrityError:
        raise StoreConflict(purpose) from None


def _take_state(connection: Connection, username: str, purpose: str) -> Row[Any, Any, Any] | None:
    """Delete and return the name's open registration state of this purpose, live or not."""
    return connection.execute(
        delete(registration_states)
        .where(registration_states.c.username == username, registration_states.c.purpose == purpose)
        .returning(
            registration_states.c.server_secret,
            registration_states.c.server_secret_key_id,
            registration_states.c.expires_at,
        )
    ).first()


class AccountStore:
    def __init__(self, database: Database) -> None:
        self._database = database
        self._garbage_cleared_at: datetime | None = None

    def _garbage_due(self, now: datetime) -> bool:
        if self._garbage_cleared_at is not None and now - self._garbage_cleared_at < GARBAGE_INTERVAL:
            return False
        self._garbage_cleared_at = now
        return True

    # -- users ------------------------------------------------------------------------------

    def find_user(self, username: str) -> UserRecord | None:
        with self._database.direct.reading() as transaction:
            row = transaction.first(_SELECT_USER_BY_NAME, {"username": username})
            return None if row is None else user_record(row)

    def list_users(self) -> list[UserRecord]:
        with self._database.reading() as connection:
            return [user_record(row) for row in connection.execute(select(*USER_COLUMNS).order_by(users.c.username))]

    def change_status(self, user_id: int, from_status: str, to_status: str, now: datetime) -> int | None:
        """Move an account from one status to another; leaving `active` revokes its sessions.

        Returns how many sessions were revoked, or None when the account was not in `from_status`.
        """
        with self._database.writing() as connection:
            result = connection.execute(
                update(users)
                .where(users.c.id == user_id, users.c.status == from_status)
                .values(status=to_status, updated_at=now)
            )
            if result.rowcount != 1:
                return None
            return revoke_sessions(connection, user_id, now)

    # -- registration -----------------------------------------------------------------------

    def begin_registration(
        self, username: str, server_secret: SealedValue, now: datetime, ttl: timedelta, pending_cutoff: datetime
    ) -> None:
        """Hold the username for one registration; StoreConflict if it has an account or a live one.

        Pending accounts older than pending_cutoff are deleted first: their names are free again.
        """
        with self._database.writing() as connection:
            connection.execute(
                delete(users).where(users.c.status == STATUS_PENDING, users.c.created_at < pending_cutoff)
            )
            if connection.execute(select(users.c.id).where(users.c.username == username)).first() is not None:
                raise StoreConflict("user")
            _open_state(connection, username, REGISTER, server_secret, now, ttl)

    def finish_registration(
        self, username: str, now: datetime, seal_record: Callable[[SealedValue], SealedValue]
    ) -> UserRecord | None:
        """Spend the registration state and create the pending user in one transaction.

        seal_record turns the kept server secret into the sealed user record. Returns None when no
        live state exists; raises StoreConflict when the user exists (another request won).
        """
        with self._database.writing() as connection:
            state = _take_state(connection, username, REGISTER)
            if state is None or state.expires_at <= now:
                if connection.execute(select(users.c.id).where(users.c.username == username)).first() is not None:
                    raise StoreConflict("user")
                return None
            sealed = seal_record(SealedValue(state.server_secret_key_id, state.server_secret))
            try:
                row = connection.execute(
                    insert(users)
                    .values(
                        username=username,
                        status=STATUS_PENDING,
                        opaque_record=sealed.ciphertext,
                        opaque_record_key_id=sealed.key_id,
                        created_at=now,
                        updated_at=now,
                    )
                    .returning(*USER_COLUMNS)
                ).one()
            except IntegrityError:
                raise StoreConflict("user") from None
            return user_record(row)

    # -- login ------------------------------------------------------------------------------

    def spend_login(
        self, spent_key: str, expires_at: datetime, user_id: int | None, now: datetime
    ) -> UserRecord | None:
        """Mark a login used and read its account (None if it has none), in one transaction.

        StoreConflict when the login was used before: of two requests with one loginId, one wins.
        The account is read by id even when there is none (`id = NULL` finds no row), so both
        cases run the same statements.
        """
        with self._database.direct.writing() as transaction:
            if self._garbage_due(now):
                transaction.execute(_DELETE_EXPIRED_SPENT_LOGINS, {"now": now})
            if transaction.execute(_SPEND_LOGIN, {"id": spent_key, "expires_at": expires_at}) != 1:
                raise StoreConflict("login")
            row = transaction.first(_SELECT_USER_BY_ID, {"user_id": user_id})
            return None if row is None else user_record(row)

    # -- password change --------------------------------------------------------------------

    def begin_password_change(self, username: str, server_secret: SealedValue, now: datetime, ttl: timedelta) -> None:
        """Hold the account for one password change; StoreConflict while another one is open."""
        with self._database.writing() as connection:
            _open_state(connection, username, PASSWORD_CHANGE, server_secret, now, ttl)

    def finish_password_change(
        self,
        user_id: int,
        username: str,
        now: datetime,
        seal_record: Callable[[SealedValue], SealedValue],
        keep_session_id: str,
    ) -> int | None:
        """Store the new record and end everything the old password opened, in one transaction:
        every other session; pass-auth tokens issued before now are refused through
        password_changed_at, and logins in flight because their record is no longer the stored
        one (services/login_state.py). Returns how many sessions were revoked, or None when no
        password change is open."""
        with self._database.writing() as connection:
            state = _take_state(connection, username, PASSWORD_CHANGE)
            if state is None or state.expires_at <= now:
                return None
            sealed = seal_record(SealedValue(state.server_secret_key_id, state.server_secret))
            result = connection.execute(
                update(users)
                .where(users.c.id == user_id, users.c.username == username)
                .values(
                    opaque_record=sealed.ciphertext,
                    opaque_record_key_id=sealed.key_id,
                    password_changed_at=now,
                    updated_at=now,
                )
            )
            if result.rowcount != 1:
                return None
            return revoke_sessions(connection, user_id, now, keep_session_id)

    # -- removal ----------------------------------------------------------------------------

    def delete_user(self, user_id: int) -> bool:
        """Delete an account and its open password change; its sessions, tokens and codes go
        with it (ON DELETE CASCADE)."""
        with self._database.writing() as connection:
            username = connection.execute(select(users.c.username).where(users.c.id == user_id)).scalar_one_or_none()
            if username is None:
                return False
            connection.execute(delete(registration_states).where(registration_states.c.username == username))
            return connection.execute(delete(users).where(users.c.id == user_id)).rowcount == 1

    def purge(self, now: datetime, pending_cutoff: datetime) -> dict[str, int]:
        """Delete expired pending accounts and expired protocol state; how many of each."""
        with self._database.writing() as connection:
            return {
                "pending_accounts": connection.execute(
                    delete(users).where(users.c.status == STATUS_PENDING, users.c.created_at < pending_cutoff)
                ).rowcount,
                "registration_states": connection.execute(
                    delete(registration_states).where(registration_states.c.expires_at <= now)
                ).rowcount,
                "spent_logins": connection.execute(
                    delete(spent_logins).where(spent_logins.c.expires_at <= now)
                ).rowcount,
            }
