"""What an operator does from the command line: look at accounts and sessions, disable, enable
and delete accounts, revoke sessions."""

from __future__ import annotations

from dataclasses import dataclass

from cypher.services.clock import Clock
from cypher.services.errors import NotFound
from cypher.services.users import STATUS_ACTIVE, STATUS_DISABLED, canonical_username
from cypher.store import SessionRecord, Store, UserRecord


@dataclass(frozen=True)
class UserDetails:
    user: UserRecord
    live_sessions: list[SessionRecord]
    unused_recovery_codes: int


class AdminService:
    def __init__(self, store: Store, clock: Clock) -> None:
        self._store = store
        self._clock = clock

    def users(self) -> list[UserRecord]:
        return self._store.accounts.list_users()

    def user(self, username: str) -> UserDetails:
        user = self._find(username)
        return UserDetails(
            user=user,
            live_sessions=self._store.sessions.list_live(user.id, self._clock()),
            unused_recovery_codes=self._store.second_factor.unused_recovery_codes(user.id),
        )

    def disable(self, username: str) -> int:
        """No more logins; every session ends now. Returns how many sessions ended."""
        revoked = self._store.accounts.change_status(
            self._find(username).id, STATUS_ACTIVE, STATUS_DISABLED, self._clock()
        )
        if revoked is None:
            raise NotFound(f"{username} is not an active account.")
        return revoked

    def enable(self, username: str) -> None:
        user = self._find(username)
        if self._store.accounts.change_status(user.id, STATUS_DISABLED, STATUS_ACTIVE, self._clock()) is None:
            raise NotFound(f"{username} is not a disabled account.")

    def delete(self, username: str) -> None:
        self._store.accounts.delete_user(self._find(username).id)

    def count_live_sessions(self) -> int:
        return self._store.sessions.count_live(self._clock())

    def sessions(self, username: str | None) -> list[SessionRecord]:
        if username is None:
            return self._store.sessions.list_all_live(self._clock())
        return self._store.sessions.list_live(self._find(username).id, self._clock())

    def revoke_session(self, session_id: str) -> None:
        if not self._store.sessions.revoke_by_id(session_id, self._clock()):
            raise NotFound("No live session with that id.")

    def _find(self, username: str) -> UserRecord:
        user = self._store.accounts.find_user(canonical_username(username))
        if user is None:
            raise NotFound(f"No account named {username}.")
        return user
