"""Statements on login regulation's counts; services/regulation.py decides what they mean."""

from __future__ import annotations

from datetime import datetime
from typing import Any, cast

from sqlalchemy import Connection, Row, Table, bindparam, delete, or_, select, text, update

from cypher.store.models import LoginRegulation, UTCDateTime
from cypher.store.records import RegulationCount

login_regulation = cast(Table, LoginRegulation.__table__)

# SQLite and PostgreSQL spell "insert unless the key is there" alike; a concurrent insert of the
# same key waits for the first and then does nothing.
_ENSURE = text(
    "INSERT INTO login_regulation (username, address, window_started_at, attempts, bans, updated_at) "
    "VALUES (:username, :address, :now, 0, 0, :now) ON CONFLICT DO NOTHING"
).bindparams(bindparam("now", type_=UTCDateTime()))
_COLUMNS = (
    login_regulation.c.username,
    login_regulation.c.address,
    login_regulation.c.window_started_at,
    login_regulation.c.attempts,
    login_regulation.c.banned_until,
    login_regulation.c.bans,
)
_LOCK = (
    select(*_COLUMNS)
    .where(
        login_regulation.c.username == bindparam("username"),
        login_regulation.c.address.in_(bindparam("addresses", expanding=True)),
    )
    .order_by(login_regulation.c.address)
    .with_for_update()
)
_SAVE = (
    update(login_regulation)
    .where(
        login_regulation.c.username == bindparam("key_username"),
        login_regulation.c.address == bindparam("key_address"),
    )
    .values(
        window_started_at=bindparam("window_started_at"),
        attempts=bindparam("attempts"),
        banned_until=bindparam("banned_until"),
        bans=bindparam("bans"),
        updated_at=bindparam("now"),
    )
)


def _count(row: Row[*tuple[Any, ...]]) -> RegulationCount:
    return RegulationCount(
        username=row.username,
        address=row.address,
        window_started_at=row.window_started_at,
        attempts=row.attempts,
        banned_until=row.banned_until,
        bans=row.bans,
    )


class Regulation:
    def __init__(self, connection: Connection) -> None:
        self._connection = connection

    def lock(self, username: str, addresses: list[str], now: datetime) -> dict[str, RegulationCount]:
        """The name's count for each address ("" for the name's own), by address; a missing one
        starts at zero. Locked against concurrent logins of the name until the transaction ends."""
        self._connection.execute(
            _ENSURE, [{"username": username, "address": address, "now": now} for address in addresses]
        )
        rows = self._connection.execute(_LOCK, {"username": username, "addresses": addresses})
        return {row.address: _count(row) for row in rows}

    def save(self, counts: list[RegulationCount], now: datetime) -> None:
        self._connection.execute(
            _SAVE,
            [
                {
                    "key_username": count.username,
                    "key_address": count.address,
                    "window_started_at": count.window_started_at,
                    "attempts": count.attempts,
                    "banned_until": count.banned_until,
                    "bans": count.bans,
                    "now": now,
                }
                for count in counts
            ],
        )

    def forget(self, username: str, addresses: list[str] | None = None) -> int:
        """Delete the name's counts for these addresses, or all of them."""
        statement = delete(login_regulation).where(login_regulation.c.username == username)
        if addresses is not None:
            statement = statement.where(login_regulation.c.address.in_(addresses))
        return self._connection.execute(statement).rowcount

    def of(self, username: str) -> list[RegulationCount]:
        rows = self._connection.execute(
            select(*_COLUMNS).where(login_regulation.c.username == username).order_by(login_regulation.c.address)
        )
        return [_count(row) for row in rows]

    def delete_quiet(self, before: datetime) -> int:
        """Delete the counts untouched since `before` whose ban, if any, ended before it too."""
        return self._connection.execute(
            delete(login_regulation).where(
                login_regulation.c.updated_at < before,
                or_(login_regulation.c.banned_until.is_(None), login_regulation.c.banned_until < before),
            )
        ).rowcount
