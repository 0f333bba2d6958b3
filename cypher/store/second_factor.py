"""Statements on the second factor's own rows: recovery codes and pass-auth attempts.

A user's TOTP secret, last used step and failure count live on the user row (users.py)."""

from __future__ import annotations

from datetime import datetime
from typing import cast

from sqlalchemy import Connection, Table, bindparam, delete, func, insert, select, update

from cypher.store.models import PassAuthUse as PassAuthUseRow
from cypher.store.models import RecoveryCode
from cypher.store.records import PassAuthUse

recovery_codes = cast(Table, RecoveryCode.__table__)
pass_auth_uses = cast(Table, PassAuthUseRow.__table__)

_SPEND_CODE = (
    update(recovery_codes)
    .where(
        recovery_codes.c.user_id == bindparam("owner_id"),
        recovery_codes.c.used_at.is_(None),
        recovery_codes.c.key_id == bindparam("hash_key_id"),
        recovery_codes.c.code_hash == bindparam("hash"),
    )
    .values(used_at=bindparam("now"))
)


class RecoveryCodes:
    """One-time codes, stored as keyed hashes with the id of the key that hashed them."""

    def __init__(self, connection: Connection) -> None:
        self._connection = connection

    def add(self, user_id: int, code_hashes: list[bytes], key_id: str) -> None:
        self._connection.execute(
            insert(recovery_codes),
            [{"user_id": user_id, "code_hash": code_hash, "key_id": key_id} for code_hash in code_hashes],
        )

    def delete_for(self, user_id: int) -> None:
        self._connection.execute(delete(recovery_codes).where(recovery_codes.c.user_id == user_id))

    def spend(self, user_id: int, key_id: str, code_hash: bytes, now: datetime) -> bool:
        """Mark the unused code with this hash used; False when there is none."""
        spend = {"owner_id": user_id, "hash_key_id": key_id, "hash": code_hash, "now": now}
        return self._connection.execute(_SPEND_CODE, spend).rowcount == 1

    def was_spent(self, user_id: int, key_id: str, code_hash: bytes) -> bool:
        """Whether the user holds this code and has used it already."""
        found = self._connection.execute(
            select(recovery_codes.c.used_at).where(
                recovery_codes.c.user_id == user_id,
                recovery_codes.c.key_id == key_id,
                recovery_codes.c.code_hash == code_hash,
                recovery_codes.c.used_at.is_not(None),
            )
        ).first()
        return found is not None

    def count_unused(self, user_id: int) -> int:
        return int(
            self._connection.execute(
                select(func.count())
                .select_from(recovery_codes)
                .where(recovery_codes.c.user_id == user_id, recovery_codes.c.used_at.is_(None))
            ).scalar_one()
        )


_SELECT_USE = select(pass_auth_uses.c.attempts, pass_auth_uses.c.spent_at).where(
    pass_auth_uses.c.token_id == bindparam("token_id")
)
_INSERT_USE = insert(pass_auth_uses)
# Bound parameters of an UPDATE may not take a column's name.
_UPDATE_USE = (
    update(pass_auth_uses)
    .where(pass_auth_uses.c.token_id == bindparam("use_id"))
    .values(attempts=bindparam("new_attempts"), spent_at=bindparam("spent"))
)


class PassAuthUses:
    """Each pass-auth token's attempts at the second step, and when it opened a session."""

    def __init__(self, connection: Connection) -> None:
        self._connection = connection

    def find(self, token_id: str) -> PassAuthUse | None:
        row = self._connection.execute(_SELECT_USE, {"token_id": token_id}).first()
        return None if row is None else PassAuthUse(row.attempts, spent=row.spent_at is not None)

    def add(self, token_id: str, user_id: int, expires_at: datetime, attempts: int, spent_at: datetime | None) -> None:
        self._connection.execute(
            _INSERT_USE,
            {
                "token_id": token_id,
                "user_id": user_id,
                "attempts": attempts,
                "spent_at": spent_at,
                "expires_at": expires_at,
            },
        )

    def update(self, token_id: str, attempts: int, spent_at: datetime | None) -> None:
        self._connection.execute(_UPDATE_USE, {"use_id": token_id, "new_attempts": attempts, "spent": spent_at})

    def delete_expired(self, now: datetime) -> int:
        return self._connection.execute(delete(pass_auth_uses).where(pass_auth_uses.c.expires_at <= now)).rowcount
