"""TOTP codes (RFC 6238, HMAC-SHA-1): 6 digits over 30-second steps, the current step and one on
either side accepted; the QR code an authenticator app scans. totp.py decides what a code opens."""

from __future__ import annotations

import base64
import hmac
import io
import secrets
from datetime import datetime

import pyotp
import qrcode

TOTP_DIGITS = 6
TOTP_PERIOD_SECONDS = 30
DRIFT_STEPS = 1
_DRIFT_ORDER = sorted(range(-DRIFT_STEPS, DRIFT_STEPS + 1), key=abs)  # 0, -1, 1: the likeliest first
SECRET_BYTES = 20  # 160 bits, as RFC 4226 recommends


def new_secret() -> str:
    """A random secret in base32, as authenticator apps take it."""
    return base64.b32encode(secrets.token_bytes(SECRET_BYTES)).decode("ascii")


def otpauth_uri(secret: str, account: str, issuer: str) -> str:
    """The otpauth:// URI an authenticator app scans (Key Uri Format)."""
    totp = pyotp.TOTP(secret, digits=TOTP_DIGITS, interval=TOTP_PERIOD_SECONDS)
    return totp.provisioning_uri(name=account, issuer_name=issuer)


def step_of(moment: datetime) -> int:
    """The 30-second step a moment falls in (Unix time / 30, rounded down)."""
    return int(moment.timestamp()) // TOTP_PERIOD_SECONDS


def matching_step(secret: str, code: str, now: datetime) -> int | None:
    """The step within the drift window whose code equals `code`, each compared in constant time.

    The current step is tried first and the search stops at a match: a right code from an
    in-sync device costs one HMAC instead of three. Which step matched is no secret (the
    answer says the code was right), and the code itself is only ever compared in constant time.
    """
    if len(code) != TOTP_DIGITS or not (code.isascii() and code.isdigit()):
        return None
    totp = pyotp.TOTP(secret, digits=TOTP_DIGITS, interval=TOTP_PERIOD_SECONDS)
    current = step_of(now)
    for drift in _DRIFT_ORDER:
        if hmac.compare_digest(totp.generate_otp(current + drift), code):
            return current + drift
    return None


def qr_code_data_url(text: str) -> str:
    image = qrcode.make(text, border=2)
    buffer = io.BytesIO()
    image.save(buffer)  # PNG, whichever image factory qrcode chose
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")
