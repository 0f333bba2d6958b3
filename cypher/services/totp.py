"""The second factor: TOTP (RFC 6238) enrolment and login, and one-time recovery codes.

Codes are 6 digits over 30-second steps; the current step and one on either side are accepted,
and each step at most once per account (the last accepted step is stored and only a later one
passes; totp_codes.py). Recovery codes (recovery_codes.py) are shown once and stored as keyed
hashes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta

from cypher.domain import STATUS_ACTIVE, STATUS_PENDING
from cypher.services.audit import AuditTrail, Event, Phase, session_ref
from cypher.services.client_info import ClientInfo
from cypher.services.clock import Clock
from cypher.services.errors import CypherError, InvalidToken, InvalidTotp, PassAuthExpired, TooManyAttempts
from cypher.services.recovery_codes import RecoveryCodes
from cypher.services.sealing import Sealer
from cypher.services.sessions import SessionService, SessionTokens
from cypher.services.tokens import TokenClaims, TokenPurpose, TokenService
from cypher.services.totp_codes import (
    TOTP_PERIOD_SECONDS,
    matching_step,
    new_secret,
    otpauth_uri,
    qr_code_data_url,
)
from cypher.store import Store, Transaction, UserRecord

MAX_ATTEMPTS_PER_PASS_AUTH = 5
# Wrong codes in a row per account, whatever token or session they came with; then it rests.
LOCKOUT_FAILURES = 10
LOCKOUT_DURATION = timedelta(minutes=15)
ACCOUNT_LOCKED_MESSAGE = "Too many wrong codes for this account. Try again in 15 minutes."
SEALED_TOTP_SECRET = "totp_secret"
USED_CODE_MESSAGE = "This code was already used. Wait for the next one (in {seconds} s)."
USED_CODE_NEXT_SHOWN_MESSAGE = "This code was already used. Enter the next one your app shows."
USED_RECOVERY_CODE_MESSAGE = "This recovery code was already used."


@dataclass(frozen=True)
class TotpEnrollment:
    username: str
    secret: str  # base32, for people who type it in
    otpauth_uri: str
    qr_code: str  # data:image/png;base64,...


@dataclass(frozen=True)
class Activated:
    username: str
    recovery_codes: list[str]
    # Enrolment proved the password (OPAQUE registration) and the authenticator in one browser:
    # it opens a session there, as a login's second step does.
    session: SessionTokens


class TotpService:
    def __init__(
        self,
        store: Store,
        sealer: Sealer,
        tokens: TokenService,
        sessions: SessionService,
        recovery: RecoveryCodes,
        clock: Clock,
        issuer: str,
        pending_ttl: timedelta,
        audit: AuditTrail,
    ) -> None:
        self._store = store
        self._sealer = sealer
        self._tokens = tokens
        self._sessions = sessions
        self._recovery = recovery
        self._clock = clock
        self._issuer = issuer
        self._pending_ttl = pending_ttl
        self._audit = audit

    # -- enrolment (authorised by the enrolment token of a pending account only) -------------

    def setup(self, enrollment_token: str) -> TotpEnrollment:
        claims = self._tokens.parse(enrollment_token, TokenPurpose.ENROLL)
        secret = new_secret()
        sealed = self._sealer.seal(secret.encode("ascii"), username=claims.subject, purpose=SEALED_TOTP_SECRET)
        with self._store.transaction() as tx:
            user = self._enrolling_user(tx, claims)
            tx.users.set_totp_secret(user.id, sealed, self._clock())
        uri = otpauth_uri(secret, user.username, self._issuer)
        return TotpEnrollment(user.username, secret, uri, qr_code_data_url(uri))

    def verify_setup(self, enrollment_token: str, code: str, client: ClientInfo) -> Activated:
        claims = self._tokens.parse(enrollment_token, TokenPurpose.ENROLL)
        now = self._clock()
        codes = self._recovery.generate()
        hashes = [self._recovery.hash(code) for code in codes]
        with self._store.transaction() as tx:
            user = self._enrolling_user(tx, claims)
            step = matching_step(self._secret(user), code, now)
            if step is None or not _unused(user, step):
                raise _wrong_code(user, step, now)
            tx.users.set_status(user.id, STATUS_ACTIVE, now)
            tx.users.set_totp_state(user.id, step, 0, None)
            tx.recovery_codes.add(user.id, hashes, self._recovery.current_key_id)
            self._audit.record(tx, Event.TOTP_ENROLLED, client, user_id=user.id, username=user.username)
            tokens, session = self._sessions.prepare(user.id, user.username, client)
            tx.sessions.add(session)
            self._audit.record(
                tx,
                Event.LOGIN_SUCCEEDED,
                client,
                user_id=user.id,
                username=user.username,
                session=session_ref(tokens.session_id),
                factor="totp",
            )
        return Activated(user.username, codes, tokens)

    def _enrolling_user(self, tx: Transaction, claims: TokenClaims) -> UserRecord:
        """The pending account the token enrols, locked for the rest of the transaction."""
        user = tx.users.by_name(claims.subject, lock=True)
        # A token minted before this account existed belongs to an earlier, expired account of
        # the same name: it must not enrol the new one. Nor may a pending account past its time.
        if (
            user is None
            or user.status != STATUS_PENDING
            or _newer_than(user.created_at, claims.issued_at)
            or user.created_at + self._pending_ttl <= self._clock()
        ):
            raise InvalidToken()
        return user

    # -- login -------------------------------------------------------------------------------

    def verify_login(
        self, pass_auth_token: str | None, code: str | None, recovery_code: str | None, client: ClientInfo
    ) -> SessionTokens:
        claims = self._pass_auth_claims(pass_auth_token)
        with self._store.transaction() as tx:
            outcome = self._second_step(tx, claims, code, recovery_code, client, self._clock())
        if isinstance(outcome, CypherError):
            raise outcome
        return outcome

    def _second_step(
        self,
        tx: Transaction,
        claims: TokenClaims,
        code: str | None,
        recovery_code: str | None,
        client: ClientInfo,
        now: datetime,
    ) -> SessionTokens | CypherError:
        """Decide the login's second step. A refusal is returned rather than raised, so that the
        attempt and the wrong code it counted are committed with it."""
        # The account row stays locked until the end: concurrent guesses are judged one by one.
        user = tx.users.by_name(claims.subject, lock=True)
        if user is None or _newer_than(user.created_at, claims.issued_at):
            # An account of that name made since is not the one the token speaks for.
            return self._login_refused(tx, PassAuthExpired(), Phase.EXPIRED, client, None, claims.subject)
        if user.status != STATUS_ACTIVE:
            return self._login_refused(tx, PassAuthExpired(), Phase.DISABLED, client, user.id, user.username)
        if user.password_changed_at and _newer_than(user.password_changed_at, claims.issued_at):
            # The password it proved is no longer the password.
            return self._login_refused(tx, PassAuthExpired(), Phase.EXPIRED, client, user.id, user.username)
        use = tx.pass_auth_uses.find(claims.token_id)
        if use is not None and use.spent:
            # It opened a session already.
            return self._login_refused(tx, PassAuthExpired(), Phase.EXPIRED, client, user.id, user.username)
        if use is not None and use.attempts >= MAX_ATTEMPTS_PER_PASS_AUTH:
            return self._login_refused(tx, TooManyAttempts(), Phase.TOO_MANY_ATTEMPTS, client, user.id, user.username)
        # Every attempt counts, right or wrong; a right one spends the token.
        refusal = self._judge(tx, user, code, recovery_code, client, now)
        attempts, spent_at = (1 if use is None else use.attempts + 1), (None if refusal else now)
        if use is None:
            tx.pass_auth_uses.add(claims.token_id, user.id, claims.expires_at, attempts, spent_at)
        else:
            tx.pass_auth_uses.update(claims.token_id, attempts, spent_at)
        if refusal is not None:
            phase = Phase.RECOVERY_CODE if recovery_code is not None else Phase.TOTP
            if isinstance(refusal, TooManyAttempts):
                phase = Phase.LOCKED
            return self._login_refused(tx, refusal, phase, client, user.id, user.username)
        tokens, session = self._sessions.prepare(user.id, user.username, client)
        tx.sessions.add(session)
        ref = session_ref(tokens.session_id)
        if recovery_code is not None:
            self._audit.record(tx, Event.RECOVERY_CODE_USED, client, user_id=user.id, username=user.username)
        factor = "totp" if recovery_code is None else "recovery_code"
        self._audit.record(
            tx, Event.LOGIN_SUCCEEDED, client, user_id=user.id, username=user.username, session=ref, factor=factor
        )
        return tokens

    def _login_refused(
        self,
        tx: Transaction,
        refusal: CypherError,
        phase: Phase,
        client: ClientInfo,
        user_id: int | None,
        username: str,
    ) -> CypherError:
        """Record the refused second step with the attempt it counted, and hand the refusal back."""
        self._audit.record(tx, Event.LOGIN_FAILED, client, user_id=user_id, username=username, phase=phase)
        return refusal

    def _pass_auth_claims(self, token: str | None) -> TokenClaims:
        if not token:
            raise PassAuthExpired()
        try:
            return self._tokens.parse(token, TokenPurpose.PASS_AUTH)
        except InvalidToken:
            raise PassAuthExpired() from None

    # -- account actions ----------------------------------------------------------------------

    def check_code(self, user_id: int, code: str, client: ClientInfo) -> None:
        """Accept a fresh code of an active account, once; InvalidTotp or TooManyAttempts otherwise."""
        with self._store.transaction() as tx:
            user = tx.users.by_id(user_id, lock=True)
            if user is None or user.status != STATUS_ACTIVE:
                raise InvalidTotp()
            refusal = self._judge(tx, user, code, None, client, self._clock())
            if refusal is not None:
                phase = Phase.LOCKED if isinstance(refusal, TooManyAttempts) else Phase.TOTP
                self._audit.record(tx, Event.TOTP_FAILED, client, user_id=user.id, username=user.username, phase=phase)
        if refusal is not None:
            raise refusal

    def regenerate_recovery_codes(self, user: UserRecord, client: ClientInfo) -> list[str]:
        codes = self._recovery.generate()
        hashes = [self._recovery.hash(code) for code in codes]
        with self._store.transaction() as tx:
            tx.recovery_codes.delete_for(user.id)
            tx.recovery_codes.add(user.id, hashes, self._recovery.current_key_id)
            self._audit.record(tx, Event.RECOVERY_CODES_REGENERATED, client, user_id=user.id, username=user.username)
        return codes

    # -- the policy both share ----------------------------------------------------------------

    def _judge(
        self,
        tx: Transaction,
        user: UserRecord,
        code: str | None,
        recovery_code: str | None,
        client: ClientInfo,
        now: datetime,
    ) -> CypherError | None:
        """Spend the code (a TOTP step, or a recovery code) of a locked account row, or count it
        wrong toward the lockout, which a right one clears. The refusal, or None."""
        if user.totp_locked_until is not None and user.totp_locked_until > now:
            return TooManyAttempts(ACCOUNT_LOCKED_MESSAGE, retry_after=_seconds_until(user.totp_locked_until, now))
        step = None
        if recovery_code is not None:
            accepted = self._spend_recovery_code(tx, user, recovery_code, now)
        else:
            step = matching_step(self._secret(user), code or "", now)
            accepted = step is not None and _unused(user, step)
        if accepted:
            if step is not None or user.totp_failures or user.totp_locked_until:
                tx.users.set_totp_state(user.id, user.totp_last_step if step is None else step, 0, None)
            return None
        failures = user.totp_failures + 1
        locked_until = now + LOCKOUT_DURATION if failures >= LOCKOUT_FAILURES else user.totp_locked_until
        tx.users.set_totp_state(user.id, user.totp_last_step, failures, locked_until)
        if locked_until != user.totp_locked_until:
            self._audit.record(tx, Event.TOTP_LOCKED, client, user_id=user.id, username=user.username)
        if recovery_code is not None:
            if self._recovery_code_spent(tx, user, recovery_code):
                return InvalidTotp(USED_RECOVERY_CODE_MESSAGE)
            return InvalidTotp("Invalid recovery code")
        return _wrong_code(user, step, now)

    def _spend_recovery_code(self, tx: Transaction, user: UserRecord, code: str, now: datetime) -> bool:
        # The code's hash under every listed key: whichever key stored it.
        return any(
            tx.recovery_codes.spend(user.id, key_id, code_hash, now)
            for key_id, code_hash in self._recovery.candidates(code).items()
        )

    def _recovery_code_spent(self, tx: Transaction, user: UserRecord, code: str) -> bool:
        return any(
            tx.recovery_codes.was_spent(user.id, key_id, code_hash)
            for key_id, code_hash in self._recovery.candidates(code).items()
        )

    def _secret(self, user: UserRecord) -> str:
        if user.totp_secret is None:
            raise InvalidTotp("Set up TOTP first.")
        return self._sealer.open(user.totp_secret, username=user.username, purpose=SEALED_TOTP_SECRET).decode("ascii")


def _wrong_code(user: UserRecord, step: int | None, now: datetime) -> InvalidTotp:
    """The refusal of a TOTP code: plain wrong, or right but used already (say when the next comes).

    Saying so gives nothing away: the code is spent, and only its owner's app just showed it."""
    if step is None or user.totp_last_step is None:
        return InvalidTotp()
    wait = math.ceil((user.totp_last_step + 1) * TOTP_PERIOD_SECONDS - now.timestamp())
    if wait <= 0:
        return InvalidTotp(USED_CODE_NEXT_SHOWN_MESSAGE)
    return InvalidTotp(USED_CODE_MESSAGE.format(seconds=wait), retry_after=wait)


def _unused(user: UserRecord, step: int) -> bool:
    """Whether a step comes after the last one accepted: each step works once per account."""
    return user.totp_last_step is None or step > user.totp_last_step


def _seconds_until(moment: datetime, now: datetime) -> int:
    """Whole seconds from now until `moment`, rounded up: asking again sooner would be refused."""
    return max(1, math.ceil((moment - now).total_seconds()))


def _newer_than(moment: datetime, token_issued_at: datetime) -> bool:
    """Whether `moment` comes after a token's issue time (both to the microsecond)."""
    return moment > token_issued_at
