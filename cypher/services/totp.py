"""The second factor: TOTP (RFC 6238) enrolment and login, and one-time recovery codes.

Codes are 6 digits over 30-second steps; the current step and one on either side are accepted,
and each step at most once per account (the last accepted step is stored and only a later one
passes). Recovery codes are shown once and stored as keyed BLAKE2b hashes.
"""

from __future__ import annotations

import base64
import hmac
import io
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

import pyotp
import pysodium
import qrcode

from cypher.keys import KeySet
from cypher.services.clock import Clock
from cypher.services.errors import InvalidToken, InvalidTotp, PassAuthExpired, TooManyAttempts
from cypher.services.sealing import Sealer
from cypher.services.sessions import ClientInfo, SessionService, SessionTokens
from cypher.services.tokens import TokenClaims, TokenPurpose, TokenService
from cypher.services.users import STATUS_PENDING
from cypher.store import CodeProof, Lockout, NewSession, Store, UserRecord, Verdict

TOTP_DIGITS = 6
TOTP_PERIOD_SECONDS = 30
DRIFT_STEPS = 1
_DRIFT_ORDER = sorted(range(-DRIFT_STEPS, DRIFT_STEPS + 1), key=abs)  # 0, -1, 1: the likeliest first
SECRET_BYTES = 20  # 160 bits, as RFC 4226 recommends
MAX_ATTEMPTS_PER_PASS_AUTH = 5
# Wrong codes in a row per account, whatever token or session they came with; then it rests.
LOCKOUT = Lockout(max_failures=10, duration=timedelta(minutes=15))
ACCOUNT_LOCKED_MESSAGE = "Too many wrong codes for this account. Try again in 15 minutes."
RECOVERY_CODE_COUNT = 10
# Crockford-like: no 0/O, 1/I/L, so a code read aloud or copied by hand survives.
RECOVERY_ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"
RECOVERY_GROUPS, RECOVERY_GROUP_LENGTH = 3, 4  # XXXX-XXXX-XXXX, about 59 bits
SEALED_TOTP_SECRET = "totp_secret"


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


class RecoveryCodes:
    """Makes recovery codes and their keyed hashes (key derived from each at-rest key)."""

    def __init__(self, key_set: KeySet) -> None:
        self._hash_keys = {
            key_id: pysodium.crypto_generichash(b"cypher recovery-code hash v1", key, 32)
            for key_id, key in key_set.keys.items()
        }
        self.current_key_id = key_set.current_key_id

    @staticmethod
    def generate() -> list[str]:
        return [
            "-".join(
                "".join(secrets.choice(RECOVERY_ALPHABET) for _ in range(RECOVERY_GROUP_LENGTH))
                for _ in range(RECOVERY_GROUPS)
            )
            for _ in range(RECOVERY_CODE_COUNT)
        ]

    @staticmethod
    def normalise(code: str) -> bytes:
        return code.upper().replace("-", "").replace(" ", "").encode("ascii", "replace")

    def hash(self, code: str, key_id: str | None = None) -> bytes:
        key = self._hash_keys[key_id or self.current_key_id]
        return pysodium.crypto_generichash(self.normalise(code), key, 32)

    def candidates(self, code: str) -> dict[str, bytes]:
        """The code's hash under every listed key, to find it whichever key stored it."""
        return {key_id: self.hash(code, key_id) for key_id in self._hash_keys}


def _step(moment: datetime) -> int:
    return int(moment.timestamp()) // TOTP_PERIOD_SECONDS


def matching_step(secret: str, code: str, now: datetime) -> int | None:
    """The step within the drift window whose code equals `code`, each compared in constant time.

    The current step is tried first and the search stops at a match: a right code from an
    in-sync device costs one HMAC instead of three. Which step matched is no secret (the
    answer says the code was right), and the code itself is only ever compared in constant time.
    """
    if len(code) != TOTP_DIGITS or not (code.isascii() and code.isdigit()):
        return None
    totp = pyotp.TOTP(secret, digits=TOTP_DIGITS, interval=TOTP_PERIOD_SECONDS)
    current = _step(now)
    for drift in _DRIFT_ORDER:
        if hmac.compare_digest(totp.generate_otp(current + drift), code):
            return current + drift
    return None


