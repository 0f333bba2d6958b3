"""A registration's state between /register/init and /register/finish, sealed into the registrationId.

The server's half of the OPRF (skS || kU) and when the registration began travel in the
registrationId, encrypted and authenticated with the at-rest key and bound to the username. Only
the client that called /register/init holds it, so nobody else can finish that registration with
a record of their own, and /register/init writes nothing. Two clients registering one name each
hold their own state; the first to finish creates the account and the other is told the name is
taken.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from datetime import datetime

from cypher.services.clock import from_microseconds, to_microseconds
from cypher.services.opaque_protocol import SERVER_REGISTRATION_SECRET_BYTES
from cypher.services.sealing import Sealer, SealError, parse_sealed_id, sealed_id

SEALED_REGISTRATION_STATE = "registration_state"
# Started (microseconds since the epoch), then the server's registration secret.
_LAYOUT = struct.Struct(f">Q{SERVER_REGISTRATION_SECRET_BYTES}s")


@dataclass(frozen=True)
class RegistrationState:
    server_secret: bytes
    started_at: datetime


class RegistrationStateSealer:
    """Turns a RegistrationState into a registrationId ("<key id>.<base64url>") and back."""

    def __init__(self, sealer: Sealer) -> None:
        self._sealer = sealer

    def seal(self, username: str, state: RegistrationState) -> str:
        plaintext = _LAYOUT.pack(to_microseconds(state.started_at), state.server_secret)
        return sealed_id(self._sealer.seal(plaintext, username=username, purpose=SEALED_REGISTRATION_STATE))

    def open(self, registration_id: str, username: str) -> RegistrationState | None:
        """The state sealed into `registration_id` for `username`, or None when it is not one
        this deployment made for that name."""
        sealed = parse_sealed_id(registration_id)
        if sealed is None:
            return None
        try:
            plaintext = self._sealer.open(sealed, username=username, purpose=SEALED_REGISTRATION_STATE)
            started_us, server_secret = _LAYOUT.unpack(plaintext)
        except (SealError, struct.error):
            return None
        return RegistrationState(server_secret=server_secret, started_at=from_microseconds(started_us))
