"""The second factor: TOTP secrets and their last used step, recovery codes, pass-auth attempts."""

from __future__ import annotations

from datetime import datetime
from enum import Enum
from typing import cast

from sqlalchemy import Connection, Table, and_, bindparam, delete, insert, or_, select, update

from cypher.services.sealing import SealedValue
from cypher.services.users import STATUS_ACTIVE, STATUS_PENDING
from cypher.store.database import Database
from cypher.store.models import PassAuthUse, RecoveryCode
from cypher.store.records import USER_COLUMNS, UserRecord, user_record, users
from cypher.store.sessions import NewSession, insert_session

recovery_codes = cast(Table, RecoveryCode.__table__)
pass_auth_uses = cast(Table, PassAuthUse.__table__)


class Attempt(Enum):
    ALLOWED = "allowed"  # counted; go on and check the code
    EXHAUSTED = "exhausted"  # the token has had all its attempts
    SPENT = "spent"  # the token already opened a session
    NO_ACCOUNT = "no_account"  # the account is gone or not active


class Opened(Enum):
    OPENED = "opened"
    CODE_REFUSED = "code_refused"  # a replayed step, or a used or unknown recovery code
    PASS_AUTH_SPENT = "pass_auth_spent"  # another request with the token opened a session first


class _Refused(Exception):
    """Rolls back the transaction of open_session."""

    def __init__(self, outcome: Opened) -> None:
        self.outcome = outcome


# The compare-and-set that makes each TOTP step usable once per account.
_STEP_IS_NEW = or_(users.c.totp_last_step.is_(None), users.c.totp_last_step < bindparam("step"))
_CLAIM_STEP = (
    update(users)
    .where(users.c.id == bindparam("user_id"), users.c.status == STATUS_ACTIVE, _STEP_IS_NEW)
    .values(totp_last_step=bindparam("step"))
)
_SELECT_ACTIVE_USER = select(*USER_COLUMNS).where(
    users.c.username == bindparam("username"), users.c.status == STATUS_ACTIVE
)
_SPEND_PASS_AUTH = (
    update(pass_auth_uses)
    .where(pass_auth_uses.c.token_id == bindparam("b_token_id"), pass_auth_uses.c.spent_at.is_(None))
    .values(spent_at=bindparam("now"))
)


