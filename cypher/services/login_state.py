"""A login's state between /login/init and /login/finish, sealed into the loginId itself.

/login/init writes nothing: what /login/finish needs (the KE3 libopaque expects, the account and
the record that answered, when the login began) travels in the loginId, encrypted and
authenticated with the at-rest key (sealing.py), so a client can neither read nor change it.
/login/finish records each loginId it accepts as spent (the store's spent_logins), which keeps it
single-use on every worker and machine. So an unauthenticated request adds no row and takes no
write lock, and a login costs one write transaction fewer (docs/performance.md).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from datetime import datetime

import pysodium

from cypher.domain import SealedValue
from cypher.services.clock import from_microseconds, to_microseconds
from cypher.services.opaque_protocol import EXPECTED_AUTH_BYTES
from cypher.services.sealing import Sealer, SealError, parse_sealed_id, sealed_id
from cypher.services.users import USERNAME_LENGTH

SEALED_LOGIN_STATE = "login_state"
RECORD_FINGERPRINT_BYTES = 16
NO_RECORD = bytes(RECORD_FINGERPRINT_BYTES)  # an unknown name: answered from a fake record
NO_USER = 0  # user ids start at 1
# Started (microseconds since the epoch), user id, record fingerprint, expected KE3, the name
# (NUL-padded): a fixed size, so every loginId has one length whatever the name (RFC 9807 section 10.9).
_LAYOUT = struct.Struct(f">QQ{RECORD_FINGERPRINT_BYTES}s{EXPECTED_AUTH_BYTES}s{USERNAME_LENGTH}s")


@dataclass(frozen=True)
class LoginState:
    username: str  # as canonicalised, with an account or not: login regulation counts by it
    user_id: int | None  # None for a name with no account (or banned): the login can only fail
    record_fingerprint: bytes  # of the sealed OPAQUE record that answered KE1 (NO_RECORD if none)
    expected_client_auth: bytes  # what KE3 must equal
    started_at: datetime


def record_fingerprint(sealed_record: SealedValue) -> bytes:
    """Names one stored record: a password change stores a new one (new nonce), so it no longer matches."""
    return pysodium.crypto_generichash(sealed_record.ciphertext, outlen=RECORD_FINGERPRINT_BYTES)


@dataclass(frozen=True)
class OpenedLogin:
    state: LoginState
    # What the store keeps once the login is used: BLAKE2b of the sealed bytes (hex, 64
    # characters). Of the bytes, not of the text, so that no other spelling of the same bytes
    # (padding, base64's spare bits) counts as another login.
    spent_key: str


class LoginStateSealer:
    """Turns a LoginState into a loginId ("<key id>.<base64url>") and back."""

    def __init__(self, sealer: Sealer) -> None:
        self._sealer = sealer

    def seal(self, state: LoginState) -> str:
        if len(state.expected_client_auth) != EXPECTED_AUTH_BYTES:
            raise ValueError(f"libopaque's expected KE3 is {EXPECTED_AUTH_BYTES} bytes")
        if len(state.record_fingerprint) != RECORD_FINGERPRINT_BYTES:
            raise ValueError(f"a record fingerprint is {RECORD_FINGERPRINT_BYTES} bytes")
        plaintext = _LAYOUT.pack(
            to_microseconds(state.started_at),
            NO_USER if state.user_id is None else state.user_id,
            state.record_fingerprint,
            state.expected_client_auth,
            state.username.encode("ascii"),
        )
        # Bound to no name: the account id and record fingerprint inside say whose login it is.
        return sealed_id(self._sealer.seal(plaintext, username="", purpose=SEALED_LOGIN_STATE))

    def open(self, login_id: str) -> OpenedLogin | None:
        """The state sealed into `login_id`, or None when it is not one this deployment made."""
        sealed = parse_sealed_id(login_id)
        if sealed is None:
            return None
        try:
            plaintext = self._sealer.open(sealed, username="", purpose=SEALED_LOGIN_STATE)
            started_us, user_id, fingerprint, expected_client_auth, username = _LAYOUT.unpack(plaintext)
        except (SealError, struct.error):
            return None
        state = LoginState(
            username=username.rstrip(b"\x00").decode("ascii"),
            user_id=None if user_id == NO_USER else user_id,
            record_fingerprint=fingerprint,
            expected_client_auth=expected_client_auth,
            started_at=from_microseconds(started_us),
        )
        return OpenedLogin(state, pysodium.crypto_generichash(sealed.ciphertext).hex())
