"""The tables. Schema changes go through the Alembic migrations in store/migrations/."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, DateTime, ForeignKey, Index, Integer, LargeBinary, String, UniqueConstraint
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

USERNAME_LENGTH = 64
KEY_ID_LENGTH = 32
EVENT_NAME_LENGTH = 48


class UTCDateTime(TypeDecorator[datetime]):
    """Stores UTC without a zone on every database; gives back aware UTC datetimes."""

    impl = DateTime(timezone=False)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetimes are ambiguous; pass an aware UTC datetime")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        return None if value is None else value.replace(tzinfo=UTC)


class Base(DeclarativeBase):
    """Every index costs pages written on each login's commits: only lookups on a request path
    get one. Expiry sweeps (flask purge, the once-a-minute login-state sweep) scan instead."""


class User(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    username: Mapped[str] = mapped_column(String(USERNAME_LENGTH), unique=True)
    status: Mapped[str] = mapped_column(String(16))  # "pending" until TOTP is verified, then "active"
    # libopaque's 256-byte user record, sealed with the at-rest key (see services/sealing.py).
    opaque_record: Mapped[bytes] = mapped_column(LargeBinary)
    opaque_record_key_id: Mapped[str] = mapped_column(String(KEY_ID_LENGTH))
    # The TOTP secret, sealed; set by /totp/setup, used once the account is active.
    totp_secret: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    totp_secret_key_id: Mapped[str | None] = mapped_column(String(KEY_ID_LENGTH), nullable=True)
    # The last 30-second step whose code was accepted: a code is good once.
    totp_last_step: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    # Wrong second-factor codes in a row, across tokens and sessions; at the limit the account's
    # second factor is locked until totp_locked_until.
    totp_failures: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    totp_locked_until: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    # Pass-auth tokens issued before the last password change are refused.
    password_changed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class RegistrationState(Base):
    """Between the two OPAQUE registration steps (a new account, or a password change): the
    server's OPRF secret, sealed. One per username at a time."""

    __tablename__ = "registration_states"

    username: Mapped[str] = mapped_column(String(USERNAME_LENGTH), primary_key=True)
    purpose: Mapped[str] = mapped_column(String(16), default="register")  # "register" | "password"
    server_secret: Mapped[bytes] = mapped_column(LargeBinary)
    server_secret_key_id: Mapped[str] = mapped_column(String(KEY_ID_LENGTH))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)


class SpentLogin(Base):
    """A loginId that /login/finish has used, kept until it would have expired: single use.

    The login's state itself travels sealed in the loginId (services/login_state.py)."""

    __tablename__ = "spent_logins"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)  # BLAKE2b of the sealed state, hex
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)


class RecoveryCode(Base):
    """A one-time recovery code, stored only as a keyed hash. The unique (user_id, code_hash)
    index also serves lookups by user."""

    __tablename__ = "recovery_codes"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    code_hash: Mapped[bytes] = mapped_column(LargeBinary)
    key_id: Mapped[str] = mapped_column(String(KEY_ID_LENGTH))
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)

    __table_args__ = (UniqueConstraint("user_id", "code_hash", name="uq_recovery_codes_user_hash"),)


class PassAuthUse(Base):
    """How often a pass-auth token has been tried at /totp/verify-login, and whether it is spent.

    Each attempt is counted before its code is checked, so concurrent guesses stay within the limit.
    """

    __tablename__ = "pass_auth_uses"

    token_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    attempts: Mapped[int] = mapped_column(Integer)
    spent_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)


class UserSession(Base):
    """A logged-in device. Revoking it stops its access and refresh tokens at once.

    It names its one current refresh token (by jti): rotation is a compare-and-set on that column,
    and an authentic refresh token of the session that is not the current one was spent before."""

    __tablename__ = "sessions"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    ip: Mapped[str | None] = mapped_column(String(64), nullable=True)
    user_agent: Mapped[str | None] = mapped_column(String(512), nullable=True)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    # NULL only for a session migrated without an unspent token: it accepts no refresh token.
    refresh_token_id: Mapped[str | None] = mapped_column(String(64), nullable=True)


class LoginRegulation(Base):
    """Password logins started and not completed, per account name (address "") and per name and
    client address: an OPAQUE server never sees a wrong password, so each KE2 answered counts as
    one guess until a login completes. The primary key serves the lookups by name."""

    __tablename__ = "login_regulation"

    username: Mapped[str] = mapped_column(String(USERNAME_LENGTH), primary_key=True)
    address: Mapped[str] = mapped_column(String(64), primary_key=True)  # "" for the name's own count
    window_started_at: Mapped[datetime] = mapped_column(UTCDateTime)
    attempts: Mapped[int] = mapped_column(Integer)
    banned_until: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    bans: Mapped[int] = mapped_column(Integer)  # in a row, for the backoff
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class AuditEvent(Base):
    """A security event: who, what, when, from where; never a secret.

    user_id has no foreign key: an account's events outlive it (the deletion is an event too).
    The (user_id, occurred_at) index serves the account page's recent activity."""

    __tablename__ = "audit_events"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime)
    event: Mapped[str] = mapped_column(String(EVENT_NAME_LENGTH))  # e.g. "login.failed"
    user_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    username: Mapped[str | None] = mapped_column(String(USERNAME_LENGTH), nullable=True)
    ip: Mapped[str | None] = mapped_column(String(64), nullable=True)
    user_agent: Mapped[str | None] = mapped_column(String(512), nullable=True)
    # Non-secret facts, e.g. {"phase": "password"} or {"session": "<first 8 characters>"}.
    detail: Mapped[dict[str, str | int] | None] = mapped_column(JSON, nullable=True)

    __table_args__ = (Index("ix_audit_events_user_id_occurred_at", "user_id", "occurred_at"),)
