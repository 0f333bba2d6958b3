"""The second factor: TOTP secrets and their last used step, recovery codes, pass-auth attempts."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import Enum
from typing import cast

from sqlalchemy import Connection, Table, bindparam, delete, insert, or_, select, update

from cypher.services.sealing import SealedValue
from cypher.services.users import STATUS_ACTIVE, STATUS_PENDING
from cypher.store.database import Database
from cypher.store.models import PassAuthUse, RecoveryCode
from cypher.store.records import USER_COLUMNS_SQL, UserRecord, user_record, users
from cypher.store.sessions import NewSession, insert_session
from cypher.store.sql import Transaction

recovery_codes = cast(Table, RecoveryCode.__table__)
pass_auth_uses = cast(Table, PassAuthUse.__table__)


@dataclass(frozen=True)
class CodeProof:
    """What a presented second factor proves: a TOTP step, or a recovery code by its hashes."""

    step: int | None = None
    recovery_candidates: dict[str, bytes] | None = None  # the code's hash under each key id


@dataclass(frozen=True)
class Lockout:
    """After max_failures wrong codes in a row the account's second factor rests for `duration`."""

    max_failures: int
    duration: timedelta


class Verdict(Enum):
    OPENED = "opened"
    ACCEPTED = "accepted"  # a code confirmed an account action
    LOCKED = "locked"  # too many wrong codes for this account: it rests until totp_locked_until
    NO_ACCOUNT = "no_account"  # the account is gone, not active, or newer than the token
    EXHAUSTED = "exhausted"  # the pass-auth token has had all its attempts
    PASS_AUTH_SPENT = "pass_auth_spent"  # the token already opened a session
    CODE_REFUSED = "code_refused"  # wrong, a replayed step, or a used or unknown recovery code


def _newer_than(moment: datetime, token_issued_at: datetime) -> bool:
    """Whether `moment` comes after a token's issue time (which has whole seconds)."""
    return moment.replace(microsecond=0) > token_issued_at


def _locked(user: UserRecord, now: datetime) -> bool:
    return user.totp_locked_until is not None and user.totp_locked_until > now


class _RollBack(Exception):
    def __init__(self, verdict: Verdict) -> None:
        self.verdict = verdict


# The login path's statements, in plain SQL (see sql.py). Statuses are parameters, so that
# their names live in one place (services/users.py).
_SELECT_ACTIVE_USER = f"SELECT {USER_COLUMNS_SQL} FROM users WHERE username = :username AND status = :active"
_SELECT_ACTIVE_USER_BY_ID = f"SELECT {USER_COLUMNS_SQL} FROM users WHERE id = :user_id AND status = :active"
# The compare-and-set that makes each TOTP step usable once per account.
_CLAIM_STEP = """
    UPDATE users SET totp_last_step = :step
    WHERE id = :user_id AND status = :active AND (totp_last_step IS NULL OR totp_last_step < :step)
"""
# SET expressions see the row as it was, so both read the old failure count.
_RECORD_FAILURE = """
    UPDATE users
    SET totp_failures = totp_failures + 1,
        totp_locked_until = CASE WHEN totp_failures + 1 >= :max_failures THEN :locked_until
                                 ELSE totp_locked_until END
    WHERE id = :user_id
"""
_RESET_FAILURES = "UPDATE users SET totp_failures = 0, totp_locked_until = NULL WHERE id = :user_id"
# One statement counts an attempt: the first creates the row, later ones add one while the token
# is unspent and under the limit; no row comes back when it may not be tried.
_COUNT_ATTEMPT = """
    INSERT INTO pass_auth_uses (token_id, user_id, attempts, expires_at)
    VALUES (:token_id, :user_id, 1, :expires_at)
    ON CONFLICT (token_id) DO UPDATE SET attempts = pass_auth_uses.attempts + 1
    WHERE pass_auth_uses.spent_at IS NULL AND pass_auth_uses.attempts < :max_attempts
    RETURNING attempts
"""
_SELECT_PASS_AUTH_SPENT_AT = "SELECT spent_at FROM pass_auth_uses WHERE token_id = :token_id"
_SPEND_PASS_AUTH = "UPDATE pass_auth_uses SET spent_at = :now WHERE token_id = :token_id AND spent_at IS NULL"
_SPEND_RECOVERY_CODE = """
    UPDATE recovery_codes SET used_at = :now
    WHERE user_id = :user_id AND used_at IS NULL AND key_id = :key_id AND code_hash = :code_hash
"""
# For Core statements of the slower paths.
_STEP_IS_NEW = or_(users.c.totp_last_step.is_(None), users.c.totp_last_step < bindparam("step"))


