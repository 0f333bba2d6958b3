"""OPAQUE over HTTP: each endpoint's success and each of its errors, enumeration, races, restarts."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select

from cypher import create_app
from cypher.services.clock import ManualClock
from cypher.services.tokens import TokenPurpose
from cypher.store.models import RegistrationState, SpentLogin, User
from cypher.wiring import Services
from tests.concurrency import race
from tests.conftest import SERVER_ID
from tests.opaque_client import (
    OpaqueActions,
    b64,
    finish_login,
    finish_registration,
    start_login,
    start_registration,
    unb64,
)
from tests.records import find_user

PASSWORD = "correct horse battery staple"


def row_counts(services: Services) -> dict[str, int]:
    with services.store.engine.connect() as session:
        return {
            model.__tablename__: session.scalar(select(func.count()).select_from(model)) or 0
            for model in (User, RegistrationState, SpentLogin)
        }


def _error(response: Any, status: int, code: str) -> None:
    assert response.status_code == status, response.get_json()
    body = response.get_json()
    assert set(body) == {"error", "code"} and body["code"] == code and body["error"]


@pytest.fixture
def alice(auth: OpaqueActions, activate: Callable[[str], None]) -> str:
    """An active account: registered with OPAQUE, TOTP enrolment done."""
    assert auth.register("alice", PASSWORD).status_code == 201
    activate("alice")
    return "alice"


# -- /register/init ---------------------------------------------------------------------------


def test_register_init_answers_with_canonical_username_and_response(client: FlaskClient, services: Services) -> None:
    start = start_registration(PASSWORD)
    response = client.post(
        "/register/init", json={"username": "Alice.Smith", "registrationRequest": b64(start.request)}
    )
    assert response.status_code == 200
    body = response.get_json()
    assert list(body) == ["username", "serverId", "registrationResponse", "registrationId"]
    assert body["username"] == "alice.smith" and body["serverId"] == SERVER_ID
    assert len(unb64(body["registrationResponse"])) == 64
    # The server's half travels sealed in the registrationId: nothing is stored.
    assert row_counts(services) == {"users": 0, "registration_states": 0, "spent_logins": 0}


@pytest.mark.parametrize("username", ["ab", "a" * 65, "alice smith", "alice/..", "ålice", "alice\n", "", 42, None])
def test_register_init_refuses_invalid_usernames(client: FlaskClient, services: Services, username: object) -> None:
    request = b64(start_registration(PASSWORD).request)
    response = client.post("/register/init", json={"username": username, "registrationRequest": request})
    _error(response, 400, "invalid_username" if isinstance(username, str) and username else "invalid_request")


@pytest.mark.parametrize(
    "request_field",
    [
        b64(b"\x01" * 31),  # too short
        b64(b"\x01" * 33),  # too long
        b64(b"\xff" * 32),  # not a canonical group element
        b64(bytes(32)) + "=",  # padded
        "A" * 42 + "B",  # non-canonical trailing bits
        "*" * 43,  # not base64url
        b64(bytes(32)).replace("A", "+"),  # standard base64 alphabet
    ],
)
def test_register_init_refuses_malformed_requests(client: FlaskClient, request_field: str) -> None:
    response = client.post("/register/init", json={"username": "alice", "registrationRequest": request_field})
    _error(response, 400, "invalid_message")


def test_register_init_refuses_a_taken_name_in_any_case(client: FlaskClient, alice: str) -> None:
    request = b64(start_registration(PASSWORD).request)
    _error(
        client.post("/register/init", json={"username": "ALICE", "registrationRequest": request}), 409, "username_taken"
    )


# -- /register/finish -------------------------------------------------------------------------


def test_register_finish_creates_a_pending_account_and_an_enrolment_token(
    auth: OpaqueActions, services: Services
) -> None:
    response = auth.register("Carol", PASSWORD)
    assert response.status_code == 201
    body = response.get_json()
    assert list(body) == ["username", "enrollmentToken", "expiresIn"]
    assert body["username"] == "carol" and body["expiresIn"] == 300
    claims = services.tokens.parse(body["enrollmentToken"], TokenPurpose.ENROLL)
    assert claims.subject == "carol"
    user = find_user(services.store, "carol")
    assert user is not None and user.status == "pending"
    assert row_counts(services) == {"users": 1, "registration_states": 0, "spent_logins": 0}


class Begun:
    """A registration started at /register/init, with the record its client built."""

    def __init__(self, client: FlaskClient, username: str, password: str = PASSWORD) -> None:
        start = start_registration(password)
        body = client.post(
            "/register/init", json={"username": username, "registrationRequest": b64(start.request)}
        ).get_json()
        self.username: str = body["username"]
        self.registration_id: str = body["registrationId"]
        self.record = finish_registration(start, unb64(body["registrationResponse"]), self.username, body["serverId"])

    def finish_body(self, **changes: str) -> dict[str, str]:
        body = {
            "username": self.username,
            "registrationId": self.registration_id,
            "registrationRecord": b64(self.record),
        }
        return body | changes


def altered(sealed_id: str) -> str:
    """One character of the sealed part changed: other bytes, which no longer authenticate."""
    middle = len(sealed_id) * 3 // 4
    return sealed_id[:middle] + ("B" if sealed_id[middle] != "B" else "C") + sealed_id[middle + 1 :]


def test_register_finish_needs_the_registration_id_of_its_own_init(client: FlaskClient, services: Services) -> None:
    """Nobody but the client that started a registration can finish it, with any record."""
    victim, attacker = Begun(client, "dave"), Begun(client, "dave")
    # The attacker's own registrationId is good only with the record built from its own response.
    stolen_name = attacker.finish_body(registrationRecord=b64(attacker.record))
    for body in [
        victim.finish_body(registrationId=""),
        {"username": "dave", "registrationRecord": b64(attacker.record)},
        victim.finish_body(registrationId=altered(victim.registration_id)),
        victim.finish_body(registrationId=Begun(client, "erin").registration_id),
        victim.finish_body(registrationId="no-dot-at-all"),
        victim.finish_body(registrationId="k1.*not*base64*"),
    ]:
        response = client.post("/register/finish", json=body)
        assert response.status_code in {400, 410}, response.get_json()
        _error(
            response, response.status_code, "invalid_request" if response.status_code == 400 else "registration_expired"
        )
    assert row_counts(services)["users"] == 0
    # The victim finishes; the attacker, who raced for the same name, is told it is taken.
    assert client.post("/register/finish", json=victim.finish_body()).status_code == 201
    _error(client.post("/register/finish", json=stolen_name), 409, "username_taken")
    user = find_user(services.store, "dave")
    assert user is not None and user.status == "pending"
    assert OpaqueActions(client).login("dave", PASSWORD) is not None  # the victim's password opens it


def test_register_finish_after_expiry_is_gone(client: FlaskClient, clock: ManualClock, services: Services) -> None:
    begun = Begun(client, "dave")
    clock.advance(300)
    _error(client.post("/register/finish", json=begun.finish_body()), 410, "registration_expired")
    assert row_counts(services) == {"users": 0, "registration_states": 0, "spent_logins": 0}


def test_register_finish_twice_is_a_conflict(client: FlaskClient) -> None:
    body = Begun(client, "frank").finish_body()
    assert client.post("/register/finish", json=body).status_code == 201
    _error(client.post("/register/finish", json=body), 409, "username_taken")


def test_register_finish_refuses_malformed_records_and_can_be_repeated(client: FlaskClient, services: Services) -> None:
    begun = Begun(client, "grace")
    for bad in [
        b64(begun.record[:-1]),
        b64(begun.record + b"\x00"),
        b64(b"\xff" * 32 + begun.record[32:]),
        b64(bytes(32) + begun.record[32:]),
        "!" * 256,
    ]:
        response = client.post("/register/finish", json=begun.finish_body(registrationRecord=bad))
        _error(response, 400, "invalid_message")
    assert row_counts(services)["users"] == 0
    assert client.post("/register/finish", json=begun.finish_body()).status_code == 201


def test_two_registrations_of_one_name_first_to_finish_wins(client: FlaskClient, services: Services) -> None:
    first, second = Begun(client, "bob", "first password here"), Begun(client, "Bob", "second password here")
    assert client.post("/register/finish", json=second.finish_body()).status_code == 201
    _error(client.post("/register/finish", json=first.finish_body()), 409, "username_taken")
    assert OpaqueActions(client).login("bob", "second password here") is not None


def test_concurrent_register_finish_one_wins(app: Flask, client: FlaskClient, services: Services) -> None:
    body = Begun(client, "heidi").finish_body()
    responses = race(2, lambda: app.test_client().post("/register/finish", json=body))
    assert sorted(response.status_code for response in responses) == [201, 409]
    loser = next(response for response in responses if response.status_code == 409)
    _error(loser, 409, "username_taken")
    assert row_counts(services)["users"] == 1


# -- /login/init ------------------------------------------------------------------------------


def test_login_init_answers_with_a_login_id_and_ke2(client: FlaskClient, alice: str) -> None:
    start = start_login(PASSWORD)
    response = client.post("/login/init", json={"username": "ALICE", "startLoginRequest": b64(start.ke1)})
    assert response.status_code == 200
    body = response.get_json()
    assert list(body) == ["loginId", "username", "serverId", "loginResponse"]
    assert body["username"] == "alice" and body["serverId"] == SERVER_ID
    assert len(unb64(body["loginResponse"])) == 320


@pytest.mark.parametrize(
    ("field", "code"),
    [(b64(b"\x01" * 95), "invalid_message"), (b64(b"\xff" * 96), "invalid_message"), (12, "invalid_request")],
)
def test_login_init_refuses_malformed_ke1(
    client: FlaskClient, services: Services, alice: str, field: object, code: str
) -> None:
    _error(client.post("/login/init", json={"username": "alice", "startLoginRequest": field}), 400, code)
    assert row_counts(services) == {"users": 1, "registration_states": 0, "spent_logins": 0}


def test_login_init_refuses_invalid_usernames(client: FlaskClient) -> None:
    ke1 = b64(start_login(PASSWORD).ke1)
    _error(
        client.post("/login/init", json={"username": "no spaces", "startLoginRequest": ke1}), 400, "invalid_username"
    )


def test_login_init_does_not_tell_unknown_users_apart(client: FlaskClient, alice: str) -> None:
    """RFC 9807 section 10.9: an unknown name gets a response of the same shape and size."""
    ke1 = b64(start_login(PASSWORD).ke1)

    def init(username: str) -> Any:
        return client.post("/login/init", json={"username": username, "startLoginRequest": ke1})

    real, unknown, unknown_again, other_unknown = init("alice"), init("mallory"), init("mallory"), init("trent")
    for response in (real, unknown, unknown_again, other_unknown):
        assert response.status_code == 200
        assert list(response.get_json()) == list(real.get_json())
        assert {key: len(value) for key, value in response.get_json().items() if key != "username"} == {
            key: len(value) for key, value in real.get_json().items() if key != "username"
        }
        assert response.headers["Content-Length"] == str(
            int(real.headers["Content-Length"]) + len(response.get_json()["username"]) - 5
        )

    def evaluated_element(response: Any) -> bytes:
        # The first 32 bytes of KE2 are the OPRF output for the blinded element in KE1.
        return unb64(response.get_json()["loginResponse"])[:32]

    # One fixed OPRF key per unknown name, as a real account has: the same KE1 gives the same
    # evaluation, while another unknown name has another key.
    assert evaluated_element(unknown) == evaluated_element(unknown_again)
    assert evaluated_element(unknown) != evaluated_element(other_unknown)
    assert evaluated_element(real) == evaluated_element(init("alice"))
    # Masked responses differ on every call for real and unknown alike (fresh masking nonce).
    assert real.get_json()["loginResponse"][43:] != init("alice").get_json()["loginResponse"][43:]
    assert unknown.get_json()["loginResponse"][43:] != unknown_again.get_json()["loginResponse"][43:]


def test_unknown_user_login_fails_at_the_client(auth: OpaqueActions, client: FlaskClient) -> None:
    assert auth.login("mallory", PASSWORD) is None
    # A client that sends a KE3 anyway gets the same answer as a wrong password.
    start, init = auth.login_init("mallory", PASSWORD)
    login_id = init.get_json()["loginId"]
    _error(
        client.post("/login/finish", json={"loginId": login_id, "finishLoginRequest": b64(bytes(64))}),
        401,
        "invalid_credentials",
    )


# -- /login/finish ----------------------------------------------------------------------------


def test_login_finish_gives_a_pass_auth_token_and_cookie(auth: OpaqueActions, services: Services, alice: str) -> None:
    response = auth.login("alice", PASSWORD)
    assert response.status_code == 200
    body = response.get_json()
    assert list(body) == ["username", "passAuthToken", "expiresIn"]
    assert body["username"] == "alice" and body["expiresIn"] == 180
    assert services.tokens.parse(body["passAuthToken"], TokenPurpose.PASS_AUTH).subject == "alice"
    cookie = response.headers["Set-Cookie"]
    assert cookie.startswith(f"cypher_pass_auth={body['passAuthToken']};")
    for attribute in ("HttpOnly", "SameSite=Strict", "Path=/totp", "Max-Age=180"):
        assert attribute in cookie
    assert response.headers["Cache-Control"] == "no-store"
    assert row_counts(services)["spent_logins"] == 1  # the loginId, kept until it would expire


def test_wrong_password_fails_at_the_client(auth: OpaqueActions, alice: str) -> None:
    assert auth.login("alice", "correct horse battery stapler") is None


def _login_started(auth: OpaqueActions, username: str = "alice") -> tuple[str, bytes]:
    """Run /login/init and the client's half; returns the login id and a valid KE3."""
    start, init = auth.login_init(username, PASSWORD)
    body = init.get_json()
    ke3 = finish_login(start, unb64(body["loginResponse"]), body["username"], body["serverId"])
    assert ke3 is not None
    return body["loginId"], ke3


