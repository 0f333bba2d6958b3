"""The TOTP service's pure parts: step matching with drift, recovery codes and their hashes."""

from __future__ import annotations

from datetime import UTC, datetime

import pyotp
import pytest

from cypher.keys import KeyPurpose, KeySet, generate_keyring
from cypher.services.recovery_codes import RecoveryCodes
from cypher.services.totp_codes import matching_step, qr_code_data_url

SECRET = pyotp.random_base32()
NOW = datetime(2026, 11, 21, 12, 0, 15, tzinfo=UTC)
STEP = int(NOW.timestamp()) // 30


@pytest.mark.parametrize(("offset", "expected"), [(-2, None), (-1, STEP - 1), (0, STEP), (1, STEP + 1), (2, None)])
def test_matching_step_accepts_one_step_of_drift(offset: int, expected: int | None) -> None:
    code = pyotp.TOTP(SECRET).at(NOW.timestamp() + 30 * offset)
    assert matching_step(SECRET, code, NOW) == expected


@pytest.mark.parametrize("code", ["", "12345", "1234567", "12345a", "١٢٣٤٥٦", " 12345", None])
def test_matching_step_refuses_malformed_codes(code: str | None) -> None:
    assert matching_step(SECRET, code or "", NOW) is None


def test_recovery_codes_are_unique_and_hash_under_every_listed_key() -> None:
    at_rest = generate_keyring()[KeyPurpose.AT_REST]
    recovery = RecoveryCodes(at_rest)
    codes = recovery.generate()
    assert len(set(codes)) == 10
    code = codes[0]
    assert recovery.hash(code) == recovery.hash(code.lower().replace("-", " "))
    assert recovery.hash(code) != recovery.hash(codes[1])

    rotated = KeySet(current_key_id="new", keys={**at_rest.keys, "new": bytes(32)})
    after_rotation = RecoveryCodes(rotated)
    # A code stored before the rotation is still found through its old key id.
    assert after_rotation.candidates(code)[at_rest.current_key_id] == recovery.hash(code)
    assert after_rotation.hash(code) != recovery.hash(code)


def test_qr_code_is_a_png_data_url() -> None:
    assert qr_code_data_url("otpauth://totp/Cypher:alice?secret=ABC").startswith("data:image/png;base64,iVBORw0KGgo")
