"""Unpadded base64url (RFC 4648 section 5), as every binary value crosses JSON and files here.

Flask-free, so that services, keys and the HTTP layer share it.
"""

from __future__ import annotations

import base64
import binascii
import re

_ALPHABET = re.compile(r"[A-Za-z0-9_-]*")


def encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def decode(text: str) -> bytes:
    """The bytes of unpadded base64url text; binascii.Error for anything else, including other
    characters, which base64.urlsafe_b64decode would silently skip."""
    if not _ALPHABET.fullmatch(text):
        raise binascii.Error("not base64url")
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def is_canonical(text: str) -> bool:
    """Whether `text` is the one spelling of its bytes: unpadded base64url with no spare bits set."""
    try:
        return encode(decode(text)) == text
    except binascii.Error:
        return False
