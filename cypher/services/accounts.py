"""Account actions of a logged-in user, each confirmed by a fresh TOTP code: change the password
(OPAQUE re-registration), replace the recovery codes, delete the account."""

from __future__ import annotations

from cypher.services.audit import AuditTrail, Event
from cypher.services.client_info import ClientInfo
from cypher.services.errors import InvalidToken
from cypher.services.registration import RegistrationService, RegistrationStarted
from cypher.services.sessions import Principal
from cypher.services.totp import TotpService
from cypher.store import Store, Transaction, UserRecord


def delete_account(tx: Transaction, user: UserRecord) -> None:
    """The account goes with everything in it: sessions, codes and pass-auth records cascade,
    an open password change is deleted here."""
    tx.registrations.delete_for(user.username)
    tx.users.delete(user.id)


class AccountService:
    def __init__(self, store: Store, registration: RegistrationService, totp: TotpService, audit: AuditTrail) -> None:
        self._store = store
        self._registration = registration
        self._totp = totp
        self._audit = audit

    def start_password_change(self, principal: Principal, registration_request: bytes) -> RegistrationStarted:
        return self._registration.start_password_change(principal.username, registration_request)

    def finish_password_change(
        self, principal: Principal, registration_record: bytes, code: str, client: ClientInfo
    ) -> int:
        """Store the new OPAQUE record and revoke every other session; returns how many."""
        # A malformed record is refused before the code is spent on it.
        self._registration.check_registration_record(registration_record)
        user = self._confirmed(principal, code, client)
        return self._registration.finish_password_change(
            user.id, user.username, registration_record, principal.session_id, client
        )

    def regenerate_recovery_codes(self, principal: Principal, code: str, client: ClientInfo) -> list[str]:
        return self._totp.regenerate_recovery_codes(self._confirmed(principal, code, client), client)

    def delete(self, principal: Principal, code: str, client: ClientInfo) -> None:
        user = self._confirmed(principal, code, client)
        with self._store.transaction() as tx:
            delete_account(tx, user)
            self._audit.record(tx, Event.ACCOUNT_DELETED, client, user_id=user.id, username=user.username)

    def _confirmed(self, principal: Principal, code: str, client: ClientInfo) -> UserRecord:
        with self._store.transaction(readonly=True) as tx:
            user = tx.users.by_name(principal.username)
        if user is None or user.id != principal.user_id:
            raise InvalidToken("The session has ended.")
        self._totp.check_code(user.id, code, client)
        return user