def test_a_tampered_ke3_is_refused_and_spends_the_login(auth: OpaqueActions, client: FlaskClient, alice: str) -> None:
    login_id, ke3 = _login_started(auth)
    tampered = bytes([ke3[0] ^ 1]) + ke3[1:]
    _error(
        client.post("/login/finish", json={"loginId": login_id, "finishLoginRequest": b64(tampered)}),
        401,
        "invalid_credentials",
    )
    _error(
        client.post("/login/finish", json={"loginId": login_id, "finishLoginRequest": b64(ke3)}), 410, "login_expired"
    )


def test_a_malformed_ke3_is_refused_without_spending_the_login(
    auth: OpaqueActions, client: FlaskClient, alice: str
) -> None:
    login_id, ke3 = _login_started(auth)
    for bad in [b64(ke3[:-1]), b64(ke3) + "A", "%" * 86, None]:
        response = client.post("/login/finish", json={"loginId": login_id, "finishLoginRequest": bad})
        _error(response, 400, "invalid_request" if bad is None else "invalid_message")
    assert client.post("/login/finish", json={"loginId": login_id, "finishLoginRequest": b64(ke3)}).status_code == 200


def test_a_login_id_works_once(auth: OpaqueActions, client: FlaskClient, alice: str) -> None:
    login_id, ke3 = _login_started(auth)
    body = {"loginId": login_id, "finishLoginRequest": b64(ke3)}
    assert client.post("/login/finish", json=body).status_code == 200
    _error(client.post("/login/finish", json=body), 410, "login_expired")


