"""The engine: SQLite by default, PostgreSQL (psycopg 3) when several machines serve."""

from __future__ import annotations

import os
import sqlite3
from typing import Any

from sqlalchemy import Engine, create_engine, event, exc, make_url
from sqlalchemy.pool import ConnectionPoolEntry

SQLITE_BUSY_TIMEOUT_MS = 10_000
# A PostgreSQL host that does not answer at all must fail a request well within gunicorn's worker
# timeout (30 s), as a 503, rather than wait for the OS's TCP timeout. `?connect_timeout=` overrides.
POSTGRES_CONNECT_TIMEOUT_SECONDS = 5
WRITE = "cypher_write"  # the execution option that marks a write transaction


def make_engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": SQLITE_BUSY_TIMEOUT_MS / 1000})
        event.listen(engine, "connect", _configure_sqlite)
        event.listen(engine, "begin", _begin_sqlite)
    else:
        if url.startswith("postgresql://"):
            url = "postgresql+psycopg://" + url.removeprefix("postgresql://")  # psycopg 3 is the driver
        connect_args = (
            {} if "connect_timeout" in make_url(url).query else {"connect_timeout": POSTGRES_CONNECT_TIMEOUT_SECONDS}
        )
        engine = create_engine(url, pool_pre_ping=True, connect_args=connect_args)
    _forget_connections_across_fork(engine)
    return engine


def _configure_sqlite(dbapi_connection: Any, _record: ConnectionPoolEntry) -> None:
    # SQLAlchemy's "begin" event decides how a transaction begins, not pysqlite's implicit BEGIN.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    # With WAL, NORMAL never corrupts the database; only a power cut can lose the last commits.
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    cursor.close()


def _begin_sqlite(connection: Any) -> None:
    # A writer takes the write lock up front, so that concurrent writers queue on the busy timeout
    # instead of failing to upgrade a read lock. A read is one statement, consistent on its own.
    if connection.get_execution_options().get(WRITE, False):
        try:
            connection.connection.dbapi_connection.execute("BEGIN IMMEDIATE")
        except sqlite3.Error:
            # Once more through SQLAlchemy, which wraps the error as for any other statement (a
            # file that cannot be written: OperationalError, a 503); the fast path stays bare.
            connection.exec_driver_sql("BEGIN IMMEDIATE")


def _forget_connections_across_fork(engine: Engine) -> None:
    """A forked child (gunicorn with --preload) must not use its parent's connections: SQLAlchemy's
    recipe for pools and os.fork()."""

    @event.listens_for(engine, "connect")
    def _remember_pid(_dbapi_connection: Any, record: ConnectionPoolEntry) -> None:
        record.info["pid"] = os.getpid()

    @event.listens_for(engine, "checkout")
    def _refuse_inherited(_dbapi_connection: Any, record: Any, proxy: Any) -> None:
        if record.info["pid"] != os.getpid():
            # Dropped without closing it: the parent still uses it.
            record.dbapi_connection = proxy.dbapi_connection = None
            raise exc.DisconnectionError("a connection of the parent process; the pool makes a new one")
