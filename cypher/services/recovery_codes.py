"""One-time recovery codes: made at random, shown once, stored only as keyed BLAKE2b hashes."""

from __future__ import annotations

import secrets

import pysodium

from cypher.keys import KeySet

RECOVERY_CODE_COUNT = 10
# Crockford-like: no 0/O, 1/I/L, so a code read aloud or copied by hand survives.
RECOVERY_ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"
RECOVERY_GROUPS, RECOVERY_GROUP_LENGTH = 3, 4  # XXXX-XXXX-XXXX, about 59 bits


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