def test_concurrent_use_of_one_login_id(app: Flask, auth: OpaqueActions, alice: str) -> None:
    login_id, ke3 = _login_started(auth)
    body = {"loginId": login_id, "finishLoginRequest": b64(ke3)}
    responses = race(4, lambda: app.test_client().post("/login/finish", json=body))
    assert sorted(response.status_code for response in responses) == [200, 410, 410, 410]


def test_a_login_expires_after_sixty_seconds(
    auth: OpaqueActions, client: FlaskClient, clock: ManualClock, alice: str
) -> None:
    login_id, ke3 = _login_started(auth)
    clock.advance(60)
    _error(
        client.post("/login/finish", json={"loginId": login_id, "finishLoginRequest": b64(ke3)}), 410, "login_expired"
    )


def test_unknown_login_ids_are_gone(client: FlaskClient) -> None:
    body = {"loginId": "never-issued", "finishLoginRequest": b64(bytes(64))}
    _error(client.post("/login/finish", json=body), 410, "login_expired")
    _error(client.post("/login/finish", json={**body, "loginId": "x" * 500}), 400, "invalid_request")


def test_login_init_stores_nothing(auth: OpaqueActions, services: Services, alice: str) -> None:
    """The login's state travels sealed in the loginId: an unauthenticated request adds no row."""
    for username in ("alice", "mallory"):
        assert auth.login_init(username, PASSWORD)[1].status_code == 200
    assert row_counts(services) == {"users": 1, "registration_states": 0, "spent_logins": 0}


