"""What a username is, and its canonical form."""

from __future__ import annotations

import re

from cypher.services.errors import InvalidUsername

USERNAME_PATTERN = re.compile(r"[A-Za-z0-9._@-]{3,64}")


def canonical_username(raw: object) -> str:
    """Validate a username and return its canonical (lower-case) form."""
    if not isinstance(raw, str) or not USERNAME_PATTERN.fullmatch(raw):
        raise InvalidUsername()
    return raw.lower()
