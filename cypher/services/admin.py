"""What an operator does from the command line: look at accounts and sessions, disable, enable
and delete accounts, revoke sessions, lift login bans. Each change is an audit event, from the
operator's ClientInfo."""

from __future__ import annotations

from dataclasses import dataclass

from cypher.domain import STATUS_ACTIVE, STATUS_DISABLED
from cypher.services.accounts import delete_account
from cypher.services.audit import AuditTrail, Event, session_ref
from cypher.services.client_info import ClientInfo
from cypher.services.clock import Clock
from cypher.services.errors import NotFound
from cypher.services.users import canonical_username
from cypher.store import RegulationCount, SessionRecord, Store, Transaction, UserRecord


@dataclass(frozen=True)
class UserDetails:
    user: UserRecord
    live_sessions: list[SessionRecord]
    unused_recovery_codes: int


class AdminService:
    def __init__(self, store: Store, clock: Clock, audit: AuditTrail) -> None:
        self._store = store
        self._clock = clock
        self._audit = audit

    def users(self) -> list[UserRecord]:
        with self._store.transaction(readonly=True) as tx:
            return tx.users.all()

    def user(self, username: str) -> UserDetails:
        with self._store.transaction(readonly=True) as tx:
            user = _find(tx, username)
            return UserDetails(
                user=user,
                live_sessions=tx.sessions.list_live(self._clock(), user_id=user.id),
                unused_recovery_codes=tx.recovery_codes.count_unused(user.id),
            )

    def disable(self, username: str, actor: ClientInfo) -> int:
        """No more logins; every session ends now. Returns how many sessions ended."""
        return self._change_status(
            username, STATUS_ACTIVE, STATUS_DISABLED, "is not an active account", Event.ADMIN_USER_DISABLED, actor
        )

    def enable(self, username: str, actor: ClientInfo) -> None:
        self._change_status(
            username, STATUS_DISABLED, STATUS_ACTIVE, "is not a disabled account", Event.ADMIN_USER_ENABLED, actor
        )

    def _change_status(
        self, username: str, from_status: str, to_status: str, refusal: str, event: Event, actor: ClientInfo
    ) -> int:
        """Move an account between statuses; its live sessions end. Returns how many ended."""
        now = self._clock()
        with self._store.transaction() as tx:
            user = _find(tx, username, lock=True)
            if user.status != from_status:
                raise NotFound(f"{username} {refusal}.")
            tx.users.set_status(user.id, to_status, now)
            revoked = tx.sessions.revoke_live(now, user_id=user.id)
            self._audit.record(tx, event, actor, user_id=user.id, username=user.username, sessions=revoked)
            return revoked

    def delete(self, username: str, actor: ClientInfo) -> None:
        with self._store.transaction() as tx:
            user = _find(tx, username, lock=True)
            delete_account(tx, user)
            self._audit.record(tx, Event.ADMIN_USER_DELETED, actor, user_id=user.id, username=user.username)

    def count_live_sessions(self) -> int:
        with self._store.transaction(readonly=True) as tx:
            return tx.sessions.count_live(self._clock())

    def sessions(self, username: str | None) -> list[SessionRecord]:
        with self._store.transaction(readonly=True) as tx:
            user_id = None if username is None else _find(tx, username).id
            return tx.sessions.list_live(self._clock(), user_id=user_id)

    def login_counts(self, username: str) -> list[RegulationCount]:
        """The name's login regulation counts (services/regulation.py), account or not."""
        with self._store.transaction(readonly=True) as tx:
            return tx.regulation.of(canonical_username(username))

    def unban(self, username: str) -> int:
        """Forget every login count of the name, bans included; returns how many there were."""
        with self._store.transaction() as tx:
            return tx.regulation.forget(canonical_username(username))

    def revoke_session(self, session_id: str, actor: ClientInfo) -> None:
        now = self._clock()
        with self._store.transaction() as tx:
            session = tx.sessions.live(session_id, now)
            if session is None or not tx.sessions.revoke_live(now, session_id=session_id):
                raise NotFound("No live session with that id.")
            self._audit.record(
                tx,
                Event.ADMIN_SESSION_REVOKED,
                actor,
                user_id=session.user_id,
                username=session.username,
                session=session_ref(session_id),
            )


def _find(tx: Transaction, username: str, *, lock: bool = False) -> UserRecord:
    user = tx.users.by_name(canonical_username(username), lock=lock)
    if user is None:
        raise NotFound(f"No account named {username}.")
    return user
