"""Persistence over SQLAlchemy Core: SQLite by default, PostgreSQL when several machines serve.

The store holds statements; the services decide. A service opens a unit of work with
`with store.transaction() as tx:`, reads and writes through the small named statements of
`tx.users`, `tx.sessions` and the rest, and the block commits when it ends or rolls back when it
raises. A write transaction takes SQLite's write lock up front (BEGIN IMMEDIATE); on PostgreSQL
the rows a decision rests on are read with `lock=True` (SELECT ... FOR UPDATE).

Every statement is SQLAlchemy Core on a connection from SQLAlchemy's pool: one dialect for both
databases, and one datetime codec (models.UTCDateTime). Why Core: fixed SQL text through
SQLAlchemy costs the same per statement, and only the bare DB-API is cheaper, at the price of a
second way to talk to the database with its own parameter style, datetime codec and connection
handling (docs/performance.md has the measurement). The hot statements are built once, at import;
Core caches their compiled form. The ORM classes in models.py only define the tables, which
Alembic migrates.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Connection, text

from cypher.store.audit import AuditEvents
from cypher.store.database import WRITE, make_engine
from cypher.store.records import (
    AuditEvent,
    LoginRecord,
    NewSession,
    OpenRegistration,
    PassAuthUse,
    RefreshableSession,
    RegulationCount,
    SessionRecord,
    UserRecord,
)
from cypher.store.regulation import Regulation
from cypher.store.second_factor import PassAuthUses, RecoveryCodes
from cypher.store.sessions import Sessions
from cypher.store.users import Registrations, SpentLogins, StoreConflict, Users

__all__ = [
    "AuditEvent",
    "LoginRecord",
    "NewSession",
    "OpenRegistration",
    "PassAuthUse",
    "RefreshableSession",
    "RegulationCount",
    "SessionRecord",
    "Store",
    "StoreConflict",
    "Transaction",
    "UserRecord",
]


class Transaction:
    """The statements of one unit of work, on one connection."""

    def __init__(self, connection: Connection) -> None:
        self.users = Users(connection)
        self.registrations = Registrations(connection)
        self.spent_logins = SpentLogins(connection)
        self.recovery_codes = RecoveryCodes(connection)
        self.pass_auth_uses = PassAuthUses(connection)
        self.sessions = Sessions(connection)
        self.regulation = Regulation(connection)
        self.audit = AuditEvents(connection)


class Store:
    def __init__(self, url: str) -> None:
        self.engine = make_engine(url)
        self._write_engine = self.engine.execution_options(**{WRITE: True})

    @contextmanager
    def transaction(self, *, readonly: bool = False) -> Iterator[Transaction]:
        """One unit of work: committed when the block ends, rolled back when it raises. A
        read-only one is simply rolled back when its connection goes back to the pool."""
        if readonly:
            with self.engine.connect() as connection:
                yield Transaction(connection)
            return
        with self._write_engine.begin() as connection:
            yield Transaction(connection)

    def ping(self) -> None:
        """Raise when the database cannot be reached."""
        with self.engine.connect() as connection:
            connection.execute(text("SELECT 1"))

    def dispose(self) -> None:
        self.engine.dispose()
