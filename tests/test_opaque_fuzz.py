"""Hypothesis properties over the OPAQUE messages at every step the server takes: random bytes of
any length, truncations, extensions and bit flips of real client messages, and strings that are
not base64url at all, sent as the JSON field. Whatever arrives: never a 5xx; a refused message is
a 4xx in the API's error shape; and the refusal leaves the protocol state as it was.

Each property runs on SQLite and on PostgreSQL (the `app` fixture). The example counts are small
because a check that the state survived costs the real client's Argon2id (about 0.3 s here); the
cheap steps (/register/init, /login/init, /account/password/init) get more.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import Any

import opaque
import pysodium
import pytest
from flask import Flask
from flask.testing import FlaskClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cypher.services.clock import ManualClock
from cypher.services.opaque_protocol import KE1_BYTES, KE3_BYTES, REGISTRATION_RECORD_BYTES, REGISTRATION_REQUEST_BYTES
from cypher.wiring import Services
from tests.auth_actions import AuthActions, Enrolled
from tests.opaque_client import b64, finish_login, finish_registration, start_login, start_registration, unb64

PASSWORD = "correct horse battery staple"
NEW_PASSWORD = "a new password for the fuzzed account"


@pytest.fixture
def app(make_app: Callable[..., Flask]) -> Flask:
    """Login regulation lifted: each property sends one name dozens of logins, which would ban it
    (and a banned name's right password looks wrong, by design: tests/test_login_regulation.py)."""
    return make_app(LOGIN_ATTEMPTS_PER_ADDRESS=10**6, LOGIN_ATTEMPTS_PER_NAME=10**6)


def fuzz_settings(max_examples: int) -> Callable[[Any], Any]:
    # No example database: the examples depend on server state that does not outlive the test.
    return settings(
        max_examples=max_examples,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.too_slow],
    )


CHEAP = fuzz_settings(60)  # one request or two, no Argon2id
COSTLY = fuzz_settings(10)  # each example runs the client's Argon2id once or twice


