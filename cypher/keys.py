"""Key material: load or create the keys file, check its permissions, look keys up by key id.

The keys file is JSON. Each purpose holds one or more keys by key id and names the current one:

    {"version": 1,
     "purposes": {"access": {"current": "k1a2...", "keys": {"k1a2...": "<base64url>"}}, ...}}

New tokens and ciphertexts use the current key; any key still listed keeps verifying and
decrypting what it made, which is how keys rotate. The file is created once, atomically, with
mode 0600: when several gunicorn workers start at the same moment exactly one file wins and every
worker reads that one.
"""

from __future__ import annotations

import binascii
import json
import logging
import os
import secrets
import stat
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

import pysodium

from cypher import base64url

log = logging.getLogger(__name__)

FILE_VERSION = 1
KEY_ID_BYTES = 8


class KeyPurpose(StrEnum):
    """What a key is for. A key never serves two purposes."""

    OPAQUE_SERVER = "opaque_server"  # the long-term OPAQUE private key skS (ristretto255 scalar)
    FAKE_RECORD = "fake_record"  # the secret that derives fake records for unknown usernames
    AT_REST = "at_rest"  # XChaCha20-Poly1305 key for OPAQUE records and TOTP secrets
    PASS_AUTH = "pass_auth"  # PASETO v4.local, one key per token purpose from here on
    ACCESS = "access"
    REFRESH = "refresh"
    ENROLL = "enroll"


class KeyFileError(Exception):
    """The keys file cannot be read, parsed or created."""


@dataclass(frozen=True)
class KeySet:
    """The keys of one purpose: the current key id and every key still accepted."""

    current_key_id: str
    keys: dict[str, bytes]

    @property
    def current(self) -> bytes:
        return self.keys[self.current_key_id]

    def get(self, key_id: str) -> bytes | None:
        return self.keys.get(key_id)


@dataclass(frozen=True)
class KeyRing:
    """Every key of one deployment, by purpose."""

    sets: dict[KeyPurpose, KeySet]

    def __getitem__(self, purpose: KeyPurpose) -> KeySet:
        return self.sets[purpose]


def _new_key(purpose: KeyPurpose) -> bytes:
    if purpose is KeyPurpose.OPAQUE_SERVER:
        # A canonical ristretto255 scalar, as libopaque's own key generation makes.
        return pysodium.crypto_core_ristretto255_scalar_random()
    return secrets.token_bytes(32)


def new_key_id() -> str:
    return secrets.token_hex(KEY_ID_BYTES)


def generate_keyring() -> KeyRing:
    """A fresh key ring with one new key per purpose."""
    sets: dict[KeyPurpose, KeySet] = {}
    for purpose in KeyPurpose:
        key_id = new_key_id()
        sets[purpose] = KeySet(current_key_id=key_id, keys={key_id: _new_key(purpose)})
    return KeyRing(sets=sets)


def dump_keyring(keyring: KeyRing) -> bytes:
    document = {
        "version": FILE_VERSION,
        "purposes": {
            purpose.value: {
                "current": key_set.current_key_id,
                "keys": {key_id: base64url.encode(key) for key_id, key in key_set.keys.items()},
            }
            for purpose, key_set in keyring.sets.items()
        },
    }
    return (json.dumps(document, indent=2, sort_keys=True) + "\n").encode("utf-8")


def parse_keyring(raw: bytes, source: str) -> KeyRing:
    """Parse a keys file; every problem is a KeyFileError that names the file and the fault."""
    try:
        document = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise KeyFileError(f"{source} is not valid JSON: {error}") from None
    if not isinstance(document, dict) or document.get("version") != FILE_VERSION:
        raise KeyFileError(f'{source}: expected an object with "version": {FILE_VERSION}')
    purposes = document.get("purposes")
    if not isinstance(purposes, dict):
        raise KeyFileError(f'{source}: "purposes" must be an object')
    sets: dict[KeyPurpose, KeySet] = {}
    for purpose in KeyPurpose:
        entry = purposes.get(purpose.value)
        if not isinstance(entry, dict):
            raise KeyFileError(f"{source}: the purpose {purpose.value!r} is missing")
        current = entry.get("current")
        encoded_keys = entry.get("keys")
        if not isinstance(encoded_keys, dict) or not encoded_keys:
            raise KeyFileError(f"{source}: {purpose.value}.keys must be a non-empty object")
        keys: dict[str, bytes] = {}
        for key_id, encoded in encoded_keys.items():
            try:
                key = base64url.decode(encoded) if isinstance(encoded, str) else b""
            except (binascii.Error, ValueError):
                key = b""
            if len(key) != 32:
                raise KeyFileError(f"{source}: {purpose.value} key {key_id!r} is not 32 bytes of base64url")
            keys[key_id] = key
        if current not in keys:
            raise KeyFileError(f"{source}: {purpose.value}.current names no listed key")
        sets[purpose] = KeySet(current_key_id=current, keys=keys)
    return KeyRing(sets=sets)


# Token keys rotate: a new current key signs new tokens while the old ones keep verifying until
# pruned. The OPAQUE key and the fake-record secret never rotate (every record, and every unknown
# name's fake record, depends on them); the at-rest key needs the records re-sealed first.
ROTATABLE = (KeyPurpose.PASS_AUTH, KeyPurpose.ACCESS, KeyPurpose.REFRESH, KeyPurpose.ENROLL)


def rotated(keyring: KeyRing, purposes: tuple[KeyPurpose, ...] = ROTATABLE) -> KeyRing:
    """A key ring with a new current key for each purpose; the old keys stay listed."""
    sets = dict(keyring.sets)
    for purpose in purposes:
        key_id = new_key_id()
        sets[purpose] = KeySet(current_key_id=key_id, keys={**sets[purpose].keys, key_id: _new_key(purpose)})
    return KeyRing(sets=sets)


def pruned(keyring: KeyRing, purposes: tuple[KeyPurpose, ...] = ROTATABLE) -> KeyRing:
    """A key ring keeping only the current key of each purpose: older tokens stop verifying."""
    sets = dict(keyring.sets)
    for purpose in purposes:
        current = sets[purpose]
        sets[purpose] = KeySet(current_key_id=current.current_key_id, keys={current.current_key_id: current.current})
    return KeyRing(sets=sets)


def permissions_too_open(path: Path) -> bool:
    """True when anyone but the owner may read or write the keys file."""
    return bool(path.stat().st_mode & (stat.S_IRWXG | stat.S_IRWXO))


def write_keyring_file(path: Path, keyring: KeyRing, *, replace: bool) -> bool:
    """Write the key ring with mode 0600; without replace, an existing file wins (returns False)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(dump_keyring(keyring))
            handle.flush()
            os.fsync(handle.fileno())
        if replace:
            os.replace(temporary, path)
            return True
        try:
            # link() refuses to overwrite: of several workers creating the file at once, one wins.
            os.link(temporary, path)
        except FileExistsError:
            return False
        return True
    finally:
        temporary.unlink(missing_ok=True)


def load_or_create_keyring(path: Path) -> KeyRing:
    """Read the keys file, creating it with fresh keys when it does not exist yet."""
    if not path.exists():
        write_keyring_file(path, generate_keyring(), replace=False)
    try:
        raw = path.read_bytes()
        if permissions_too_open(path):
            log.warning("the keys file %s can be read by others than its owner: chmod 600 it", path)
    except OSError as error:
        raise KeyFileError(f"cannot read the keys file {path}: {error.strerror}") from None
    return parse_keyring(raw, str(path))
