"""What every protocol shares about a user: what a username is, its canonical form, its statuses."""

from __future__ import annotations

import re

from cypher.services.errors import InvalidUsername

USERNAME_PATTERN = re.compile(r"[A-Za-z0-9._@-]{3,64}")

STATUS_PENDING = "pending"  # registered with OPAQUE, TOTP not yet verified
STATUS_ACTIVE = "active"
STATUS_DISABLED = "disabled"  # by an operator: no login, no sessions


def canonical_username(raw: object) -> str:
    """Validate a username and return its canonical (lower-case) form."""
    if not isinstance(raw, str) or not USERNAME_PATTERN.fullmatch(raw):
        raise InvalidUsername()
    return raw.lower()