def _respelled(login_id: str) -> str:
    """The same bytes written otherwise: base64's spare bits in the last character set."""
    key_id, _, encoded = login_id.partition(".")
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    spare_bits = {2: 0b1111, 3: 0b11}[len(encoded) % 4]
    last = alphabet[alphabet.index(encoded[-1]) ^ spare_bits]
    return f"{key_id}.{encoded[:-1]}{last}"


def test_altered_login_ids_are_gone(auth: OpaqueActions, client: FlaskClient, services: Services, alice: str) -> None:
    login_id, ke3 = _login_started(auth)
    key_id, _, encoded = login_id.partition(".")
    flipped = encoded[:10] + ("A" if encoded[10] != "A" else "B") + encoded[11:]
    for altered in (
        f"{key_id}.{flipped}",
        f"{key_id}.{encoded[:-4]}",
        f"{key_id}.{encoded}AAAA",
        f"{'0' * len(key_id)}.{encoded}",
        f"{key_id}.{encoded[:20]}*{encoded[21:]}",
        encoded,
    ):
        body = {"loginId": altered, "finishLoginRequest": b64(ke3)}
        _error(client.post("/login/finish", json=body), 410, "login_expired")
    assert row_counts(services)["spent_logins"] == 0  # nothing that fails to open is recorded
    body = {"loginId": login_id, "finishLoginRequest": b64(ke3)}
    assert client.post("/login/finish", json=body).status_code == 200
    # The same sealed bytes spelled another way are the same, spent, login.
    _error(client.post("/login/finish", json={**body, "loginId": _respelled(login_id)}), 410, "login_expired")