class SecondFactorStore:
    def __init__(self, database: Database) -> None:
        self._database = database
        # One statement counts an attempt: the first creates the row, later ones add one while
        # the token is unspent and under the limit; no row comes back when it may not be tried.
        upsert = database.insert_for_upsert(pass_auth_uses)
        self._count_attempt = upsert.on_conflict_do_update(
            index_elements=[pass_auth_uses.c.token_id],
            set_={"attempts": pass_auth_uses.c.attempts + 1},
            where=(pass_auth_uses.c.spent_at.is_(None)) & (pass_auth_uses.c.attempts < bindparam("max_attempts")),
        ).returning(pass_auth_uses.c.attempts)

    # -- TOTP -------------------------------------------------------------------------------

    def set_pending_totp_secret(self, user_id: int, secret: SealedValue, now: datetime) -> bool:
        """Store a new secret for a pending account; False once the account is active."""
        with self._database.writing() as connection:
            result = connection.execute(
                update(users)
                .where(users.c.id == user_id, users.c.status == STATUS_PENDING)
                .values(
                    totp_secret=secret.ciphertext, totp_secret_key_id=secret.key_id, totp_last_step=None, updated_at=now
                )
            )
            return result.rowcount == 1

    def activate(self, user_id: int, step: int, code_hashes: list[bytes], key_id: str, now: datetime) -> bool:
        """Make a pending account active with its first accepted step and its recovery codes."""
        with self._database.writing() as connection:
            result = connection.execute(
                update(users)
                .where(users.c.id == user_id, users.c.status == STATUS_PENDING, _STEP_IS_NEW)
                .values(status=STATUS_ACTIVE, totp_last_step=step, updated_at=now),
                {"step": step},
            )
            if result.rowcount != 1:
                return False
            self._insert_codes(connection, user_id, code_hashes, key_id)
            return True

    def claim_step(self, user_id: int, step: int) -> bool:
        """Record `step` as used; False when it, or a later one, was used before (a replay)."""
        with self._database.writing() as connection:
            return connection.execute(_CLAIM_STEP, {"user_id": user_id, "step": step}).rowcount == 1

    # -- recovery codes ---------------------------------------------------------------------

    @staticmethod
    def _insert_codes(connection: Connection, user_id: int, code_hashes: list[bytes], key_id: str) -> None:
        connection.execute(
            insert(recovery_codes),
            [{"user_id": user_id, "code_hash": code_hash, "key_id": key_id} for code_hash in code_hashes],
        )

    @staticmethod
    def _spend_recovery_code(
        connection: Connection, user_id: int, candidate_hashes: dict[str, bytes], now: datetime
    ) -> bool:
        """Spend the unused code whose hash (under its key id) is among the candidates."""
        if not candidate_hashes:
            return False
        matches = or_(
            *(
                and_(recovery_codes.c.key_id == key_id, recovery_codes.c.code_hash == code_hash)
                for key_id, code_hash in candidate_hashes.items()
            )
        )
        result = connection.execute(
            update(recovery_codes)
            .where(recovery_codes.c.user_id == user_id, recovery_codes.c.used_at.is_(None), matches)
            .values(used_at=now)
        )
        return result.rowcount == 1

    def replace_recovery_codes(self, user_id: int, code_hashes: list[bytes], key_id: str) -> None:
        with self._database.writing() as connection:
            connection.execute(delete(recovery_codes).where(recovery_codes.c.user_id == user_id))
            self._insert_codes(connection, user_id, code_hashes, key_id)

    def unused_recovery_codes(self, user_id: int) -> int:
        with self._database.reading() as connection:
            rows = connection.execute(
                select(recovery_codes.c.id).where(
                    recovery_codes.c.user_id == user_id, recovery_codes.c.used_at.is_(None)
                )
            ).all()
            return len(rows)

    # -- pass-auth attempts -----------------------------------------------------------------

    def count_attempt(
        self, token_id: str, username: str, max_attempts: int, expires_at: datetime
    ) -> tuple[Attempt, UserRecord | None]:
        """Count one attempt with a pass-auth token, before its code is checked; with the account."""
        with self._database.writing() as connection:
            row = connection.execute(_SELECT_ACTIVE_USER, {"username": username}).first()
            if row is None:
                return Attempt.NO_ACCOUNT, None
            user = user_record(row)
            counted = connection.execute(
                self._count_attempt,
                {
                    "token_id": token_id,
                    "user_id": user.id,
                    "attempts": 1,
                    "expires_at": expires_at,
                    "max_attempts": max_attempts,
                },
            ).first()
            if counted is not None:
                return Attempt.ALLOWED, user
            spent_at = connection.execute(
                select(pass_auth_uses.c.spent_at).where(pass_auth_uses.c.token_id == token_id)
            ).scalar_one()
            return (Attempt.EXHAUSTED if spent_at is None else Attempt.SPENT), user

    def open_session(
        self,
        user_id: int,
        token_id: str,
        now: datetime,
        step: int | None,
        recovery_candidates: dict[str, bytes] | None,
        new_session: NewSession,
    ) -> Opened:
        """In one transaction: spend the pass-auth token, spend the TOTP step (or the recovery
        code), and create the session. Any refusal rolls all of it back."""
        try:
            with self._database.writing() as connection:
                if connection.execute(_SPEND_PASS_AUTH, {"b_token_id": token_id, "now": now}).rowcount != 1:
                    raise _Refused(Opened.PASS_AUTH_SPENT)
                if step is not None:
                    accepted = connection.execute(_CLAIM_STEP, {"user_id": user_id, "step": step}).rowcount == 1
                else:
                    accepted = self._spend_recovery_code(connection, user_id, recovery_candidates or {}, now)
                if not accepted:
                    raise _Refused(Opened.CODE_REFUSED)
                insert_session(connection, new_session)
        except _Refused as refused:
            return refused.outcome
        return Opened.OPENED

    def purge_attempts(self, now: datetime) -> int:
        with self._database.writing() as connection:
            return connection.execute(delete(pass_auth_uses).where(pass_auth_uses.c.expires_at <= now)).rowcount