def qr_code_data_url(text: str) -> str:
    image = qrcode.make(text, border=2)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


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
    ) -> None:
        self._store = store
        self._sealer = sealer
        self._tokens = tokens
        self._sessions = sessions
        self._recovery = recovery
        self._clock = clock
        self._issuer = issuer
        self._pending_ttl = pending_ttl

    # -- enrolment (authorised by the enrolment token of a pending account only) -------------

    def setup(self, enrollment_token: str) -> TotpEnrollment:
        user = self._enrolling_user(enrollment_token)
        secret = base64.b32encode(secrets.token_bytes(SECRET_BYTES)).decode("ascii")
        sealed = self._sealer.seal(secret.encode("ascii"), username=user.username, purpose=SEALED_TOTP_SECRET)
        if not self._store.second_factor.set_pending_totp_secret(user.id, sealed, self._clock()):
            raise InvalidToken()  # activated meanwhile
        uri = pyotp.TOTP(secret).provisioning_uri(name=user.username, issuer_name=self._issuer)
        return TotpEnrollment(user.username, secret, uri, qr_code_data_url(uri))

    def verify_setup(self, enrollment_token: str, code: str) -> Activated:
        user = self._enrolling_user(enrollment_token)
        if user.totp_secret is None:
            raise InvalidTotp("Set up TOTP first.")
        step = matching_step(self._secret(user), code, self._clock())
        if step is None:
            raise InvalidTotp()
        codes = self._recovery.generate()
        hashes = [self._recovery.hash(code) for code in codes]
        activated = self._store.second_factor.activate(
            user.id, user.totp_secret, step, hashes, self._recovery.current_key_id, self._clock()
        )
        if not activated:
            raise InvalidTotp()  # the step was used, the secret replaced, or another request was first
        return Activated(user.username, codes)

    def _enrolling_user(self, enrollment_token: str) -> UserRecord:
        claims = self._tokens.parse(enrollment_token, TokenPurpose.ENROLL)
        user = self._store.accounts.find_user(claims.subject)
        # A token minted before this account existed belongs to an earlier, expired account of
        # the same name: it must not enrol the new one. Nor may a pending account past its time.
        if (
            user is None
            or user.status != STATUS_PENDING
            or user.created_at.replace(microsecond=0) > claims.issued_at
            or user.created_at + self._pending_ttl <= self._clock()
        ):
            raise InvalidToken()
        return user

    # -- login -------------------------------------------------------------------------------

    def verify_login(
        self, pass_auth_token: str | None, code: str | None, recovery_code: str | None, client: ClientInfo
    ) -> SessionTokens:
        claims = self._pass_auth_claims(pass_auth_token)
        now = self._clock()
        opened: list[SessionTokens] = []

        def prove(user: UserRecord) -> CodeProof | None:
            if recovery_code is not None:
                return CodeProof(recovery_candidates=self._recovery.candidates(recovery_code))
            step = matching_step(self._secret(user), code or "", now)
            return None if step is None else CodeProof(step=step)

        def session_for(user: UserRecord) -> NewSession:
            tokens, row = self._sessions.prepare(user.id, user.username, client)
            opened.append(tokens)
            return row

        verdict = self._store.second_factor.second_factor_login(
            claims.token_id,
            claims.subject,
            claims.issued_at,
            MAX_ATTEMPTS_PER_PASS_AUTH,
            claims.expires_at,
            now,
            LOCKOUT,
            prove,
            session_for,
        )
        if verdict is Verdict.OPENED:
            return opened[0]
        if verdict is Verdict.EXHAUSTED:
            raise TooManyAttempts()
        if verdict is Verdict.LOCKED:
            raise TooManyAttempts(ACCOUNT_LOCKED_MESSAGE)
        if verdict is Verdict.CODE_REFUSED:
            raise InvalidTotp("Invalid recovery code") if recovery_code is not None else InvalidTotp()
        raise PassAuthExpired()  # no active account, or the token already opened a session

    def _pass_auth_claims(self, token: str | None) -> TokenClaims:
        if not token:
            raise PassAuthExpired()
        try:
            return self._tokens.parse(token, TokenPurpose.PASS_AUTH)
        except InvalidToken:
            raise PassAuthExpired() from None

    # -- account actions ----------------------------------------------------------------------

    def check_code(self, user: UserRecord, code: str) -> None:
        """Accept a fresh code of an active account, once; InvalidTotp or TooManyAttempts otherwise."""
        now = self._clock()
        step = matching_step(self._secret(user), code, now)
        verdict = self._store.second_factor.confirm_action(user.id, step, now, LOCKOUT)
        if verdict is Verdict.LOCKED:
            raise TooManyAttempts(ACCOUNT_LOCKED_MESSAGE)
        if verdict is not Verdict.ACCEPTED:
            raise InvalidTotp()

    def regenerate_recovery_codes(self, user: UserRecord) -> list[str]:
        codes = self._recovery.generate()
        self._store.second_factor.replace_recovery_codes(
            user.id, [self._recovery.hash(code) for code in codes], self._recovery.current_key_id
        )
        return codes

    def _secret(self, user: UserRecord) -> str:
        if user.totp_secret is None:
            raise InvalidTotp("Set up TOTP first.")
        return self._sealer.open(user.totp_secret, username=user.username, purpose=SEALED_TOTP_SECRET).decode("ascii")
