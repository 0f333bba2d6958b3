"""Encryption at rest for stored secrets (OPAQUE records, TOTP secrets).

XChaCha20-Poly1305 with a random 24-byte nonce. The associated data binds each ciphertext to the
account and to what it holds, so a record copied onto another user's row, or a TOTP secret moved
into the OPAQUE column, fails to open.
"""

from __future__ import annotations

import binascii

import pysodium

from cypher import base64url
from cypher.domain import SealedValue
from cypher.keys import KeySet

NONCE_BYTES: int = pysodium.crypto_aead_xchacha20poly1305_ietf_NPUBBYTES


class SealError(Exception):
    """A sealed value does not open: wrong key, wrong binding or tampered bytes."""


def _associated_data(username: str, purpose: str) -> bytes:
    return b"cypher-at-rest-v1\x00" + purpose.encode("ascii") + b"\x00" + username.encode("utf-8")


class Sealer:
    """Seals and opens values with the at-rest key set."""

    def __init__(self, key_set: KeySet) -> None:
        self._key_set = key_set

    def seal(self, plaintext: bytes, *, username: str, purpose: str) -> SealedValue:
        nonce = pysodium.randombytes(NONCE_BYTES)
        ciphertext = pysodium.crypto_aead_xchacha20poly1305_ietf_encrypt(
            plaintext, _associated_data(username, purpose), nonce, self._key_set.current
        )
        return SealedValue(key_id=self._key_set.current_key_id, ciphertext=nonce + ciphertext)

    def open(self, sealed: SealedValue, *, username: str, purpose: str) -> bytes:
        key = self._key_set.get(sealed.key_id)
        if key is None:
            raise SealError(f"no at-rest key with id {sealed.key_id!r}")
        nonce, ciphertext = sealed.ciphertext[:NONCE_BYTES], sealed.ciphertext[NONCE_BYTES:]
        try:
            return pysodium.crypto_aead_xchacha20poly1305_ietf_decrypt(
                ciphertext, _associated_data(username, purpose), nonce, key
            )
        except ValueError:
            raise SealError("sealed value failed authentication") from None


def sealed_id(sealed: SealedValue) -> str:
    """A sealed value as text a client holds and hands back: "<key id>.<base64url>"."""
    return sealed.key_id + "." + base64url.encode(sealed.ciphertext)


def parse_sealed_id(text: str) -> SealedValue | None:
    """The sealed value spelled by `text`, or None when it is not one sealed_id could write."""
    key_id, dot, encoded = text.partition(".")
    if not dot:
        return None
    try:
        return SealedValue(key_id, base64url.decode(encoded))
    except binascii.Error:
        return None
