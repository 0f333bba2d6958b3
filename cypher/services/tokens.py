"""PASETO v4.local tokens: one key per purpose, the key id in the footer, claims checked on parse.

No HTTP endpoint mints a token directly: the OPAQUE, TOTP and session services call `mint` only
after the step that earns the token has succeeded.
"""

from __future__ import annotations

import binascii
import json
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum

import paseto
from paseto.exceptions import PasetoException
from paseto.helpers import b64decode
from paseto.keys.symmetric_key import SymmetricKey

from cypher.keys import KeyPurpose, KeyRing, KeySet
from cypher.services.clock import Clock
from cypher.services.errors import InvalidToken, TokenExpired

TOKEN_PREFIX = "v4.local."
MAX_TOKEN_LENGTH = 4096


class TokenPurpose(StrEnum):
    PASS_AUTH = "pass_auth"
    ACCESS = "access"
    REFRESH = "refresh"
    ENROLL = "enroll"


_KEY_PURPOSE = {
    TokenPurpose.PASS_AUTH: KeyPurpose.PASS_AUTH,
    TokenPurpose.ACCESS: KeyPurpose.ACCESS,
    TokenPurpose.REFRESH: KeyPurpose.REFRESH,
    TokenPurpose.ENROLL: KeyPurpose.ENROLL,
}
_SESSION_BOUND = {TokenPurpose.ACCESS, TokenPurpose.REFRESH}


@dataclass(frozen=True)
class TokenClaims:
    subject: str  # the canonical username
    purpose: TokenPurpose
    token_id: str
    issued_at: datetime
    expires_at: datetime
    issuer: str
    session_id: str | None = None


@dataclass(frozen=True)
class MintedToken:
    token: str
    claims: TokenClaims

    @property
    def lifetime_seconds(self) -> int:
        return round((self.claims.expires_at - self.claims.issued_at).total_seconds())


def _timestamp(moment: datetime) -> str:
    return moment.isoformat(timespec="seconds")


class TokenService:
    def __init__(self, keyring: KeyRing, issuer: str, lifetimes: dict[TokenPurpose, int], clock: Clock) -> None:
        self._key_sets: dict[TokenPurpose, KeySet] = {p: keyring[k] for p, k in _KEY_PURPOSE.items()}
        self._issuer = issuer
        self._lifetimes = lifetimes
        self._clock = clock

    def mint(
        self, purpose: TokenPurpose, subject: str, session_id: str | None = None, not_after: datetime | None = None
    ) -> MintedToken:
        """A new token; `not_after` caps its expiry (a session's tokens never outlive the session)."""
        if (purpose in _SESSION_BOUND) != (session_id is not None):
            raise ValueError(f"{purpose} tokens {'need' if purpose in _SESSION_BOUND else 'take no'} session id")
        issued_at = self._clock().replace(microsecond=0)
        claims = TokenClaims(
            subject=subject,
            purpose=purpose,
            token_id=secrets.token_urlsafe(16),
            issued_at=issued_at,
            expires_at=min(
                issued_at + timedelta(seconds=self._lifetimes[purpose]),
                not_after.replace(microsecond=0) if not_after else datetime.max.replace(tzinfo=UTC),
            ),
            issuer=self._issuer,
            session_id=session_id,
        )
        body: dict[str, str] = {
            "sub": claims.subject,
            "typ": claims.purpose.value,
            "jti": claims.token_id,
            "iat": _timestamp(claims.issued_at),
            "exp": _timestamp(claims.expires_at),
            "iss": claims.issuer,
        }
        if session_id is not None:
            body["sid"] = session_id
        key_set = self._key_sets[purpose]
        token = paseto.create(
            key=SymmetricKey.v4(key_set.current),
            purpose="local",
            claims=body,
            footer={"kid": key_set.current_key_id},
        )
        return MintedToken(token=token, claims=claims)

    def parse(self, token: str, purpose: TokenPurpose) -> TokenClaims:
        """Decrypt and check a token of the given purpose; raise InvalidToken or TokenExpired."""
        if not isinstance(token, str) or len(token) > MAX_TOKEN_LENGTH or not token.startswith(TOKEN_PREFIX):
            raise InvalidToken()
        key = self._key_for(token, purpose)
        try:
            parsed = paseto.parse(key=SymmetricKey.v4(key), purpose="local", token=token, validate=False)
        except (PasetoException, ValueError, TypeError, binascii.Error, UnicodeError):
            # Tampered, truncated or encrypted under another key: all the same to the caller.
            raise InvalidToken() from None
        claims = self._claims_from(parsed["message"], purpose)
        if self._clock() >= claims.expires_at:
            raise TokenExpired()
        return claims

    def _key_for(self, token: str, purpose: TokenPurpose) -> bytes:
        # The footer is read before decryption only to choose the key; decryption authenticates it.
        parts = token.split(".")
        if len(parts) != 4:
            raise InvalidToken()
        try:
            footer = json.loads(b64decode(parts[3].encode("ascii")))
        except (ValueError, binascii.Error, UnicodeError):
            raise InvalidToken() from None
        key_id = footer.get("kid") if isinstance(footer, dict) else None
        key = self._key_sets[purpose].get(key_id) if isinstance(key_id, str) else None
        if key is None:
            raise InvalidToken()
        return key

    def _claims_from(self, body: object, purpose: TokenPurpose) -> TokenClaims:
        if not isinstance(body, dict) or body.get("typ") != purpose.value or body.get("iss") != self._issuer:
            raise InvalidToken()
        try:
            claims = TokenClaims(
                subject=str(body["sub"]),
                purpose=purpose,
                token_id=str(body["jti"]),
                issued_at=datetime.fromisoformat(body["iat"]),
                expires_at=datetime.fromisoformat(body["exp"]),
                issuer=str(body["iss"]),
                session_id=body.get("sid"),
            )
        except (KeyError, TypeError, ValueError):
            raise InvalidToken() from None
        if claims.expires_at.tzinfo is None or (purpose in _SESSION_BOUND) != isinstance(claims.session_id, str):
            raise InvalidToken()
        return claims
