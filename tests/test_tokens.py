"""PASETO tokens: each purpose only for itself, expiry and issuer checked, tampering refused."""

from __future__ import annotations

import base64
import json
from dataclasses import replace
from datetime import timedelta

import paseto
import pytest
from paseto.keys.symmetric_key import SymmetricKey
from paseto.protocols.v4 import ProtocolVersion4

from cypher.keys import KeyPurpose, KeyRing, KeySet, generate_keyring
from cypher.services.clock import ManualClock
from cypher.services.errors import InvalidToken, TokenExpired
from cypher.services.tokens import TokenPurpose, TokenService

LIFETIMES = {
    TokenPurpose.PASS_AUTH: 180,
    TokenPurpose.ACCESS: 900,
    TokenPurpose.REFRESH: 2_592_000,
    TokenPurpose.ENROLL: 300,
}


def _service(keyring: KeyRing, clock: ManualClock, issuer: str = "cypher.test") -> TokenService:
    return TokenService(keyring, issuer=issuer, lifetimes=LIFETIMES, clock=clock)


def _mint(service: TokenService, purpose: TokenPurpose) -> str:
    session_id = "session-1" if purpose in {TokenPurpose.ACCESS, TokenPurpose.REFRESH} else None
    return service.mint(purpose, "alice", session_id=session_id).token


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def keyring() -> KeyRing:
    return generate_keyring()


@pytest.mark.parametrize("purpose", list(TokenPurpose))
def test_round_trip_carries_every_claim(purpose: TokenPurpose, keyring: KeyRing, clock: ManualClock) -> None:
    service = _service(keyring, clock)
    token = _mint(service, purpose)
    assert token.startswith("v4.local.")
    footer = json.loads(base64.urlsafe_b64decode(token.split(".")[3] + "=="))
    assert footer == {"kid": keyring[KeyPurpose(purpose.value)].current_key_id}
    claims = service.parse(token, purpose)
    assert claims.subject == "alice" and claims.purpose is purpose and claims.issuer == "cypher.test"
    assert (claims.expires_at - claims.issued_at).total_seconds() == LIFETIMES[purpose]
    assert claims.session_id == ("session-1" if purpose in {TokenPurpose.ACCESS, TokenPurpose.REFRESH} else None)


@pytest.mark.parametrize(("minted", "presented_as"), [(a, b) for a in TokenPurpose for b in TokenPurpose if a is not b])
def test_a_token_is_refused_for_every_other_purpose(
    minted: TokenPurpose, presented_as: TokenPurpose, keyring: KeyRing, clock: ManualClock
) -> None:
    service = _service(keyring, clock)
    with pytest.raises(InvalidToken):
        service.parse(_mint(service, minted), presented_as)


def test_a_token_made_with_the_right_key_but_the_wrong_typ_is_refused(keyring: KeyRing, clock: ManualClock) -> None:
    # Even if two purposes shared a key by mistake, the typ claim keeps them apart.
    key_set = keyring[KeyPurpose.ACCESS]
    forged = paseto.create(
        key=SymmetricKey.v4(key_set.current),
        purpose="local",
        footer={"kid": key_set.current_key_id},
        claims={
            "sub": "alice",
            "typ": "refresh",
            "jti": "x",
            "iat": clock().isoformat(),
            "exp": "2999-01-01T00:00:00+00:00",
            "iss": "cypher.test",
            "sid": "s",
        },
    )
    with pytest.raises(InvalidToken):
        _service(keyring, clock).parse(forged, TokenPurpose.ACCESS)


def test_expired_tokens_are_refused(keyring: KeyRing, clock: ManualClock) -> None:
    service = _service(keyring, clock)
    token = _mint(service, TokenPurpose.PASS_AUTH)
    clock.advance(179)
    service.parse(token, TokenPurpose.PASS_AUTH)
    clock.advance(1)
    with pytest.raises(TokenExpired):
        service.parse(token, TokenPurpose.PASS_AUTH)


def test_tampered_tokens_are_refused(keyring: KeyRing, clock: ManualClock) -> None:
    service = _service(keyring, clock)
    token = _mint(service, TokenPurpose.ENROLL)
    header, version, payload, footer = token.split(".")
    flipped = payload[:20] + ("A" if payload[20] != "A" else "B") + payload[21:]
    for bad in [
        f"{header}.{version}.{flipped}.{footer}",
        f"{header}.{version}.{payload}",  # footer removed
        f"{header}.{version}.{payload}.{footer}x",
        token[:-10],
        "v4.public." + token.removeprefix("v4.local."),
        "v3.local." + token.removeprefix("v4.local."),
        "",
        "v4.local.",
        "v4.local." + "A" * 5000,
        token + "." + footer,
    ]:
        with pytest.raises(InvalidToken):
            service.parse(bad, TokenPurpose.ENROLL)


def test_footer_naming_another_key_is_refused(keyring: KeyRing, clock: ManualClock) -> None:
    service = _service(keyring, clock)
    token = _mint(service, TokenPurpose.ENROLL)
    other_kid = base64.urlsafe_b64encode(json.dumps({"kid": "unknown"}).encode()).rstrip(b"=").decode()
    with pytest.raises(InvalidToken):
        service.parse(".".join(token.split(".")[:3] + [other_kid]), TokenPurpose.ENROLL)


def test_tokens_of_a_foreign_key_ring_or_issuer_are_refused(keyring: KeyRing, clock: ManualClock) -> None:
    ours = _service(keyring, clock)
    theirs = _service(generate_keyring(), clock)
    with pytest.raises(InvalidToken):
        ours.parse(_mint(theirs, TokenPurpose.ACCESS), TokenPurpose.ACCESS)
    other_issuer = _service(keyring, clock, issuer="elsewhere.example")
    with pytest.raises(InvalidToken):
        ours.parse(_mint(other_issuer, TokenPurpose.ACCESS), TokenPurpose.ACCESS)


