"""The engine and its transactions: SQLite by default, PostgreSQL (psycopg 3) for several machines."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Connection, Engine, create_engine, event, text

from cypher.store.sql import DirectAccess

SQLITE_BUSY_TIMEOUT_MS = 10_000


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
            if connection.get_execution_options().get("cypher_write", False):
                connection.exec_driver_sql("BEGIN IMMEDIATE")
            # A read is one statement, consistent on its own: SQLite's autocommit serves it
            # without a BEGIN and a ROLLBACK around it.

        return engine
    if url.startswith("postgresql://"):
        # psycopg 3 is the driver; a plain postgresql:// URL means it.
        url = "postgresql+psycopg://" + url.removeprefix("postgresql://")
    return create_engine(url, pool_pre_ping=True)


class Database:
    """One engine; `reading()` and `writing()` give a connection inside one transaction.

    Writes on SQLite begin with BEGIN IMMEDIATE so that concurrent writers queue on the busy
    timeout instead of failing when a read lock cannot be upgraded.
    """

    def __init__(self, url: str) -> None:
        self.engine = make_engine(url)
        # The login and request paths' fixed SQL, on the same pool (see sql.py).
        self.direct = DirectAccess(self.engine)
        self._write_engine = self.engine.execution_options(cypher_write=True)

    @contextmanager
    def reading(self) -> Iterator[Connection]:
        with self.engine.connect() as connection:
            yield connection

    @contextmanager
    def writing(self) -> Iterator[Connection]:
        with self._write_engine.begin() as connection:
            yield connection

    def ping(self) -> None:
        """Raise when the database cannot be reached."""
        with self.reading() as connection:
            connection.execute(text("SELECT 1"))

    def dispose(self) -> None:
        self.direct.dispose()
        self.engine.dispose()