def test_a_login_id_sealed_with_other_keys_is_gone(app_config: dict[str, object], tmp_path: Path) -> None:
    """Another deployment's loginId (another at-rest key) does not open here."""
    other = create_app({**app_config, "KEYS_FILE": str(tmp_path / "other-keys.json")})
    mine = create_app(app_config)
    try:
        _, init = OpaqueActions(other.test_client()).login_init("alice", PASSWORD)
        assert init.status_code == 200
        body = {"loginId": init.get_json()["loginId"], "finishLoginRequest": b64(bytes(64))}
        _error(mine.test_client().post("/login/finish", json=body), 410, "login_expired")
    finally:
        for app in (other, mine):
            app.extensions["cypher"].store.dispose()


def test_a_login_of_an_account_deleted_and_registered_again_is_gone(
    auth: OpaqueActions, client: FlaskClient, services: Services, activate: Callable[[str], None], alice: str
) -> None:
    """The loginId names the record that answered KE1; a new account of that name has another."""
    login_id, ke3 = _login_started(auth)
    with services.store.transaction() as tx:
        user = tx.users.by_name("alice")
        assert user is not None and tx.users.delete(user.id)
    assert auth.register("alice", PASSWORD).status_code == 201
    activate("alice")
    _error(
        client.post("/login/finish", json={"loginId": login_id, "finishLoginRequest": b64(ke3)}), 410, "login_expired"
    )
    assert auth.login("alice", PASSWORD).status_code == 200  # the new account's own login works


def test_a_pending_account_gets_no_pass_auth_token(auth: OpaqueActions, client: FlaskClient) -> None:
    assert auth.register("peggy", PASSWORD).status_code == 201
    response = auth.login("peggy", PASSWORD)
    _error(response, 403, "account_pending")
    assert "Set-Cookie" not in response.headers


def test_no_request_mints_a_pass_auth_token_without_ke3(client: FlaskClient, alice: str) -> None:
    """The original minted pass-auth tokens for any username; here only a verified KE3 does."""
    for path in ("/api/pass-auth", "/api/token", "/totp/pass-auth", "/login/token"):
        assert client.post(path, json={"username": "alice"}).status_code in {404, 405}
    _, init = OpaqueActions(client).login_init("alice", PASSWORD)
    response = client.post("/login/finish", json={"loginId": init.get_json()["loginId"]})
    _error(response, 400, "invalid_request")


# -- configuration, restart -------------------------------------------------------------------


def test_opaque_config(client: FlaskClient) -> None:
    response = client.get("/api/opaque-config")
    assert response.status_code == 200
    assert response.get_json() == {
        "serverId": SERVER_ID,
        "keyStretching": {"argon2id-custom": {"iterations": 2, "memory": 65536, "parallelism": 1}},
    }


def test_an_account_survives_a_restart(app: Flask, app_config: dict[str, object], alice: str) -> None:
    app.extensions["cypher"].store.dispose()
    restarted = create_app(app_config)
    try:
        response = OpaqueActions(restarted.test_client()).login("alice", PASSWORD)
        assert response is not None and response.status_code == 200
    finally:
        restarted.extensions["cypher"].store.dispose()


def test_records_are_sealed_at_rest(services: Services, alice: str) -> None:
    with services.store.engine.connect() as session:
        stored = session.scalar(select(User.opaque_record).where(User.username == "alice"))
    assert stored is not None and len(stored) == 24 + 256 + 16  # nonce, libopaque record, tag
    user = find_user(services.store, "alice")
    assert user is not None
    # The server's own long-term key is inside libopaque's record; it must not appear in the clear.
    from cypher.keys import KeyPurpose

    assert services.keyring[KeyPurpose.OPAQUE_SERVER].current not in stored
