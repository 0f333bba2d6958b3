"""Persistence: one `Store` over SQLAlchemy Core, SQLite by default, PostgreSQL for several machines.

Services get records (plain dataclasses), never rows or connections. Every method is one
transaction. Writes on SQLite begin with BEGIN IMMEDIATE so that concurrent writers queue on the
busy timeout instead of failing when a read lock cannot be upgraded. The ORM classes in models.py
define the tables; the queries here use Core, which costs a fraction of an ORM session on the
login path (see bench/login_cost.py).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Connection, Engine, Row, bindparam, create_engine, delete, event, insert, select, text, update
from sqlalchemy.exc import IntegrityError

from cypher.services.sealing import SealedValue
from cypher.store.models import LoginState, RegistrationState, User

SQLITE_BUSY_TIMEOUT_MS = 10_000
# Expired protocol state is garbage; it is cleared at most this often, on the way past.
GARBAGE_INTERVAL = timedelta(seconds=60)

users = User.__table__
registration_states = RegistrationState.__table__
login_states = LoginState.__table__


class StoreConflict(Exception):
    """A row that must be unique already exists."""


@dataclass(frozen=True)
class UserRecord:
    id: int
    username: str
    status: str
    opaque_record: SealedValue
    created_at: datetime


@dataclass(frozen=True)
class LoginStateRecord:
    login_id: str
    username: str
    expected_client_auth: SealedValue
    expires_at: datetime
    user: UserRecord | None  # None for an unknown name, or an account deleted since /login/init


_USER_COLUMNS = (users.c.id, users.c.username, users.c.status, users.c.opaque_record,
                 users.c.opaque_record_key_id, users.c.created_at)


# The statements of the login path, built once: building and caching a statement on every call
# costs more than running it on SQLite.
_SELECT_USER_BY_NAME = select(*_USER_COLUMNS).where(users.c.username == bindparam("username"))
_SELECT_USER_BY_ID = select(*_USER_COLUMNS).where(users.c.id == bindparam("user_id"))
_INSERT_LOGIN_STATE = insert(login_states)
_DELETE_EXPIRED_LOGIN_STATES = delete(login_states).where(login_states.c.expires_at <= bindparam("now"))
_TAKE_LOGIN_STATE = (
    delete(login_states)
    .where(login_states.c.id == bindparam("login_id"))
    .returning(
        login_states.c.username, login_states.c.user_id, login_states.c.expected_client_auth,
        login_states.c.expected_client_auth_key_id, login_states.c.expires_at,
    )
)


def _user_record(row: Row) -> UserRecord:  # type: ignore[type-arg]
    return UserRecord(
        id=row.id,
        username=row.username,
        status=row.status,
        opaque_record=SealedValue(row.opaque_record_key_id, row.opaque_record),
        created_at=row.created_at,
    )


def make_engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": SQLITE_BUSY_TIMEOUT_MS / 1000})

        @event.listens_for(engine, "connect")
        def _configure_sqlite(dbapi_connection, _record) -> None:  # type: ignore[no-untyped-def]
            # Let SQLAlchemy's "begin" event issue BEGIN, instead of pysqlite's implicit one.
            dbapi_connection.isolation_level = None
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            # With WAL, NORMAL never corrupts the database; only a power cut can lose the last
            # commits. It halves the cost of a commit on the login path.
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
            cursor.close()

        @event.listens_for(engine, "begin")
        def _begin_sqlite(connection) -> None:  # type: ignore[no-untyped-def]
            write = connection.get_execution_options().get("cypher_write", False)
            connection.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")

        return engine
    if url.startswith("postgresql://"):
        # psycopg 3 is the driver; a plain postgresql:// URL means it.
        url = "postgresql+psycopg://" + url.removeprefix("postgresql://")
    return create_engine(url, pool_pre_ping=True)


class Store:
    def __init__(self, url: str) -> None:
        self.url = url
        self.engine = make_engine(url)
        self._write_engine = self.engine.execution_options(cypher_write=True)
        self._garbage_cleared_at: datetime | None = None

    @contextmanager
    def reading(self) -> Iterator[Connection]:
        with self.engine.connect() as connection:
            yield connection

    @contextmanager
    def writing(self) -> Iterator[Connection]:
        with self._write_engine.begin() as connection:
            yield connection

    def dispose(self) -> None:
        self.engine.dispose()

    def ping(self) -> None:
        """Raise when the database cannot be reached."""
        with self.reading() as connection:
            connection.execute(text("SELECT 1"))

    def _garbage_due(self, now: datetime) -> bool:
        if self._garbage_cleared_at is not None and now - self._garbage_cleared_at < GARBAGE_INTERVAL:
            return False
        self._garbage_cleared_at = now
        return True

    # -- users ------------------------------------------------------------------------------

    def find_user(self, username: str) -> UserRecord | None:
        with self.reading() as connection:
            row = connection.execute(_SELECT_USER_BY_NAME, {"username": username}).first()
            return None if row is None else _user_record(row)

    def set_user_status(self, user_id: int, status: str, now: datetime) -> bool:
        """Change an account's status; False when it no longer exists."""
        with self.writing() as connection:
            result = connection.execute(
                update(users).where(users.c.id == user_id).values(status=status, updated_at=now)
            )
            return result.rowcount == 1

    # -- registration -----------------------------------------------------------------------

    def begin_registration(
        self, username: str, server_secret: SealedValue, now: datetime, ttl: timedelta, pending_cutoff: datetime
    ) -> None:
        """Hold the username for one registration; StoreConflict if it has an account or a live one.

        A pending account older than pending_cutoff is deleted first: its name is free again.
        """
        with self.writing() as connection:
            connection.execute(
                delete(users).where(
                    users.c.username == username, users.c.status == "pending", users.c.created_at < pending_cutoff
                )
            )
            connection.execute(
                delete(registration_states).where(
                    registration_states.c.username == username, registration_states.c.expires_at <= now
                )
            )
            if connection.execute(select(users.c.id).where(users.c.username == username)).first() is not None:
                raise StoreConflict("user")
            try:
                connection.execute(
                    insert(registration_states).values(
                        username=username,
                        server_secret=server_secret.ciphertext,
                        server_secret_key_id=server_secret.key_id,
                        created_at=now,
                        expires_at=now + ttl,
                    )
                )
            except IntegrityError:
                raise StoreConflict("registration") from None

    def finish_registration(
        self, username: str, now: datetime, seal_record: Callable[[SealedValue], SealedValue]
    ) -> UserRecord | None:
        """Spend the registration state and create the pending user in one transaction.

        seal_record turns the kept server secret into the sealed user record. Returns None when no
        live state exists; raises StoreConflict when the user exists (another request won).
        """
        with self.writing() as connection:
            state = connection.execute(
                delete(registration_states)
                .where(registration_states.c.username == username)
                .returning(
                    registration_states.c.server_secret,
                    registration_states.c.server_secret_key_id,
                    registration_states.c.expires_at,
                )
            ).first()
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
                        status="pending",
                        opaque_record=sealed.ciphertext,
                        opaque_record_key_id=sealed.key_id,
                        created_at=now,
                        updated_at=now,
                    )
                    .returning(*_USER_COLUMNS)
                ).one()
            except IntegrityError:
                raise StoreConflict("user") from None
            return _user_record(row)

    # -- login ------------------------------------------------------------------------------

    def create_login_state(
        self, login_id: str, username: str, user_id: int | None, expected_client_auth: SealedValue,
        now: datetime, ttl: timedelta,
    ) -> None:
        with self.writing() as connection:
            if self._garbage_due(now):
                connection.execute(_DELETE_EXPIRED_LOGIN_STATES, {"now": now})
            connection.execute(
                _INSERT_LOGIN_STATE,
                {
                    "id": login_id,
                    "username": username,
                    "user_id": user_id,
                    "expected_client_auth": expected_client_auth.ciphertext,
                    "expected_client_auth_key_id": expected_client_auth.key_id,
                    "created_at": now,
                    "expires_at": now + ttl,
                },
            )

    def take_login_state(self, login_id: str) -> LoginStateRecord | None:
        """Delete and return a login state with its account: of two requests with one id, one gets it."""
        with self.writing() as connection:
            state = connection.execute(_TAKE_LOGIN_STATE, {"login_id": login_id}).first()
            if state is None:
                return None
            user_row = None
            if state.user_id is not None:
                user_row = connection.execute(_SELECT_USER_BY_ID, {"user_id": state.user_id}).first()
            return LoginStateRecord(
                login_id=login_id,
                username=state.username,
                expected_client_auth=SealedValue(state.expected_client_auth_key_id, state.expected_client_auth),
                expires_at=state.expires_at,
                user=None if user_row is None else _user_record(user_row),
            )
