"""OPAQUE registration and login: the protocol steps, their stored state, and the tokens they earn.

Registration: start (OPRF evaluation, server secret kept sealed for REGISTRATION_STATE_TTL) and
finish (the client's record joins the secret; the account exists, pending, with an enrolment
token). Login: start (KE2 from the stored record, or from a fake record for an unknown name; the
login's state sealed into the loginId, nothing stored) and finish (the loginId spent, KE3
checked; an active account gets a pass-auth token for the TOTP step).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import ParamSpec, TypeVar

from cypher.services.clock import Clock
from cypher.services.errors import (
    AccountDisabled,
    AccountPending,
    InvalidCredentials,
    InvalidMessage,
    LoginExpired,
    PasswordChangeInProgress,
    RegistrationExpired,
    UsernameTaken,
)
from cypher.services.login_state import NO_RECORD, LoginState, LoginStateSealer, record_fingerprint
from cypher.services.opaque_protocol import (
    KE3_BYTES,
    OpaqueProtocol,
    OpaqueProtocolError,
)
from cypher.services.sealing import SealedValue, Sealer
from cypher.services.tokens import MintedToken, TokenPurpose, TokenService
from cypher.services.users import STATUS_ACTIVE, STATUS_DISABLED, canonical_username
from cypher.store import Store, StoreConflict

# What a sealed value holds, bound into its associated data.
SEALED_OPAQUE_RECORD = "opaque_record"
SEALED_REGISTRATION_SECRET = "registration_secret"

P = ParamSpec("P")
R = TypeVar("R")


@dataclass(frozen=True)
class RegistrationStarted:
    username: str
    server_id: str
    registration_response: bytes


@dataclass(frozen=True)
class RegistrationFinished:
    username: str
    enrollment: MintedToken


@dataclass(frozen=True)
class LoginStarted:
    login_id: str
    username: str
    server_id: str
    login_response: bytes


@dataclass(frozen=True)
class LoginFinished:
    username: str
    pass_auth: MintedToken


@dataclass(frozen=True)
class OpaqueLifetimes:
    registration_state: timedelta
    login_state: timedelta
    pending_account: timedelta


class OpaqueService:
    def __init__(
        self,
        store: Store,
        protocol: OpaqueProtocol,
        sealer: Sealer,
        tokens: TokenService,
        clock: Clock,
        lifetimes: OpaqueLifetimes,
    ) -> None:
        self._store = store
        self._protocol = protocol
        self._sealer = sealer
        self._login_states = LoginStateSealer(sealer)
        self._tokens = tokens
        self._clock = clock
        self._lifetimes = lifetimes

    @property
    def server_id(self) -> str:
        return self._protocol.server_id

    def start_registration(self, raw_username: object, registration_request: bytes) -> RegistrationStarted:
        username = canonical_username(raw_username)
        server_secret, response = _protocol_call(self._protocol.registration_response, registration_request)
        now = self._clock()
        sealed_secret = self._sealer.seal(server_secret, username=username, purpose=SEALED_REGISTRATION_SECRET)
        try:
            self._store.accounts.begin_registration(
                username,
                sealed_secret,
                now,
                self._lifetimes.registration_state,
                pending_cutoff=now - self._lifetimes.pending_account,
            )
        except StoreConflict:
            # An account, or another registration still in flight, holds the name. A second
            # registration must not replace the first: its record would not match the kept secret.
            raise UsernameTaken() from None
        return RegistrationStarted(username=username, server_id=self.server_id, registration_response=response)

    def finish_registration(self, raw_username: object, registration_record: bytes) -> RegistrationFinished:
        username = canonical_username(raw_username)
        # Check the record before the state is spent, so a malformed one can be sent again.
        self.check_registration_record(registration_record)
        try:
            user = self._store.accounts.finish_registration(
                username, self._clock(), self._record_sealer(username, registration_record)
            )
        except StoreConflict:
            raise UsernameTaken() from None
        if user is None:
            raise RegistrationExpired()
        return RegistrationFinished(username=username, enrollment=self._tokens.mint(TokenPurpose.ENROLL, username))

    def start_password_change(self, username: str, registration_request: bytes) -> RegistrationStarted:
        """OPAQUE re-registration of an existing account; the caller has authenticated it."""
        server_secret, response = _protocol_call(self._protocol.registration_response, registration_request)
        sealed_secret = self._sealer.seal(server_secret, username=username, purpose=SEALED_REGISTRATION_SECRET)
        try:
            # Only the password-change TTL (the login TTL) holds the account: a client that gave
            # up can start again a minute later.
            self._store.accounts.begin_password_change(
                username, sealed_secret, self._clock(), self._lifetimes.login_state
            )
        except StoreConflict:
            raise PasswordChangeInProgress() from None
        return RegistrationStarted(username=username, server_id=self.server_id, registration_response=response)

    def check_registration_record(self, registration_record: bytes) -> None:
        _protocol_call(self._protocol.check_registration_record, registration_record)

    def finish_password_change(
        self, user_id: int, username: str, registration_record: bytes, keep_session_id: str
    ) -> int:
        """Store the new record; every session but `keep_session_id` ends. Returns how many did."""
        self.check_registration_record(registration_record)
        revoked = self._store.accounts.finish_password_change(
            user_id, username, self._clock(), self._record_sealer(username, registration_record), keep_session_id
        )
        if revoked is None:
            raise RegistrationExpired("The password change has expired; start again.")
        return revoked

    def _record_sealer(self, username: str, registration_record: bytes) -> Callable[[SealedValue], SealedValue]:
        """Turn the kept, sealed server secret into the sealed user record (inside the store's transaction)."""

        def seal_user_record(sealed_secret: SealedValue) -> SealedValue:
            server_secret = self._sealer.open(sealed_secret, username=username, purpose=SEALED_REGISTRATION_SECRET)
            record = self._protocol.user_record(server_secret, registration_record)
            return self._sealer.seal(record, username=username, purpose=SEALED_OPAQUE_RECORD)

        return seal_user_record

    def start_login(self, raw_username: object, ke1: bytes) -> LoginStarted:
        username = canonical_username(raw_username)
        user = self._store.accounts.find_user(username)
        if user is None:
            record, fingerprint = self._protocol.fake_user_record(username), NO_RECORD
        else:
            record = self._sealer.open(user.opaque_record, username=username, purpose=SEALED_OPAQUE_RECORD)
            fingerprint = record_fingerprint(user.opaque_record)
        response = _protocol_call(self._protocol.login_response, ke1, record, username)
        login_id = self._login_states.seal(
            LoginState(
                user_id=None if user is None else user.id,
                record_fingerprint=fingerprint,
                expected_client_auth=response.expected_client_auth,
                started_at=self._clock(),
            )
        )
        return LoginStarted(login_id=login_id, username=username, server_id=self.server_id, login_response=response.ke2)

    def finish_login(self, login_id: str, ke3: bytes) -> LoginFinished:
        if len(ke3) != KE3_BYTES:
            raise InvalidMessage(f"finishLoginRequest must be {KE3_BYTES} bytes, not {len(ke3)}")
        opened = self._login_states.open(login_id)
        now = self._clock()
        if opened is None:
            raise LoginExpired()  # not a loginId of this deployment: never issued, or altered
        state = opened.state
        expires_at = state.started_at + self._lifetimes.login_state
        if expires_at <= now:
            raise LoginExpired()
        try:
            user = self._store.accounts.spend_login(opened.spent_key, expires_at, state.user_id, now)
        except StoreConflict:
            raise LoginExpired() from None  # used before
        if state.user_id is not None and (
            user is None or record_fingerprint(user.opaque_record) != state.record_fingerprint
        ):
            # Deleted since, or its password changed: what answered KE1 is no longer the record.
            raise LoginExpired()
        # A wrong KE3 and an unknown name look alike.
        if not self._protocol.client_authenticated(state.expected_client_auth, ke3) or user is None:
            raise InvalidCredentials()
        if user.status == STATUS_DISABLED:
            raise AccountDisabled()
        if user.status != STATUS_ACTIVE:
            raise AccountPending()
        return LoginFinished(username=user.username, pass_auth=self._tokens.mint(TokenPurpose.PASS_AUTH, user.username))


def _protocol_call(function: Callable[P, R], *arguments: P.args, **keywords: P.kwargs) -> R:
    """Call into libopaque, turning its refusals into the API's invalid_message."""
    try:
        return function(*arguments, **keywords)
    except OpaqueProtocolError as error:
        raise InvalidMessage(str(error)) from None
