"""The tables. Schema changes go through the Alembic migrations in store/migrations/."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from sqlalchemy import DateTime, ForeignKey, Integer, LargeBinary, String
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

USERNAME_LENGTH = 64
KEY_ID_LENGTH = 32


class UTCDateTime(TypeDecorator[datetime]):
    """Stores UTC without a zone on every database; gives back aware UTC datetimes."""

    impl = DateTime(timezone=False)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetimes are ambiguous; pass an aware UTC datetime")
        return value.astimezone(timezone.utc).replace(tzinfo=None)

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        return None if value is None else value.replace(tzinfo=timezone.utc)


class Base(DeclarativeBase):
    pass


class User(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    username: Mapped[str] = mapped_column(String(USERNAME_LENGTH), unique=True)
    status: Mapped[str] = mapped_column(String(16))  # "pending" until TOTP is verified, then "active"
    # libopaque's 256-byte user record, sealed with the at-rest key (see services/sealing.py).
    opaque_record: Mapped[bytes] = mapped_column(LargeBinary)
    opaque_record_key_id: Mapped[str] = mapped_column(String(KEY_ID_LENGTH))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class RegistrationState(Base):
    """Between /register/init and /register/finish: the server's OPRF secret, sealed."""

    __tablename__ = "registration_states"

    username: Mapped[str] = mapped_column(String(USERNAME_LENGTH), primary_key=True)
    server_secret: Mapped[bytes] = mapped_column(LargeBinary)
    server_secret_key_id: Mapped[str] = mapped_column(String(KEY_ID_LENGTH))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)


class LoginState(Base):
    """Between /login/init and /login/finish: what KE3 must equal, sealed; single use."""

    __tablename__ = "login_states"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    username: Mapped[str] = mapped_column(String(USERNAME_LENGTH))
    # None when the username has no account: the login can only fail, but looks the same.
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), nullable=True)
    expected_client_auth: Mapped[bytes] = mapped_column(LargeBinary)
    expected_client_auth_key_id: Mapped[str] = mapped_column(String(KEY_ID_LENGTH))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
