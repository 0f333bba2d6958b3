"""PASETO v4.local tokens: one key per purpose, the key id in the footer, claims checked on parse.

No HTTP endpoint mints a token directly: the OPAQUE, TOTP and session services call `mint` only
after the step that earns the token has succeeded.
"""

from __future__ import annotations

import binascii
import json
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from paseto.exceptions import PasetoException
from paseto.helpers import b64encode
from paseto.keys.symmetric_key import SymmetricKey
from paseto.protocols.v4 import ProtocolVersion4

from cypher import base64url
from cypher.keys import KeyPurpose, KeyRing, KeySet
from cypher.services.clock import Clock
from cypher.services.errors import InvalidToken, TokenExpired

TOKEN_PREFIX = "v4.local."
MAX_TOKEN_LENGTH = 4096
# The claims as compact JSON, from one encoder made once (json.dumps with separators builds one per call).
_CLAIMS_ENCODER = json.JSONEncoder(separators=(",", ":"))


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
    return moment.isoformat(timespec="microseconds")


@dataclass(frozen=True)
class _PasetoKey:
    """One key of one purpose, ready for the protocol: the key and the footer naming it."""

    key: SymmetricKey
    footer: bytes  # {"kid": ...} as JSON, authenticated with every token (PASETO's PAE)


def _footer(key_id: str) -> bytes:
    # Exactly as paseto.create writes a footer (sorted keys, no spaces): every token Cypher has
    # minted names its key with one of these.
    return json.dumps({"kid": key_id}, sort_keys=True, separators=(",", ":")).encode()


def _paseto_keys(key_set: KeySet) -> tuple[_PasetoKey, dict[str, _PasetoKey]]:
    """The current key, and every accepted key by its footer as a token carries it (base64url)."""
    by_id = {
        key_id: _PasetoKey(SymmetricKey.v4(material), _footer(key_id)) for key_id, material in key_set.keys.items()
    }
    accepted = {b64encode(key.footer).decode("ascii"): key for key in by_id.values()}
    return by_id[key_set.current_key_id], accepted


class TokenService:
    """Mints and parses tokens with the paseto package's v4 protocol.

    It calls ProtocolVersion4 itself rather than paseto.create and paseto.parse, which encode,
    extract and decode the footer again on every call: the key for a footer is found here once,
    and the same encryption and authentication run (bench/login_cost.py, docs/performance.md).
    """

    def __init__(self, keyring: KeyRing, issuer: str, lifetimes: dict[TokenPurpose, int], clock: Clock) -> None:
        self._current: dict[TokenPurpose, _PasetoKey] = {}
        self._accepted: dict[TokenPurpose, dict[str, _PasetoKey]] = {}
        for purpose, key_purpose in _KEY_PURPOSE.items():
            self._current[purpose], self._accepted[purpose] = _paseto_keys(keyring[key_purpose])
        self._issuer = issuer
        self._lifetimes = {purpose: timedelta(seconds=seconds) for purpose, seconds in lifetimes.items()}
        self._clock = clock

    def mint(
        self, purpose: TokenPurpose, subject: str, session_id: str | None = None, not_after: datetime | None = None
    ) -> MintedToken:
        """A new token; `not_after` caps its expiry (a session's tokens never outlive the session)."""
        if (purpose in _SESSION_BOUND) != (session_id is not None):
            raise ValueError(f"{purpose} tokens {'need' if purpose in _SESSION_BOUND else 'take no'} session id")
        # To the microsecond, as the database's times are: a token is known to be older than a
        # password change, or newer, even within one second.
        issued_at = self._clock()
        expires_at = issued_at + self._lifetimes[purpose]
        if not_after is not None:
            expires_at = min(expires_at, not_after)
        claims = TokenClaims(
            subject=subject,
            purpose=purpose,
            token_id=secrets.token_urlsafe(16),
            issued_at=issued_at,
            expires_at=expires_at,
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
        current = self._current[purpose]
        token = ProtocolVersion4.encrypt(_CLAIMS_ENCODER.encode(body).encode(), current.key, current.footer)
        return MintedToken(token=token.decode("ascii"), claims=claims)

    def parse(self, token: str, purpose: TokenPurpose) -> TokenClaims:
        """Decrypt and check a token of the given purpose; raise InvalidToken or TokenExpired."""
        if not isinstance(token, str) or len(token) > MAX_TOKEN_LENGTH or not token.startswith(TOKEN_PREFIX):
            raise InvalidToken()
        # The footer is read before decryption only to choose the key; decryption authenticates it.
        # A footer that names no key of this purpose, or is written otherwise, was not ours.
        parts = token.split(".")
        key = self._accepted[purpose].get(parts[3]) if len(parts) == 4 else None
        # PASETO requires one spelling: no padding, no "+/", no spare bits set (paseto decodes any).
        if key is None or not base64url.is_canonical(parts[2]):
            raise InvalidToken()
        try:
            message = json.loads(ProtocolVersion4.decrypt(token.encode("ascii"), key.key, footer=key.footer))
        except (PasetoException, ValueError, TypeError, binascii.Error, UnicodeError):
            # Tampered, truncated or encrypted under another key: all the same to the caller.
            raise InvalidToken() from None
        claims = self._claims_from(message, purpose)
        if self._clock() >= claims.expires_at:
            raise TokenExpired()
        return claims

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
