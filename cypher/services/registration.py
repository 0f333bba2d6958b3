"""OPAQUE registration: a new account, and a password change (a re-registration of one).

A new account: start (the OPRF evaluated; the server's half sealed into the registrationId for
CYPHER_REGISTRATION_TTL, nothing stored) and finish (the client's record joins that half; the
account exists, pending, with an enrolment token). A password change keeps its half stored, one
per account, for CYPHER_LOGIN_TTL, and its finish ends everything the old password opened.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from cypher.domain import STATUS_PENDING, SealedValue
from cypher.services.audit import AuditTrail, Event
from cypher.services.client_info import ClientInfo
from cypher.services.clock import Clock
from cypher.services.errors import PasswordChangeInProgress, RegistrationExpired, UsernameTaken
from cypher.services.opaque_protocol import OpaqueProtocol, protocol_call
from cypher.services.registration_state import RegistrationState, RegistrationStateSealer
from cypher.services.sealing import Sealer
from cypher.services.tokens import MintedToken, TokenPurpose, TokenService
from cypher.services.users import canonical_username
from cypher.store import OpenRegistration, Store, StoreConflict, UserRecord

# What a sealed value holds, bound into its associated data.
SEALED_OPAQUE_RECORD = "opaque_record"
SEALED_REGISTRATION_SECRET = "registration_secret"
# What a stored registration state is for: a password change (a new account's travels sealed in
# its registrationId); one may be open per username at a time.
PASSWORD_CHANGE = "password"


@dataclass(frozen=True)
class RegistrationStarted:
    username: str
    server_id: str
    registration_response: bytes
    registration_id: str | None = None  # a new account's; a password change's state is stored


@dataclass(frozen=True)
class RegistrationFinished:
    username: str
    enrollment: MintedToken


@dataclass(frozen=True)
class RegistrationLifetimes:
    registration_state: timedelta  # a new account's registrationId
    pending_account: timedelta  # registered, TOTP not yet verified
    password_change: timedelta


class RegistrationService:
    def __init__(
        self,
        store: Store,
        protocol: OpaqueProtocol,
        sealer: Sealer,
        tokens: TokenService,
        clock: Clock,
        lifetimes: RegistrationLifetimes,
        audit: AuditTrail,
    ) -> None:
        self._store = store
        self._protocol = protocol
        self._sealer = sealer
        self._registration_states = RegistrationStateSealer(sealer)
        self._tokens = tokens
        self._clock = clock
        self._lifetimes = lifetimes
        self._audit = audit

    @property
    def server_id(self) -> str:
        return self._protocol.server_id

    def start_registration(self, raw_username: object, registration_request: bytes) -> RegistrationStarted:
        username = canonical_username(raw_username)
        server_secret, response = protocol_call(self._protocol.registration_response, registration_request)
        now = self._clock()
        with self._store.transaction(readonly=True) as tx:
            user = tx.users.by_name(username)
        if user is not None and not self._abandoned(user, now):
            raise UsernameTaken()
        registration_id = self._registration_states.seal(username, RegistrationState(server_secret, now))
        return RegistrationStarted(
            username=username,
            server_id=self.server_id,
            registration_response=response,
            registration_id=registration_id,
        )

    def finish_registration(
        self, raw_username: object, registration_id: str, registration_record: bytes, client: ClientInfo
    ) -> RegistrationFinished:
        username = canonical_username(raw_username)
        # Check the record first, so a malformed one can be sent again.
        self.check_registration_record(registration_record)
        now = self._clock()
        state = self._registration_states.open(registration_id, username)
        if state is None or state.started_at + self._lifetimes.registration_state <= now:
            raise RegistrationExpired()
        sealed_record = self._sealed_record(username, state.server_secret, registration_record)
        try:
            with self._store.transaction() as tx:
                # Pending accounts past their time free their names.
                tx.users.delete_pending_created_before(now - self._lifetimes.pending_account)
                user = tx.users.add_pending(username, sealed_record, now)
                self._audit.record(tx, Event.REGISTRATION_FINISHED, client, user_id=user.id, username=username)
        except StoreConflict:
            raise UsernameTaken() from None  # another registration of the name finished first
        return RegistrationFinished(username=username, enrollment=self._tokens.mint(TokenPurpose.ENROLL, username))

    def _abandoned(self, user: UserRecord, now: datetime) -> bool:
        """A pending account past its time: the next registration to finish deletes it."""
        return user.status == STATUS_PENDING and user.created_at <= now - self._lifetimes.pending_account

    def start_password_change(self, username: str, registration_request: bytes) -> RegistrationStarted:
        """OPAQUE re-registration of an existing account; the caller has authenticated it."""
        server_secret, response = protocol_call(self._protocol.registration_response, registration_request)
        sealed_secret = self._sealer.seal(server_secret, username=username, purpose=SEALED_REGISTRATION_SECRET)
        now = self._clock()
        try:
            with self._store.transaction() as tx:
                # Only the login TTL holds the account: a client that gave up can start again
                # a minute later.
                tx.registrations.open(
                    username, PASSWORD_CHANGE, sealed_secret, now, now + self._lifetimes.password_change
                )
        except StoreConflict:
            raise PasswordChangeInProgress() from None
        return RegistrationStarted(username=username, server_id=self.server_id, registration_response=response)

    def check_registration_record(self, registration_record: bytes) -> None:
        protocol_call(self._protocol.check_registration_record, registration_record)

    def finish_password_change(
        self, user_id: int, username: str, registration_record: bytes, keep_session_id: str, client: ClientInfo
    ) -> int:
        """Store the new record and end everything the old password opened: every session but
        `keep_session_id`; pass-auth tokens issued before now, through password_changed_at; logins
        in flight, because their record is no longer the stored one (login_state.py). Returns how
        many sessions ended."""
        self.check_registration_record(registration_record)
        now = self._clock()
        revoked: int | None = None
        with self._store.transaction() as tx:
            state = _live(tx.registrations.take(username, PASSWORD_CHANGE), now)
            user = tx.users.by_id(user_id, lock=True)
            if state is not None and user is not None and user.username == username:
                server_secret = self._sealer.open(
                    state.server_secret, username=username, purpose=SEALED_REGISTRATION_SECRET
                )
                tx.users.set_opaque_record(
                    user_id, self._sealed_record(username, server_secret, registration_record), now
                )
                revoked = tx.sessions.revoke_live(now, user_id=user_id, keep_session_id=keep_session_id)
                self._audit.record(
                    tx, Event.PASSWORD_CHANGED, client, user_id=user_id, username=username, sessions=revoked
                )
        if revoked is None:
            raise RegistrationExpired("The password change has expired; start again.")
        return revoked

    def _sealed_record(self, username: str, server_secret: bytes, registration_record: bytes) -> SealedValue:
        """The user's OPAQUE record, made from the kept server secret and the client's record, sealed."""
        record = self._protocol.user_record(server_secret, registration_record)
        return self._sealer.seal(record, username=username, purpose=SEALED_OPAQUE_RECORD)


def _live(state: OpenRegistration | None, now: datetime) -> OpenRegistration | None:
    return state if state is not None and state.expires_at > now else None
