"""What the services and the store both speak of: an account's statuses and a sealed value."""

from __future__ import annotations

from dataclasses import dataclass

STATUS_PENDING = "pending"  # registered with OPAQUE, TOTP not yet verified
STATUS_ACTIVE = "active"
STATUS_DISABLED = "disabled"  # by an operator: no login, no sessions


@dataclass(frozen=True)
class SealedValue:
    """A secret encrypted at rest (services/sealing.py), with the id of the key that sealed it."""

    key_id: str
    ciphertext: bytes  # nonce || ciphertext || tag
