"""Plain SQL on the DB-API connection, for the statements every login and every request runs.

Why not SQLAlchemy Core here: on SQLite, Core's Connection costs about 25 us per transaction and
its execution layer about 20 us per statement on top of the 5-10 us SQLite itself spends; on the
login and gateway paths that was about half of the server's time (docs/performance.md). These
statements are fixed strings with `:name` parameters, run on a connection from SQLAlchemy's pool,
so the engine, the pool, pre-ping and the migrations stay SQLAlchemy's. Operator and other
infrequent paths keep Core, which reads better for dynamic statements.

Both databases see the same text: sqlite3 takes `:name` as it is; for psycopg it becomes
`%(name)s`. Datetimes go in as aware UTC datetimes and come out as aware UTC datetimes, stored as
SQLAlchemy's UTCDateTime columns store them (models.py), so both kinds of access share rows.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime
from functools import cache
from typing import Any

from sqlalchemy import Engine, QueuePool

_NAMED_PARAMETER = re.compile(r"(?<![:\w]):([a-z_][a-z0-9_]*)")

Row = tuple[Any, ...]


@cache
def pyformat(sql: str) -> str:
    """`:name` parameters as psycopg's `%(name)s`."""
    if "%" in sql:
        raise ValueError("a literal % in fixed SQL would need escaping for psycopg")
    return _NAMED_PARAMETER.sub(r"%(\1)s", sql)


def utc(value: datetime | str | None) -> datetime | None:
    """A datetime column's value as an aware UTC datetime (SQLite gives text, PostgreSQL naive)."""
    if value is None:
        return None
    moment = datetime.fromisoformat(value) if isinstance(value, str) else value
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def utc_required(value: datetime | str) -> datetime:
    """`utc` for a NOT NULL column."""
    moment = utc(value)
    if moment is None:
        raise ValueError("NULL in a NOT NULL datetime column")
    return moment


class Transaction:
    """Statements inside one transaction on one DB-API connection."""

    def __init__(self, cursor: Any, sqlite: bool) -> None:
        self._cursor = cursor
        self._sqlite = sqlite

    def execute(self, sql: str, parameters: Mapping[str, object]) -> int:
        """Run a statement; returns the number of rows it changed."""
        self._run(sql, parameters)
        return int(self._cursor.rowcount)

    def first(self, sql: str, parameters: Mapping[str, object]) -> Row | None:
        """Run a statement and return its first row (or None)."""
        self._run(sql, parameters)
        row: Row | None = self._cursor.fetchone()
        return row

    def _run(self, sql: str, parameters: Mapping[str, object]) -> None:
        self._cursor.execute(
            sql if self._sqlite else pyformat(sql),
            {name: self._bind(value) for name, value in parameters.items()},
        )

    def _bind(self, value: object) -> object:
        if not isinstance(value, datetime):
            return value
        if value.tzinfo is None:
            raise ValueError("naive datetimes are ambiguous; pass an aware UTC datetime")
        naive = value.astimezone(UTC).replace(tzinfo=None)
        # SQLAlchemy's SQLite DateTime text, which string comparisons in SQL depend on.
        return naive.isoformat(sep=" ", timespec="microseconds") if self._sqlite else naive


class DirectAccess:
    """Transactions on DB-API connections: SQLAlchemy's pool for PostgreSQL, a free list for SQLite.

    SQLite connections are a file handle each, with no server to lose and nothing to ping; the
    pool's checkout and return (events, a condition lock, a reset) cost about 20 us a time on the
    development VM, more than the statements of a session check (docs/performance.md). An
    in-memory SQLite database lives in its pool's one connection, so it keeps the pool.
    """

    MAX_IDLE_SQLITE = 8  # more at once are closed when returned (the pool's own default is 5 + 10)

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._sqlite = engine.dialect.name == "sqlite"
        self._own_connections = self._sqlite and isinstance(engine.pool, QueuePool)  # a database file
        self._idle: list[Any] = []  # list.pop and list.append are atomic
        self._pid = os.getpid()

    @contextmanager
    def reading(self) -> Iterator[Transaction]:
        """Reads only; on SQLite each statement is consistent on its own (autocommit)."""
        with self._connection() as connection:
            cursor = connection.cursor()
            try:
                yield Transaction(cursor, self._sqlite)
            finally:
                cursor.close()  # on SQLite, a finished statement holds no read snapshot
                if not self._sqlite:
                    connection.rollback()  # ends PostgreSQL's implicit transaction; nothing to keep

    @contextmanager
    def writing(self) -> Iterator[Transaction]:
        """One write transaction: committed when the block ends, rolled back when it raises.

        On SQLite it begins IMMEDIATE, so concurrent writers queue on the busy timeout instead of
        failing to upgrade a read lock (the same rule as Database.writing).
        """
        with self._connection() as connection:
            cursor = connection.cursor()
            try:
                if self._sqlite:
                    cursor.execute("BEGIN IMMEDIATE")
                try:
                    yield Transaction(cursor, self._sqlite)
                except BaseException:
                    connection.rollback()
                    raise
                connection.commit()
            finally:
                cursor.close()

    @contextmanager
    def _connection(self) -> Iterator[Any]:
        if not self._own_connections:
            pooled = self._engine.raw_connection()
            try:
                yield pooled
            finally:
                pooled.close()  # back to the pool, which resets it
            return
        if os.getpid() != self._pid:  # a forked process must not share its parent's SQLite handles
            self._idle, self._pid = [], os.getpid()
        try:
            connection = self._idle.pop()
        except IndexError:
            pooled = self._engine.raw_connection()  # made by the engine: its "connect" settings apply
            pooled.detach()  # from now on this list owns it; detached connections have no GC hook
            connection = pooled.dbapi_connection
        try:
            yield connection
        except BaseException:
            # The block rolled back what it began; a connection that cannot say so is dropped.
            if connection.in_transaction:
                connection.close()
                raise
            self._keep(connection)
            raise
        self._keep(connection)

    def _keep(self, connection: Any) -> None:
        if len(self._idle) < self.MAX_IDLE_SQLITE:
            self._idle.append(connection)
        else:
            connection.close()

    def dispose(self) -> None:
        """Close the idle SQLite connections (the engine's pool is disposed by its owner)."""
        while True:
            try:
                connection = self._idle.pop()
            except IndexError:
                return
            connection.close()
