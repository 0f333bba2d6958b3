"""Persistence over SQLAlchemy Core: SQLite by default, PostgreSQL when several machines serve.

One `Store` per application, with one part per domain (as Authelia's storage does): `accounts`
(users and OPAQUE protocol state), `second_factor` (TOTP, recovery codes, pass-auth attempts) and
`sessions` (sessions and refresh tokens). Services get plain records, never rows or connections;
every method is one transaction. The ORM classes in models.py only define the tables. The
statements every login and request run are plain SQL on the pooled DB-API connection (sql.py);
the rest use SQLAlchemy Core (docs/performance.md says why).
"""

from __future__ import annotations

from sqlalchemy import Engine

from cypher.store.accounts import AccountStore, StoreConflict
from cypher.store.database import Database
from cypher.store.records import UserRecord
from cypher.store.second_factor import CodeProof, Lockout, SecondFactorStore, Verdict
from cypher.store.sessions import NewSession, Rotation, SessionRecord, SessionStore

__all__ = [
    "CodeProof",
    "Lockout",
    "NewSession",
    "Rotation",
    "SessionRecord",
    "Store",
    "StoreConflict",
    "UserRecord",
    "Verdict",
]


class Store:
    def __init__(self, url: str) -> None:
        self.database = Database(url)
        self.accounts = AccountStore(self.database)
        self.second_factor = SecondFactorStore(self.database)
        self.sessions = SessionStore(self.database)

    @property
    def engine(self) -> Engine:
        return self.database.engine

    def ping(self) -> None:
        self.database.ping()

    def dispose(self) -> None:
        self.database.dispose()