class SecondFactorStore:
    def __init__(self, database: Database) -> None:
        self._database = database

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

    def activate(
        self,
        user_id: int,
        verified_secret: SealedValue,
        step: int,
        code_hashes: list[bytes],
        key_id: str,
        now: datetime,
    ) -> bool:
        """Make a pending account active with its first accepted step and its recovery codes,
        provided the secret the code was checked against is still the stored one."""
        with self._database.writing() as connection:
            result = connection.execute(
                update(users)
                .where(
                    users.c.id == user_id,
                    users.c.status == STATUS_PENDING,
                    users.c.totp_secret == verified_secret.ciphertext,
                    _STEP_IS_NEW,
                )
                .values(status=STATUS_ACTIVE, totp_last_step=step, updated_at=now),
                {"step": step},
            )
            if result.rowcount != 1:
                return False
            self._insert_codes(connection, user_id, code_hashes, key_id)
            return True

    def confirm_action(self, user_id: int, step: int | None, now: datetime, lockout: Lockout) -> Verdict:
        """Spend a TOTP step to confirm an account action, counting wrong codes toward the lockout."""
        with self._database.direct.writing() as transaction:
            row = transaction.first(_SELECT_ACTIVE_USER_BY_ID, {"user_id": user_id, "active": STATUS_ACTIVE})
            if row is None:
                return Verdict.NO_ACCOUNT
            user = user_record(row)
            if _locked(user, now):
                return Verdict.LOCKED
            proof = None if step is None else CodeProof(step=step)
            return _settle(transaction, user, proof, now, lockout)

    # -- recovery codes ---------------------------------------------------------------------

    @staticmethod
    def _insert_codes(connection: Connection, user_id: int, code_hashes: list[bytes], key_id: str) -> None:
        connection.execute(
            insert(recovery_codes),
            [{"user_id": user_id, "code_hash": code_hash, "key_id": key_id} for code_hash in code_hashes],
        )

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

    def second_factor_login(
        self,
        token_id: str,
        username: str,
        token_issued_at: datetime,
        max_attempts: int,
        token_expires_at: datetime,
        now: datetime,
        lockout: Lockout,
        prove: Callable[[UserRecord], CodeProof | None],
        session_for: Callable[[UserRecord], NewSession],
    ) -> Verdict:
        """The login's second step, in one transaction.

        The attempt is counted before `prove` checks the code, so concurrent guesses stay within
        `max_attempts` per token; wrong codes also count toward the account's lockout, whatever
        token they came with. A success spends the step (or the recovery code) and the pass-auth
        token and creates the session, all or nothing.
        """
        try:
            with self._database.direct.writing() as transaction:
                row = transaction.first(_SELECT_ACTIVE_USER, {"username": username, "active": STATUS_ACTIVE})
                if row is None:
                    return Verdict.NO_ACCOUNT
                user = user_record(row)
                if _newer_than(user.created_at, token_issued_at):
                    return Verdict.NO_ACCOUNT
                if user.password_changed_at and _newer_than(user.password_changed_at, token_issued_at):
                    return Verdict.PASS_AUTH_SPENT  # the password it proved is no longer the password
                counted = transaction.first(
                    _COUNT_ATTEMPT,
                    {
                        "token_id": token_id,
                        "user_id": user.id,
                        "expires_at": token_expires_at,
                        "max_attempts": max_attempts,
                    },
                )
                if counted is None:
                    spent = transaction.first(_SELECT_PASS_AUTH_SPENT_AT, {"token_id": token_id})
                    return Verdict.EXHAUSTED if spent is None or spent[0] is None else Verdict.PASS_AUTH_SPENT
                if _locked(user, now):
                    return Verdict.LOCKED
                verdict = _settle(transaction, user, prove(user), now, lockout)
                if verdict is not Verdict.ACCEPTED:
                    return verdict
                if transaction.execute(_SPEND_PASS_AUTH, {"token_id": token_id, "now": now}) != 1:
                    # A concurrent request with this token opened a session first: give the
                    # step or recovery code back.
                    raise _RollBack(Verdict.PASS_AUTH_SPENT)
                insert_session(transaction, session_for(user))
                return Verdict.OPENED
        except _RollBack as rollback:
            return rollback.verdict

    def purge_attempts(self, now: datetime) -> int:
        with self._database.writing() as connection:
            return connection.execute(delete(pass_auth_uses).where(pass_auth_uses.c.expires_at <= now)).rowcount


def _settle(
    transaction: Transaction, user: UserRecord, proof: CodeProof | None, now: datetime, lockout: Lockout
) -> Verdict:
    """Spend the proof, or count a wrong code toward the lockout (which a success clears)."""
    if proof is None or not _spend_proof(transaction, user.id, proof, now):
        transaction.execute(
            _RECORD_FAILURE,
            {"user_id": user.id, "max_failures": lockout.max_failures, "locked_until": now + lockout.duration},
        )
        return Verdict.CODE_REFUSED
    if user.totp_failures or user.totp_locked_until:
        transaction.execute(_RESET_FAILURES, {"user_id": user.id})
    return Verdict.ACCEPTED


def _spend_proof(transaction: Transaction, user_id: int, proof: CodeProof, now: datetime) -> bool:
    if proof.step is not None:
        claim = {"user_id": user_id, "step": proof.step, "active": STATUS_ACTIVE}
        return transaction.execute(_CLAIM_STEP, claim) == 1
    # Spend the unused code whose hash (under its key id) is among the candidates.
    for key_id, code_hash in (proof.recovery_candidates or {}).items():
        spend = {"user_id": user_id, "key_id": key_id, "code_hash": code_hash, "now": now}
        if transaction.execute(_SPEND_RECOVERY_CODE, spend) == 1:
            return True
    return False
