"""What the store hands to services: plain, frozen records, never rows or connections."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from cypher.domain import SealedValue


@dataclass(frozen=True)
class UserRecord:
    id: int
    username: str
    status: str
    opaque_record: SealedValue
    totp_secret: SealedValue | None
    totp_last_step: int | None
    totp_failures: int
    totp_locked_until: datetime | None
    password_changed_at: datetime | None
    created_at: datetime


@dataclass(frozen=True)
class LoginRecord:
    """What /login/init needs of an account: which it is, and its sealed OPAQUE record."""

    id: int
    opaque_record: SealedValue


@dataclass(frozen=True)
class OpenRegistration:
    """The server's half of an OPAQUE registration in flight (a new account or a password change)."""

    server_secret: SealedValue
    expires_at: datetime


@dataclass(frozen=True)
class PassAuthUse:
    """How often a pass-auth token has been tried at the second step, and whether it opened a session."""

    attempts: int
    spent: bool


@dataclass(frozen=True)
class SessionRecord:
    id: str
    user_id: int
    username: str
    created_at: datetime
    last_seen_at: datetime
    expires_at: datetime
    ip: str | None
    user_agent: str | None


@dataclass(frozen=True)
class RefreshableSession:
    """A session as a refresh finds it, live or not: a spent token of a revoked session is still reuse."""

    session: SessionRecord
    revoked: bool
    refresh_token_id: str | None  # the one refresh token that may move it on (None: none may)


@dataclass(frozen=True)
class NewSession:
    """A session row to create, naming its first refresh token."""

    session_id: str
    user_id: int
    refresh_token_id: str
    created_at: datetime
    expires_at: datetime
    ip: str | None
    user_agent: str | None


@dataclass(frozen=True)
class RegulationCount:
    """One row of login regulation: a name's count (address "") or a name and address pair's."""

    username: str
    address: str
    window_started_at: datetime
    attempts: int
    banned_until: datetime | None
    bans: int


@dataclass(frozen=True)
class AuditEvent:
    """One security event, to write or as read back."""

    occurred_at: datetime
    event: str
    user_id: int | None
    username: str | None
    ip: str | None
    user_agent: str | None
    detail: dict[str, str | int]
