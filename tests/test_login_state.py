"""The login state sealed into a loginId: round trip, one length for all, key rotation, refusals."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

import pytest

from cypher.keys import KeyPurpose, KeySet, generate_keyring
from cypher.services.login_state import NO_RECORD, LoginState, LoginStateSealer
from cypher.services.sealing import Sealer

STATE = LoginState(
    username="alice",
    user_id=42,
    record_fingerprint=b"f" * 16,
    expected_client_auth=b"a" * 64,
    started_at=datetime.now(UTC),
)


def _sealer(key_set: KeySet) -> LoginStateSealer:
    return LoginStateSealer(Sealer(key_set))


def test_a_login_state_comes_back_as_it_went_in() -> None:
    sealer = _sealer(generate_keyring()[KeyPurpose.AT_REST])
    login_id = sealer.seal(STATE)
    opened = sealer.open(login_id)
    assert opened is not None and opened.state == STATE
    assert b"a" * 64 not in login_id.encode()  # the expected KE3 is not readable in it
    # A second login with the same state is another loginId, spent apart.
    again = sealer.open(sealer.seal(STATE))
    assert again is not None and again.spent_key != opened.spent_key


def test_every_login_id_has_one_length() -> None:
    sealer = _sealer(generate_keyring()[KeyPurpose.AT_REST])
    unknown = replace(STATE, username="x" * 64, user_id=None, record_fingerprint=NO_RECORD)
    large = replace(STATE, username="abc", user_id=2**62)
    lengths = {len(sealer.seal(state)) for state in (STATE, unknown, large)}
    assert lengths == {284}
    opened = sealer.open(sealer.seal(unknown))
    assert opened is not None and opened.state.user_id is None and opened.state.username == "x" * 64


def test_a_rotated_key_still_opens_until_it_is_removed() -> None:
    old = generate_keyring()[KeyPurpose.AT_REST]
    login_id = _sealer(old).seal(STATE)
    rotated = KeySet(current_key_id="new", keys={**old.keys, "new": bytes(range(32))})
    opened = _sealer(rotated).open(login_id)
    assert opened is not None and opened.state == STATE
    assert _sealer(KeySet(current_key_id="new", keys={"new": bytes(range(32))})).open(login_id) is None


def test_a_state_libopaque_could_not_have_made_is_refused() -> None:
    sealer = _sealer(generate_keyring()[KeyPurpose.AT_REST])
    with pytest.raises(ValueError, match="expected KE3"):
        sealer.seal(replace(STATE, expected_client_auth=b"a" * 63))
    with pytest.raises(ValueError, match="fingerprint"):
        sealer.seal(replace(STATE, record_fingerprint=b"f" * 17))