def flip(message: bytes, bits: list[int]) -> bytes:
    flipped = bytearray(message)
    for bit in bits:
        flipped[bit // 8] ^= 1 << (bit % 8)
    return bytes(flipped)


def message_bytes(real: bytes) -> st.SearchStrategy[bytes]:
    """Bytes that are not `real`: random of any length, random of its length, and `real`
    truncated, extended, or with one to four bits flipped."""
    bits = st.lists(st.integers(0, len(real) * 8 - 1), min_size=1, max_size=4, unique=True)
    return st.one_of(
        st.binary(max_size=2 * len(real) + 8),
        st.binary(min_size=len(real), max_size=len(real)),
        st.integers(0, len(real) - 1).map(lambda size: real[:size]),
        st.binary(min_size=1, max_size=16).map(lambda extra: real + extra),
        bits.map(lambda chosen: flip(real, chosen)),
    ).filter(lambda message: message != real)


def message_field(real: bytes) -> st.SearchStrategy[str]:
    """The JSON field: mostly mangled messages as base64url, sometimes any text at all."""
    return st.one_of(message_bytes(real).map(b64), st.text(max_size=2 * len(real)))


def assert_refused(response: Any, status: int, codes: set[str]) -> None:
    """A refusal in the API's error shape, exactly {error, code}."""
    body = response.get_json()
    assert response.status_code == status, body
    assert set(body) == {"error", "code"}, body
    assert body["code"] in codes, body
    assert isinstance(body["error"], str) and body["error"], body


def real_registration_record() -> bytes:
    """A genuine client record (against a throwaway server key): well formed, so the server takes it."""
    start = start_registration(PASSWORD)
    server_private_key = pysodium.crypto_core_ristretto255_scalar_random()
    _secret, response = opaque.CreateRegistrationResponse(start.request, server_private_key)
    return finish_registration(start, response, "someone", "elsewhere")


REAL_REQUEST = start_registration(PASSWORD).request
REAL_KE1 = start_login(PASSWORD).ke1
REAL_RECORD = real_registration_record()
names = (f"fuzz{n}" for n in itertools.count())


class Session:
    """A logged-in session of `user` that hands out a live access token however far the test
    moves the clock (each call refreshes, as a client past its access token's life does)."""

    def __init__(self, client: FlaskClient, actions: AuthActions, user: Enrolled) -> None:
        self._client = client
        self._refresh_token = actions.session(user)["refreshToken"]

    def headers(self) -> dict[str, str]:
        refreshed = self._client.post("/api/refresh-token", json={"refreshToken": self._refresh_token})
        assert refreshed.status_code == 200, refreshed.get_json()
        self._refresh_token = refreshed.get_json()["refreshToken"]
        return {"Authorization": f"Bearer {refreshed.get_json()['accessToken']}"}


def account_exists(services: Services, username: str) -> bool:
    with services.store.transaction(readonly=True) as tx:
        return tx.users.by_name(username) is not None


def test_message_sizes_match_the_server() -> None:
    assert len(REAL_REQUEST) == REGISTRATION_REQUEST_BYTES
    assert len(REAL_KE1) == KE1_BYTES
    assert len(REAL_RECORD) == REGISTRATION_RECORD_BYTES


def test_register_init_takes_any_registration_request_without_harm(client: FlaskClient, services: Services) -> None:
    @CHEAP
    @given(field=message_field(REAL_REQUEST))
    def probe(field: str) -> None:
        username = next(names)
        response = client.post("/register/init", json={"username": username, "registrationRequest": field})
        if response.status_code == 200:  # a valid group element after all: a registration opened
            return
        assert_refused(response, 400, {"invalid_message"})
        assert not account_exists(services, username)
        # The refusal reserved nothing: the name can start a registration at once.
        retried = client.post("/register/init", json={"username": username, "registrationRequest": b64(REAL_REQUEST)})
        assert retried.status_code == 200, retried.get_json()

    probe()


def test_register_finish_refuses_a_mangled_record_and_keeps_the_registration(
    client: FlaskClient, services: Services
) -> None:
    @CHEAP
    @given(field=message_field(REAL_RECORD))
    def probe(field: str) -> None:
        username = next(names)
        init = client.post("/register/init", json={"username": username, "registrationRequest": b64(REAL_REQUEST)})
        assert init.status_code == 200, init.get_json()
        registration_id = init.get_json()["registrationId"]
        response = client.post(
            "/register/finish",
            json={"username": username, "registrationId": registration_id, "registrationRecord": field},
        )
        if response.status_code == 201:
            # 192 bytes whose first 32 are a valid public key: the server cannot tell such a record
            # from a genuine one (only the client's envelope can), so it stores it, as OPAQUE says.
            assert account_exists(services, username)
            return
        assert_refused(response, 400, {"invalid_message"})
        assert not account_exists(services, username)
        finished = client.post(
            "/register/finish",
            json={"username": username, "registrationId": registration_id, "registrationRecord": b64(REAL_RECORD)},
        )
        assert finished.status_code == 201, finished.get_json()

    probe()


def test_a_refused_record_then_the_right_one_gives_an_account_that_logs_in(
    client: FlaskClient, actions: AuthActions
) -> None:
    """The property above finishes with a record of another registration; this runs the whole way."""
    start = start_registration(PASSWORD)
    init = client.post("/register/init", json={"username": "fuzzed", "registrationRequest": b64(start.request)})
    body = init.get_json()
    record = finish_registration(start, unb64(body["registrationResponse"]), body["username"], body["serverId"])

    @COSTLY
    @given(field=message_field(record).filter(lambda field: len(field) != len(b64(record))))
    def probe(field: str) -> None:
        response = client.post(
            "/register/finish",
            json={"username": "fuzzed", "registrationId": body["registrationId"], "registrationRecord": field},
        )
        assert_refused(response, 400, {"invalid_message"})

    probe()
    finished = client.post(
        "/register/finish",
        json={"username": "fuzzed", "registrationId": body["registrationId"], "registrationRecord": b64(record)},
    )
    assert finished.status_code == 201, finished.get_json()
    # The password is right (the client opens its envelope); the account waits for TOTP enrolment.
    login = actions.opaque.login("fuzzed", PASSWORD)
    assert login is not None
    assert_refused(login, 403, {"account_pending"})


def test_login_init_takes_any_ke1_without_harm(client: FlaskClient, actions: AuthActions, user: Enrolled) -> None:
    @CHEAP
    @given(field=message_field(REAL_KE1), known=st.booleans())
    def probe(field: str, known: bool) -> None:
        username = user.username if known else "nobody-here"
        response = client.post("/login/init", json={"username": username, "startLoginRequest": field})
        if response.status_code == 200:  # a valid KE1 after all: the client cannot finish it
            assert set(response.get_json()) == {"loginId", "username", "serverId", "loginResponse"}
            return
        assert_refused(response, 400, {"invalid_message"})

    probe()
    assert actions.pass_auth(user)  # the right password still logs in


def test_login_finish_refuses_a_mangled_ke3_and_never_locks_out_the_right_one(
    client: FlaskClient, actions: AuthActions, user: Enrolled
) -> None:
    @COSTLY
    @given(mangle=st.data())
    def probe(mangle: st.DataObject) -> None:
        start, init = actions.opaque.login_init(user.username, user.password)
        body = init.get_json()
        ke3 = finish_login(start, unb64(body["loginResponse"]), body["username"], body["serverId"])
        assert ke3 is not None and len(ke3) == KE3_BYTES
        field = mangle.draw(message_field(ke3))
        response = client.post("/login/finish", json={"loginId": body["loginId"], "finishLoginRequest": field})
        if response.status_code == 400:
            assert_refused(response, 400, {"invalid_message"})
            # A malformed KE3 leaves the login open: the right one still finishes it.
            right = client.post("/login/finish", json={"loginId": body["loginId"], "finishLoginRequest": b64(ke3)})
            assert right.status_code == 200, right.get_json()
            return
        # A well-formed wrong KE3 spends this login (one guess per /login/init) and nothing more.
        assert_refused(response, 401, {"invalid_credentials"})
        spent = client.post("/login/finish", json={"loginId": body["loginId"], "finishLoginRequest": b64(ke3)})
        assert_refused(spent, 410, {"login_expired"})
        assert actions.pass_auth(user)

    probe()


def test_password_init_takes_any_registration_request_without_harm(
    app: Flask, client: FlaskClient, actions: AuthActions, clock: ManualClock, user: Enrolled
) -> None:
    session = Session(client, actions, user)
    headers = session.headers()

    @CHEAP
    @given(field=message_field(REAL_REQUEST))
    def probe(field: str) -> None:
        nonlocal headers
        response = client.post("/account/password/init", json={"registrationRequest": field}, headers=headers)
        if response.status_code == 200:  # a valid group element after all: a change opened
            clock.advance(app.config["LOGIN_STATE_TTL"] + 1)  # let it lapse, as an abandoned change does
            headers = session.headers()
            return
        assert_refused(response, 400, {"invalid_message"})

    probe()
    # Nothing the refused requests sent holds the account: a real change starts and finishes.
    headers = session.headers()
    start = start_registration(NEW_PASSWORD)
    init = client.post("/account/password/init", json={"registrationRequest": b64(start.request)}, headers=headers)
    assert init.status_code == 200, init.get_json()
    body = init.get_json()
    record = finish_registration(start, unb64(body["registrationResponse"]), body["username"], body["serverId"])
    finish = client.post(
        "/account/password/finish",
        json={"registrationRecord": b64(record), "code": actions.code(user.secret)},
        headers=headers,
    )
    assert finish.status_code == 200, finish.get_json()
    assert actions.opaque.login(user.username, NEW_PASSWORD) is not None


def test_password_finish_refuses_a_mangled_record_and_keeps_the_change_and_the_code(
    client: FlaskClient, actions: AuthActions, user: Enrolled
) -> None:
    session = Session(client, actions, user)

    @COSTLY
    @given(mangle=st.data())
    def probe(mangle: st.DataObject) -> None:
        headers = session.headers()
        start = start_registration(NEW_PASSWORD)
        init = client.post("/account/password/init", json={"registrationRequest": b64(start.request)}, headers=headers)
        assert init.status_code == 200, init.get_json()
        body = init.get_json()
        record = finish_registration(start, unb64(body["registrationResponse"]), body["username"], body["serverId"])
        field = mangle.draw(message_field(record))
        code = actions.code(user.secret)
        response = client.post(
            "/account/password/finish", json={"registrationRecord": field, "code": code}, headers=headers
        )
        if response.status_code == 200:
            return  # well formed (a valid public key first): stored, as OPAQUE cannot tell otherwise
        assert_refused(response, 400, {"invalid_message"})
        # Refused before the code was looked at: the change and the code both still serve.
        right = client.post(
            "/account/password/finish", json={"registrationRecord": b64(record), "code": code}, headers=headers
        )
        assert right.status_code == 200, right.get_json()

    probe()