def test_rotated_out_key_verifies_while_listed_and_not_after_removal(keyring: KeyRing, clock: ManualClock) -> None:
    old_token = _mint(_service(keyring, clock), TokenPurpose.ACCESS)
    old_set = keyring[KeyPurpose.ACCESS]
    rotated_set = KeySet(current_key_id="new", keys={**old_set.keys, "new": bytes(range(32))})
    rotated = KeyRing(sets={**keyring.sets, KeyPurpose.ACCESS: rotated_set})
    service = _service(rotated, clock)
    assert service.parse(old_token, TokenPurpose.ACCESS).subject == "alice"
    new_token = _mint(service, TokenPurpose.ACCESS)
    assert json.loads(base64.urlsafe_b64decode(new_token.split(".")[3] + "=="))["kid"] == "new"

    pruned = KeyRing(sets={**keyring.sets, KeyPurpose.ACCESS: replace(rotated_set, keys={"new": bytes(range(32))})})
    with pytest.raises(InvalidToken):
        _service(pruned, clock).parse(old_token, TokenPurpose.ACCESS)
    assert _service(pruned, clock).parse(new_token, TokenPurpose.ACCESS).subject == "alice"


def test_session_bound_purposes_require_a_session(keyring: KeyRing, clock: ManualClock) -> None:
    service = _service(keyring, clock)
    with pytest.raises(ValueError):
        service.mint(TokenPurpose.ACCESS, "alice")
    with pytest.raises(ValueError):
        service.mint(TokenPurpose.PASS_AUTH, "alice", session_id="s")


def _access_claims(clock: ManualClock, token_id: str) -> dict[str, str]:
    """Valid claims of an access token for alice, as Cypher writes them."""
    return {
        "sub": "alice",
        "typ": "access",
        "jti": token_id,
        "iat": clock().isoformat(timespec="seconds"),
        "exp": (clock() + timedelta(seconds=60)).isoformat(timespec="seconds"),
        "iss": "cypher.test",
        "sid": "session-1",
    }


def test_tokens_are_plain_paseto_both_ways(keyring: KeyRing, clock: ManualClock) -> None:
    """TokenService drives paseto's v4 protocol itself; its tokens are the library's in every byte
    that matters: paseto.parse reads ours, and a token from paseto.create (as Cypher minted them
    before) still parses."""
    service = _service(keyring, clock)
    key_set = keyring[KeyPurpose.ACCESS]
    key = SymmetricKey.v4(key_set.current)
    ours = paseto.parse(key=key, purpose="local", token=_mint(service, TokenPurpose.ACCESS), validate=False)
    assert ours["footer"] == {"kid": key_set.current_key_id}
    assert ours["message"]["sub"] == "alice" and ours["message"]["typ"] == "access"
    claims = _access_claims(clock, "from-paseto-create")
    theirs = paseto.create(key=key, purpose="local", claims=claims, footer={"kid": key_set.current_key_id})
    assert service.parse(theirs, TokenPurpose.ACCESS).token_id == "from-paseto-create"


def test_a_footer_written_otherwise_is_refused(keyring: KeyRing, clock: ManualClock) -> None:
    """The key is chosen by the footer exactly as Cypher writes it; the same key id in other JSON
    (spaces here) names no key, although the token is otherwise valid."""
    service = _service(keyring, clock)
    key_set = keyring[KeyPurpose.ACCESS]
    claims = _access_claims(clock, "x")
    spaced_footer = json.dumps({"kid": key_set.current_key_id}).encode()  # {"kid": "..."} with a space
    token = ProtocolVersion4.encrypt(json.dumps(claims).encode(), SymmetricKey.v4(key_set.current), spaced_footer)
    with pytest.raises(InvalidToken):
        service.parse(token.decode(), TokenPurpose.ACCESS)


def _spellings_of(payload: str) -> list[str]:
    """The same bytes written otherwise: padded, with "+/" for "-_", with a spare bit set."""
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    spare_bit = payload[:-1] + alphabet[alphabet.index(payload[-1]) | 1]
    return [payload + "=" * (-len(payload) % 4), payload.replace("-", "+").replace("_", "/"), spare_bit]


def test_only_the_canonical_spelling_of_a_token_is_accepted(keyring: KeyRing, clock: ManualClock) -> None:
    service = _service(keyring, clock)
    # A payload whose length leaves spare bits and that holds "-" or "_": the name's length moves it.
    for length in range(3, 40):
        token = service.mint(TokenPurpose.PASS_AUTH, "a" * length).token
        payload = token.split(".")[2]
        if len(payload) % 4 in (2, 3) and ("-" in payload or "_" in payload):
            break
    else:
        pytest.fail("no token with spare bits and a - or _ in 37 names")
    padded_b64 = payload + "=" * (-len(payload) % 4)
    for spelling in _spellings_of(payload):
        assert spelling != payload
        # Each is the same token to a lenient decoder, as the paseto package is.
        assert base64.b64decode(spelling.replace("-", "+").replace("_", "/") + "==", altchars=None) == (
            base64.urlsafe_b64decode(padded_b64)
        )
        with pytest.raises(InvalidToken):
            service.parse(token.replace(payload, spelling), TokenPurpose.PASS_AUTH)
    assert service.parse(token, TokenPurpose.PASS_AUTH).subject == "a" * length
