"""Persistence: one `Store` over SQLAlchemy, SQLite by default, PostgreSQL for several machines.

Services get records (plain dataclasses), never ORM objects or sessions. Every method is one
transaction. Writes on SQLite begin with BEGIN IMMEDIATE so that concurrent writers queue on the
busy timeout instead of failing when a read lock cannot be upgraded.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Engine, create_engine, delete, event, select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from cypher.services.sealing import SealedValue
from cypher.store.models import LoginState, RegistrationState, User

SQLITE_BUSY_TIMEOUT_MS = 10_000


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
    user_id: int | None
    expected_client_auth: SealedValue
    expires_at: datetime


def _user_record(row: User) -> UserRecord:
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
        self._read = sessionmaker(self.engine, expire_on_commit=False)
        self._write = sessionmaker(self.engine.execution_options(cypher_write=True), expire_on_commit=False)

    @contextmanager
    def reading(self) -> Iterator[Session]:
        with self._read.begin() as session:
            yield session

    @contextmanager
    def writing(self) -> Iterator[Session]:
        with self._write.begin() as session:
            yield session

    def dispose(self) -> None:
        self.engine.dispose()

    def ping(self) -> None:
        """Raise when the database cannot be reached."""
        with self.engine.connect() as connection:
            connection.execute(text("SELECT 1"))

    # -- users ------------------------------------------------------------------------------

    def find_user(self, username: str) -> UserRecord | None:
        with self.reading() as session:
            row = session.scalar(select(User).where(User.username == username))
            return None if row is None else _user_record(row)

    def user_by_id(self, user_id: int) -> UserRecord | None:
        with self.reading() as session:
            row = session.get(User, user_id)
            return None if row is None else _user_record(row)

    def set_user_status(self, user_id: int, status: str, now: datetime) -> bool:
        """Change an account's status; False when it no longer exists."""
        with self.writing() as session:
            row = session.get(User, user_id)
            if row is None:
                return False
            row.status = status
            row.updated_at = now
            return True

    # -- registration -----------------------------------------------------------------------

    def begin_registration(
        self, username: str, server_secret: SealedValue, now: datetime, ttl: timedelta, pending_cutoff: datetime
    ) -> None:
        """Hold the username for one registration; StoreConflict if it has an account or a live one.

        A pending account older than pending_cutoff is deleted first: its name is free again.
        """
        with self.writing() as session:
            session.execute(
                delete(User).where(User.username == username, User.status == "pending", User.created_at < pending_cutoff)
            )
            session.execute(
                delete(RegistrationState).where(RegistrationState.username == username, RegistrationState.expires_at <= now)
            )
            if session.scalar(select(User.id).where(User.username == username)) is not None:
                raise StoreConflict("user")
            if session.get(RegistrationState, username) is not None:
                raise StoreConflict("registration")
            session.add(
                RegistrationState(
                    username=username,
                    server_secret=server_secret.ciphertext,
                    server_secret_key_id=server_secret.key_id,
                    created_at=now,
                    expires_at=now + ttl,
                )
            )
            try:
                session.flush()
            except IntegrityError:
                raise StoreConflict("registration") from None

    def finish_registration(
        self, username: str, now: datetime, seal_record: Callable[[SealedValue], SealedValue]
    ) -> UserRecord | None:
        """Spend the registration state and create the pending user in one transaction.

        seal_record turns the kept server secret into the sealed user record. Returns None when no
        live state exists; raises StoreConflict when the user exists (another request won).
        """
        with self.writing() as session:
            state = session.execute(
                delete(RegistrationState)
                .where(RegistrationState.username == username)
                .returning(
                    RegistrationState.server_secret, RegistrationState.server_secret_key_id, RegistrationState.expires_at
                )
            ).first()
            if state is None or state.expires_at <= now:
                if session.scalar(select(User.id).where(User.username == username)) is not None:
                    raise StoreConflict("user")
                return None
            sealed = seal_record(SealedValue(state.server_secret_key_id, state.server_secret))
            user = User(
                username=username,
                status="pending",
                opaque_record=sealed.ciphertext,
                opaque_record_key_id=sealed.key_id,
                created_at=now,
                updated_at=now,
            )
            session.add(user)
            try:
                session.flush()
            except IntegrityError:
                raise StoreConflict("user") from None
            return _user_record(user)

    # -- login ------------------------------------------------------------------------------

    def create_login_state(
        self, login_id: str, username: str, user_id: int | None, expected_client_auth: SealedValue,
        now: datetime, ttl: timedelta,
    ) -> None:
        with self.writing() as session:
            # Expired states are garbage; clearing them here keeps the table small without a job.
            session.execute(delete(LoginState).where(LoginState.expires_at <= now))
            session.add(
                LoginState(
                    id=login_id,
                    username=username,
                    user_id=user_id,
                    expected_client_auth=expected_client_auth.ciphertext,
                    expected_client_auth_key_id=expected_client_auth.key_id,
                    created_at=now,
                    expires_at=now + ttl,
                )
            )

    def take_login_state(self, login_id: str) -> LoginStateRecord | None:
        """Delete and return a login state: of two requests with one login id, one gets it."""
        with self.writing() as session:
            row = session.execute(
                delete(LoginState)
                .where(LoginState.id == login_id)
                .returning(
                    LoginState.username, LoginState.user_id, LoginState.expected_client_auth,
                    LoginState.expected_client_auth_key_id, LoginState.expires_at,
                )
            ).first()
            if row is None:
                return None
            return LoginStateRecord(
                login_id=login_id,
                username=row.username,
                user_id=row.user_id,
                expected_client_auth=SealedValue(row.expected_client_auth_key_id, row.expected_client_auth),
                expires_at=row.expires_at,
            )
