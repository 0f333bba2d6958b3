"""OPAQUE login, the password step: start (KE2 from the stored record, or from a fake record for
a name without an account or under a login ban; the login's state sealed into the loginId,
nothing stored but the name's regulation count) and finish (the loginId spent, KE3 checked; an
active account gets a pass-auth token for the TOTP step).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from cypher.domain import STATUS_ACTIVE, STATUS_DISABLED
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
)
from cypher.services.login_state import NO_RECORD, LoginState, LoginStateSealer, record_fingerprint
from cypher.services.opaque_protocol import KE3_BYTES, USER_RECORD_BYTES, OpaqueProtocol, protocol_call
from cypher.services.registration import SEALED_OPAQUE_RECORD
from cypher.services.regulation import Admission, LoginRegulation, Verdict
from cypher.services.sealing import Sealer
from cypher.services.tokens import MintedToken, TokenPurpose, TokenService
from cypher.services.users import canonical_username
from cypher.store import LoginRecord, Store, StoreConflict, Transaction

# Whom the decoy record is sealed for: no username is empty, so it is no account's.
DECOY_USERNAME = ""
# Spent loginIds past their expiry are garbage, cleared at most this often on the way past.
SPENT_LOGIN_SWEEP_INTERVAL = timedelta(seconds=60)


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


class LoginService:
    def __init__(
        self,
        store: Store,
        protocol: OpaqueProtocol,
        sealer: Sealer,
        tokens: TokenService,
        clock: Clock,
        login_lifetime: timedelta,
        regulation: LoginRegulation,
        audit: AuditTrail,
    ) -> None:
        self._store = store
        self._protocol = protocol
        self._sealer = sealer
        self._login_states = LoginStateSealer(sealer)
        self._tokens = tokens
        self._clock = clock
        self._login_lifetime = login_lifetime
        self._regulation = regulation
        self._audit = audit
        self._swept_at: datetime | None = None
        # Opened in place of an account's record when the name has none (_answering_record).
        self._decoy_record = sealer.seal(
            bytes(USER_RECORD_BYTES), username=DECOY_USERNAME, purpose=SEALED_OPAQUE_RECORD
        )

    @property
    def server_id(self) -> str:
        return self._protocol.server_id

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
        response = protocol_call(self._protocol.login_response, ke1, record, username)
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
        expires_at = state.started_at + self._login_lifetime
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
