"""Account actions of a logged-in user, each confirmed by a fresh TOTP code: change the password
(OPAQUE re-registration), replace the recovery codes, delete the account."""

from __future__ import annotations

from cypher.services.errors import InvalidToken
from cypher.services.opaque import OpaqueService, RegistrationStarted
from cypher.services.sessions import Principal
from cypher.services.totp import TotpService
from cypher.store import Store, UserRecord


class AccountService:
    def __init__(self, store: Store, opaque: OpaqueService, totp: TotpService) -> None:
        self._store = store
        self._opaque = opaque
        self._totp = totp

    def start_password_change(self, principal: Principal, registration_request: bytes) -> RegistrationStarted:
        return self._opaque.start_password_change(principal.username, registration_request)

    def finish_password_change(self, principal: Principal, registration_record: bytes, code: str) -> int:
        """Store the new OPAQUE record and revoke every other session; returns how many."""
        # A malformed record is refused before the code is spent on it.
        self._opaque.check_registration_record(registration_record)
        user = self._confirmed(principal, code)
        return self._opaque.finish_password_change(user.id, user.username, registration_record, principal.session_id)

    def regenerate_recovery_codes(self, principal: Principal, code: str) -> list[str]:
        return self._totp.regenerate_recovery_codes(self._confirmed(principal, code))

    def delete(self, principal: Principal, code: str) -> None:
        user = self._confirmed(principal, code)
        self._store.accounts.delete_user(user.id)

    def _confirmed(self, principal: Principal, code: str) -> UserRecord:
        user = self._store.accounts.find_user(principal.username)
        if user is None or user.id != principal.user_id:
            raise InvalidToken("The session has ended.")
        self._totp.check_code(user, code)
        return user
