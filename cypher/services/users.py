"""What a username is, and its canonical form."""

from __future__ import annotations

import re

from cypher.services.errors import InvalidUsername

USERNAME_LENGTH = 64  # at most; ASCII only, so as many bytes
USERNAME_PATTERN = re.compile(rf"[A-Za-z0-9._@-]{{3,{USERNAME_LENGTH}}}")


def canonical_username(raw: object) -> str:
    """Validate a username and return its canonical (lower-case) form."""
    if not isinstance(raw, str) or not USERNAME_PATTERN.fullmatch(raw):
        raise InvalidUsername()
    return raw.lower()
