"""OPAQUE registration and login: the protocol steps, their stored state, and the tokens they earn.

Registration: start (OPRF evaluation; the server secret sealed into the registrationId for
REGISTRATION_STATE_TTL, nothing stored) and finish (the client's record joins the secret; the
account exists, pending, with an enrolment token). A password change keeps its secret stored.
Login: start (KE2 from the stored record, or from a fake record for an unknown name; the login's
state sealed into the loginId, nothing stored) and finish (the loginId spent, KE3 checked; an
active account gets a pass-auth token for the TOTP step).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import ParamSpec, TypeVar

from cypher.domain import STATUS_ACTIVE, STATUS_DISABLED, STATUS_PENDING, SealedValue
from cypher.services.audit import AuditTrail, Event, Phase
from cypher.services.client_info import ClientInfo
from cypher.services.clock import Clock
from cypher.services.errors import (
    AccountDisabled,
    AccountPending,
    CypherError,
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
    USER_RECORD_BYTES,
    OpaqueProtocol,
    OpaqueProtocolError,
)
from cypher.services.registration_state import RegistrationState, RegistrationStateSealer
from cypher.services.regulation import Admission, LoginRegulation, Verdict
from cypher.services.sealing import Sealer
from cypher.services.tokens import MintedToken, TokenPurpose, TokenService
from cypher.services.users import canonical_username
from cypher.store import LoginRecord, OpenRegistration, Store, StoreConflict, Transaction, UserRecord

# What a sealed value holds, bound into its associated data.
SEALED_OPAQUE_RECORD = "opaque_record"
SEALED_REGISTRATION_SECRET = "registration_secret"
# Whom the decoy record is sealed for: no username is empty, so it is no account's.
DECOY_USERNAME = ""
# What a stored registration state is for: a password change (a new account's travels sealed in
# its registrationId); one may be open per username at a time.
PASSWORD_CHANGE = "password"
# Spent loginIds past their expiry are garbage, cleared at most this often on the way past.
SPENT_LOGIN_SWEEP_INTERVAL = timedelta(seconds=60)

P = ParamSpec("P")
R = TypeVar("R")


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
        regulation: LoginRegulation,
        audit: AuditTrail,
    ) -> None:
        self._store = store
        self._protocol = protocol
        self._sealer = sealer
        self._login_states = LoginStateSealer(sealer)
        self._registration_states = RegistrationStateSealer(sealer)
        self._tokens = tokens
        self._clock = clock
        self._lifetimes = lifetimes
        self._regulation = regulation
        self._swept_at: datetime | None = None
        self._audit = audit
        # Opened in place of an account's record when the name has none (_answering_record).
        self._decoy_record = sealer.seal(
            bytes(USER_RECORD_BYTES), username=DECOY_USERNAME, purpose=SEALED_OPAQUE_RECORD
        )

    @property
    def server_id(self) -> str:
        return self._protocol.server_id

    def start_registration(self, raw_username: object, registration_request: bytes) -> RegistrationStarted:
        username = canonical_username(raw_username)
        server_secret, response = _protocol_call(self._protocol.registration_response, registration_request)
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
        server_secret, response = _protocol_call(self._protocol.registration_response, registration_request)
        sealed_secret = self._sealer.seal(server_secret, username=username, purpose=SEALED_REGISTRATION_SECRET)
        now = self._clock()
        try:
            with self._store.transaction() as tx:
                # Only the login TTL holds the account: a client that gave up can start again
                # a minute later.
                tx.registrations.open(username, PASSWORD_CHANGE, sealed_secret, now, now + self._lifetimes.login_state)
        except StoreConflict:
            raise PasswordChangeInProgress() from None
        return RegistrationStarted(username=username, server_id=self.server_id, registration_response=response)

    def check_registration_record(self, registration_record: bytes) -> None:
        _protocol_call(self._protocol.check_registration_record, registration_record)

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

    def start_login(self, raw_username: object, ke1: bytes, client: ClientInfo) -> LoginStarted:
        username = canonical_username(raw_username)
        now = self._clock()
        with self._store.transaction() as tx:
            user = tx.users.login_record(username)
            admission = self._regulation.admit(tx, username, client.ip, now)
            self._record_ban(tx, admission, client, None if user is None else user.id, username)
        # A banned name answers as a name without an account: the client sees a wrong password.
        answering = user if admission.admitted else None
        record, fingerprint = self._answering_record(username, answering)
        response = _protocol_call(self._protocol.login_response, ke1, record, username)
        login_id = self._login_states.seal(
            LoginState(
                username=username,
                user_id=None if answering is None else answering.id,
                record_fingerprint=fingerprint,
                expected_client_auth=response.expected_client_auth,
                started_at=now,
            )
        )
        return LoginStarted(login_id=login_id, username=username, server_id=self.server_id, login_response=response.ke2)

    def _answering_record(self, username: str, user: LoginRecord | None) -> tuple[bytes, bytes]:
        """The OPAQUE record that answers KE1 for `username`, and its fingerprint (NO_RECORD when
        the name has no account and a fake record answers).

        Both cases do the same work, so that the time of /login/init does not tell them apart
        (RFC 9807 section 10.9): the fake record is derived, and a sealed record (the account's,
        or a decoy) is opened and fingerprinted; only then is one of them chosen. A cache of fake
        records would not do: a name's first login would then be slower than its next ones.
        """
        fake_record = self._protocol.fake_user_record(username)
        if user is None:
            sealed, sealed_for = self._decoy_record, DECOY_USERNAME
        else:
            sealed, sealed_for = user.opaque_record, username
        opened = self._sealer.open(sealed, username=sealed_for, purpose=SEALED_OPAQUE_RECORD)
        fingerprint = record_fingerprint(sealed)
        return (fake_record, NO_RECORD) if user is None else (opened, fingerprint)

    def finish_login(self, login_id: str, ke3: bytes, client: ClientInfo) -> LoginFinished:
        if len(ke3) != KE3_BYTES:
            raise InvalidMessage(f"finishLoginRequest must be {KE3_BYTES} bytes, not {len(ke3)}")
        opened = self._login_states.open(login_id)
        now = self._clock()
        if opened is None:
            # Not a loginId of this deployment: never issued, or altered.
            raise self._login_failed(LoginExpired(), Phase.EXPIRED, client, None, None)
        state = opened.state
        expires_at = state.started_at + self._lifetimes.login_state
        if expires_at <= now:
            raise self._login_failed(LoginExpired(), Phase.EXPIRED, client, state.user_id, state.username)
        # A wrong KE3 and an unknown name look alike, and cost the same statements below.
        authenticated = self._protocol.client_authenticated(state.expected_client_auth, ke3)
        try:
            with self._store.transaction() as tx:
                if self._sweep_due(now):
                    tx.spent_logins.delete_expired(now)
                tx.spent_logins.spend(opened.spent_key, expires_at)
                # Read by id even for an unknown name (no row has id NULL): both cases run the
                # same statements.
                user = tx.users.by_id(state.user_id)
                current = user is not None and record_fingerprint(user.opaque_record) == state.record_fingerprint
                if not authenticated:
                    admission = self._regulation.admit(tx, state.username, client.ip, now)  # one more guess
                    self._audit.record(
                        tx,
                        Event.LOGIN_FAILED,
                        client,
                        user_id=state.user_id,
                        username=state.username,
                        phase=Phase.PASSWORD,
                    )
                    self._record_ban(tx, admission, client, state.user_id, state.username)
                elif current:
                    self._regulation.forgive(tx, state.username, client.ip)
        except StoreConflict:
            # Used before.
            raise self._login_failed(LoginExpired(), Phase.EXPIRED, client, state.user_id, state.username) from None
        if state.user_id is not None and not current:
            # Deleted since, or its password changed: what answered KE1 is no longer the record.
            raise self._login_failed(LoginExpired(), Phase.EXPIRED, client, state.user_id, state.username)
        if not authenticated or user is None:
            raise InvalidCredentials()  # recorded with its count above
        if user.status == STATUS_DISABLED:
            raise self._login_failed(AccountDisabled(), Phase.DISABLED, client, user.id, user.username)
        if user.status != STATUS_ACTIVE:
            raise self._login_failed(AccountPending(), Phase.PENDING, client, user.id, user.username)
        return LoginFinished(username=user.username, pass_auth=self._tokens.mint(TokenPurpose.PASS_AUTH, user.username))

    def _record_ban(
        self, tx: Transaction, admission: Admission, client: ClientInfo, user_id: int | None, username: str
    ) -> None:
        if admission.verdict is Verdict.BAN_STARTED and admission.banned_until is not None:
            self._audit.record(
                tx,
                Event.LOGIN_BANNED,
                client,
                user_id=user_id,
                username=username,
                scope=admission.scope or "",
                until=admission.banned_until.isoformat(timespec="seconds"),
            )

    def _login_failed(
        self, refusal: CypherError, phase: Phase, client: ClientInfo, user_id: int | None, username: str | None
    ) -> CypherError:
        """Record a refused password step in a transaction of its own (the refusal writes nothing
        else), and hand the refusal back to be raised."""
        self._audit.record_alone(Event.LOGIN_FAILED, client, user_id=user_id, username=username, phase=phase)
        return refusal

    def _sweep_due(self, now: datetime) -> bool:
        if self._swept_at is not None and now - self._swept_at < SPENT_LOGIN_SWEEP_INTERVAL:
            return False
        self._swept_at = now
        return True


def _live(state: OpenRegistration | None, now: datetime) -> OpenRegistration | None:
    return state if state is not None and state.expires_at > now else None


def _protocol_call(function: Callable[P, R], *arguments: P.args, **keywords: P.kwargs) -> R:
    """Call into libopaque, turning its refusals into the API's invalid_message."""
    try:
        return function(*arguments, **keywords)
    except OpaqueProtocolError as error:
        raise InvalidMessage(str(error)) from None
