"""The server half of OPAQUE (RFC 9807) on the system libopaque, through its `opaque` binding.

Message sizes are those of ristretto255 + SHA-512 + 3DH, and match @serenity-kit/opaque one to
one. The server has one long-term key skS, so every account shares the server's public key.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import ParamSpec, TypeVar

import opaque
import pysodium

from cypher.services.errors import InvalidMessage

REGISTRATION_REQUEST_BYTES = 32
REGISTRATION_RESPONSE_BYTES = 64
REGISTRATION_RECORD_BYTES = 192
KE1_BYTES = 96
KE2_BYTES = 320
KE3_BYTES = 64
USER_RECORD_BYTES = 256  # libopaque's stored record: kU || skS || registration record
SERVER_REGISTRATION_SECRET_BYTES = 64  # skS || kU, held between the two registration steps
EXPECTED_AUTH_BYTES = 64

IDENTITY = bytes(32)  # the encoding of ristretto255's identity element

# An empty context, as @serenity-kit/opaque uses.
CONTEXT = b""

P = ParamSpec("P")
R = TypeVar("R")


class OpaqueProtocolError(Exception):
    """libopaque refused a message: it is malformed, not on the curve, or fails to verify."""


@dataclass(frozen=True)
class LoginResponse:
    ke2: bytes
    expected_client_auth: bytes  # what KE3 must equal; secret until the client sends KE3


def _derive(secret: bytes, label: bytes, username: str, size: int) -> bytes:
    # BLAKE2b keyed with the fake-record secret: deterministic per username, unpredictable without it.
    return pysodium.crypto_generichash(label + b"\x00" + username.encode("utf-8"), secret, size)


class OpaqueProtocol:
    def __init__(self, server_id: str, server_private_key: bytes, fake_record_secret: bytes) -> None:
        if len(server_private_key) != 32 or len(fake_record_secret) != 32:
            raise ValueError("OPAQUE keys are 32 bytes")
        self.server_id = server_id
        self._server_private_key = server_private_key
        self._fake_record_secret = fake_record_secret

    def _ids(self, username: str) -> opaque.Ids:
        return opaque.Ids(username.encode("utf-8"), self.server_id.encode("utf-8"))

    def registration_response(self, request: bytes) -> tuple[bytes, bytes]:
        """Evaluate the OPRF on the blinded request: (server secret to keep, response to send)."""
        _require_length(request, REGISTRATION_REQUEST_BYTES, "registrationRequest")
        try:
            server_secret, response = opaque.CreateRegistrationResponse(request, self._server_private_key)
        except ValueError:
            raise OpaqueProtocolError("registrationRequest is not a valid group element") from None
        return server_secret, response

    def user_record(self, server_secret: bytes, registration_record: bytes) -> bytes:
        """Combine the kept server secret with the client's record into the 256-byte user record."""
        _require_length(server_secret, SERVER_REGISTRATION_SECRET_BYTES, "server secret")
        self.check_registration_record(registration_record)
        return opaque.StoreUserRecord(server_secret, registration_record)

    @staticmethod
    def check_registration_record(registration_record: bytes) -> None:
        """Refuse a record of the wrong size or whose client public key is not a group element."""
        _require_length(registration_record, REGISTRATION_RECORD_BYTES, "registrationRecord")
        client_public_key = registration_record[:32]
        # libsodium accepts the identity as a valid encoding; as a public key it is worthless.
        if client_public_key == IDENTITY or not pysodium.crypto_core_ristretto255_is_valid_point(client_public_key):
            raise OpaqueProtocolError("registrationRecord holds no valid client public key")

    def login_response(self, ke1: bytes, user_record: bytes, username: str) -> LoginResponse:
        _require_length(ke1, KE1_BYTES, "startLoginRequest")
        _require_length(user_record, USER_RECORD_BYTES, "user record")
        try:
            ke2, _session_key, expected_auth = opaque.CreateCredentialResponse(
                ke1, user_record, self._ids(username), CONTEXT
            )
        except ValueError:
            raise OpaqueProtocolError("startLoginRequest is not a valid KE1") from None
        return LoginResponse(ke2=ke2, expected_client_auth=expected_auth)

    @staticmethod
    def client_authenticated(expected_client_auth: bytes, ke3: bytes) -> bool:
        """Check KE3 in constant time (libopaque compares with sodium_memcmp)."""
        _require_length(ke3, KE3_BYTES, "finishLoginRequest")
        try:
            opaque.UserAuth(expected_client_auth, ke3)
        except ValueError:
            return False
        return True

    def fake_user_record(self, username: str) -> bytes:
        """A valid-looking record for a username with no account (RFC 9807 section 10.9).

        Deterministic per username, so repeated logins see one fixed OPRF key and one client
        public key, just as for a real account; the login then fails at the client.
        """
        secret = self._fake_record_secret
        oprf_key = pysodium.crypto_core_ristretto255_scalar_reduce(_derive(secret, b"oprf-key", username, 64))
        client_private_key = pysodium.crypto_core_ristretto255_scalar_reduce(
            _derive(secret, b"client-private-key", username, 64)
        )
        client_public_key = pysodium.crypto_scalarmult_ristretto255_base(client_private_key)
        masking_key = _derive(secret, b"masking-key", username, 64)
        envelope_nonce = _derive(secret, b"envelope-nonce", username, 32)
        envelope_auth_tag = _derive(secret, b"envelope-auth-tag", username, 64)
        return (
            oprf_key + self._server_private_key + client_public_key + masking_key + envelope_nonce + envelope_auth_tag
        )


def _require_length(message: bytes, expected: int, name: str) -> None:
    if len(message) != expected:
        raise OpaqueProtocolError(f"{name} must be {expected} bytes, not {len(message)}")


def protocol_call(function: Callable[P, R], *arguments: P.args, **keywords: P.kwargs) -> R:
    """Call into libopaque, turning its refusals into the API's invalid_message."""
    try:
        return function(*arguments, **keywords)
    except OpaqueProtocolError as error:
        raise InvalidMessage(str(error)) from None
