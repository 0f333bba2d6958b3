"""The audit log: security events as the services decide them, never a secret in one.

Each event names what happened (`Event`), the account (id and name; the name alone for an unknown
one), when, the client's address and user agent, and a few non-secret facts (`detail`): a login
failure's phase, how many sessions ended, the first characters of a session's id (SESSION_REF_LENGTH;
enough to match `flask --app cypher sessions list`, far too few to stand for the session).

A success is recorded in the transaction of the action it describes, so the two commit together.
A refusal is recorded where its counters commit (totp.py's `_second_step`, sessions.py's
`_rotate`), or in a short transaction of its own (`record_alone`) when nothing else is written.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from enum import StrEnum

from cypher.services.client_info import ClientInfo
from cypher.services.clock import Clock
from cypher.services.users import canonical_username
from cypher.store import AuditEvent, Store, Transaction

SESSION_REF_LENGTH = 8  # of a 32-character session id
ACCOUNT_ACTIVITY_LIMIT = 50


class Event(StrEnum):
    REGISTRATION_FINISHED = "registration.finished"
    TOTP_ENROLLED = "totp.enrolled"
    LOGIN_SUCCEEDED = "login.succeeded"
    LOGIN_FAILED = "login.failed"  # detail: phase (Phase)
    LOGIN_BANNED = "login.banned"
    TOTP_FAILED = "totp.failed"  # a wrong code confirming an account action
    TOTP_LOCKED = "totp.locked"
    RECOVERY_CODE_USED = "recovery_code.used"
    RECOVERY_CODES_REGENERATED = "recovery_codes.regenerated"
    REFRESH_TOKEN_REUSED = "refresh_token.reused"
    SESSION_LOGOUT = "session.logout"
    SESSION_LOGOUT_ALL = "session.logout_all"
    SESSION_REVOKED = "session.revoked"
    PASSWORD_CHANGED = "password.changed"
    ACCOUNT_DELETED = "account.deleted"
    ADMIN_USER_DISABLED = "admin.user_disabled"
    ADMIN_USER_ENABLED = "admin.user_enabled"
    ADMIN_USER_DELETED = "admin.user_deleted"
    ADMIN_SESSION_REVOKED = "admin.session_revoked"


class Phase(StrEnum):
    """Where a login failed."""

    PASSWORD = "password"  # KE3 did not match, or no account has the name
    EXPIRED = "expired"  # the loginId or pass-auth token was stale, replayed or not ours
    DISABLED = "disabled"
    PENDING = "pending"
    TOTP = "totp"
    RECOVERY_CODE = "recovery_code"
    LOCKED = "locked"  # the account's second factor rests after too many wrong codes
    TOO_MANY_ATTEMPTS = "too_many_attempts"  # of one pass-auth token


_DESCRIPTIONS: dict[str, str] = {
    Event.REGISTRATION_FINISHED: "Account registered",
    Event.TOTP_ENROLLED: "Authenticator app set up",
    Event.LOGIN_SUCCEEDED: "Logged in",
    Event.LOGIN_FAILED: "Login failed",
    Event.LOGIN_BANNED: "Logins paused after too many failures",
    Event.TOTP_FAILED: "Wrong authenticator code",
    Event.TOTP_LOCKED: "Authenticator codes locked for 15 minutes after too many wrong ones",
    Event.RECOVERY_CODE_USED: "Recovery code used",
    Event.RECOVERY_CODES_REGENERATED: "New recovery codes made",
    Event.REFRESH_TOKEN_REUSED: "A used session token came back: the session was ended",
    Event.SESSION_LOGOUT: "Logged out",
    Event.SESSION_LOGOUT_ALL: "Logged out everywhere",
    Event.SESSION_REVOKED: "A session was revoked",
    Event.PASSWORD_CHANGED: "Password changed",
    Event.ACCOUNT_DELETED: "Account deleted",
    Event.ADMIN_USER_DISABLED: "An administrator disabled the account",
    Event.ADMIN_USER_ENABLED: "An administrator enabled the account",
    Event.ADMIN_USER_DELETED: "An administrator deleted the account",
    Event.ADMIN_SESSION_REVOKED: "An administrator revoked a session",
}
_PHASE_DESCRIPTIONS: dict[str, str] = {
    Phase.PASSWORD: "Login failed: wrong password",
    Phase.EXPIRED: "Login failed: it took too long or was sent twice",
    Phase.DISABLED: "Login refused: the account is disabled",
    Phase.PENDING: "Login refused: the account's set-up was not finished",
    Phase.TOTP: "Login failed: wrong authenticator code",
    Phase.RECOVERY_CODE: "Login failed: wrong recovery code",
    Phase.LOCKED: "Login refused: authenticator codes are locked for now",
    Phase.TOO_MANY_ATTEMPTS: "Login refused: too many codes tried",
}


def describe(event: AuditEvent) -> str:
    """The event in a sentence for its account's owner."""
    if event.event == Event.LOGIN_FAILED:
        sentence = _PHASE_DESCRIPTIONS.get(str(event.detail.get("phase")))
        if sentence is not None:
            return sentence
    return _DESCRIPTIONS.get(event.event, event.event)


def session_ref(session_id: str) -> str:
    return session_id[:SESSION_REF_LENGTH]


class AuditTrail:
    def __init__(self, store: Store, clock: Clock) -> None:
        self._store = store
        self._clock = clock

    def record(
        self,
        tx: Transaction,
        event: Event,
        client: ClientInfo,
        *,
        user_id: int | None,
        username: str | None,
        **detail: str | int,
    ) -> None:
        """Write the event in the caller's transaction: it commits, or not, with the action."""
        clipped = client.clipped()
        tx.audit.add(
            AuditEvent(
                occurred_at=self._clock(),
                event=event.value,
                user_id=user_id,
                username=username,
                ip=clipped.ip,
                user_agent=clipped.user_agent,
                detail=detail,
            )
        )

    def record_alone(
        self, event: Event, client: ClientInfo, *, user_id: int | None, username: str | None, **detail: str | int
    ) -> None:
        """Write the event in a transaction of its own: for a refusal that writes nothing else."""
        with self._store.transaction() as tx:
            self.record(tx, event, client, user_id=user_id, username=username, **detail)

    def recent(self, user_id: int, limit: int = ACCOUNT_ACTIVITY_LIMIT) -> list[AuditEvent]:
        """An account's newest events. Only those since it was created: SQLite may give a new
        account the id of a deleted one, whose events must not become the new owner's."""
        with self._store.transaction(readonly=True) as tx:
            user = tx.users.by_id(user_id)
            return [] if user is None else tx.audit.of_user(user_id, since=user.created_at, limit=limit)

    def search(
        self,
        *,
        username: str | None = None,
        event_prefix: str | None = None,
        since: datetime | timedelta | None = None,
        limit: int,
    ) -> list[AuditEvent]:
        """Newest first, for the operator (`flask --app cypher audit`); `since` is a moment, or a
        span back from now."""
        name = None if username is None else canonical_username(username)
        start = self._clock() - since if isinstance(since, timedelta) else since
        with self._store.transaction(readonly=True) as tx:
            return tx.audit.search(username=name, event_prefix=event_prefix, since=start, limit=limit)
