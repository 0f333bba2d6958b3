"""TOTP over HTTP: enrolment with the enrolment token only, the login's second step, recovery codes."""

from __future__ import annotations

import base64
import re
from typing import Any

import pyotp
import pytest
from flask import Flask, Response
from flask.testing import FlaskClient, FlaskCliRunner
from sqlalchemy import select

from cypher import create_app
from cypher.request_auth import set_pass_auth_cookie
from cypher.services.clock import ManualClock
from cypher.services.recovery_codes import RECOVERY_ALPHABET
from cypher.services.tokens import TokenPurpose
from cypher.store.models import User
from cypher.wiring import Services
from tests.auth_actions import ORIGIN, AuthActions, Enrolled
from tests.concurrency import race
from tests.opaque_client import OpaqueActions, b64, start_registration
from tests.records import find_user
from tests.test_opaque_api import PASSWORD, _error

RECOVERY_CODE = re.compile(f"[{RECOVERY_ALPHABET}]{{4}}-[{RECOVERY_ALPHABET}]{{4}}-[{RECOVERY_ALPHABET}]{{4}}")


def _registered(auth: OpaqueActions, username: str = "bob") -> dict[str, str]:
    """A pending account; returns the Authorization header with its enrolment token."""
    response = auth.register(username, PASSWORD)
    assert response.status_code == 201
    return {"Authorization": f"Bearer {response.get_json()['enrollmentToken']}"}


def _stored_secret(services: Services, username: str) -> bytes | None:
    with services.store.engine.connect() as connection:
        return connection.scalar(select(User.totp_secret).where(User.username == username))


# -- enrolment --------------------------------------------------------------------------------


def test_setup_returns_secret_uri_and_qr_code(client: FlaskClient, auth: OpaqueActions, services: Services) -> None:
    response = client.post("/totp/setup", json={}, headers=_registered(auth))
    assert response.status_code == 200
    body = response.get_json()
    assert list(body) == ["secret", "otpauthUri", "qrCode"]
    assert len(base64.b32decode(body["secret"])) == 20  # 160 bits
    assert body["otpauthUri"] == f"otpauth://totp/Cypher:bob?secret={body['secret']}&issuer=Cypher"
    prefix = "data:image/png;base64,"
    assert body["qrCode"].startswith(prefix)
    assert base64.b64decode(body["qrCode"][len(prefix) :]).startswith(b"\x89PNG\r\n\x1a\n")
    stored = _stored_secret(services, "bob")
    assert stored is not None and body["secret"].encode() not in stored  # sealed at rest
    assert response.headers["Cache-Control"] == "no-store"


def test_verify_setup_activates_and_returns_recovery_codes(
    client: FlaskClient, auth: OpaqueActions, actions: AuthActions, services: Services
) -> None:
    bearer = _registered(auth)
    secret = client.post("/totp/setup", json={}, headers=bearer).get_json()["secret"]
    _error(client.post("/totp/verify-setup", json={"code": "000000"}, headers=bearer), 401, "invalid_totp")
    user = find_user(services.store, "bob")
    assert user is not None and user.status == "pending"

    response = client.post("/totp/verify-setup", json={"code": actions.code(secret)}, headers=bearer)
    assert response.status_code == 200
    body = response.get_json()
    assert body["username"] == "bob"
    codes = body["recoveryCodes"]
    assert len(codes) == len(set(codes)) == 10 and all(RECOVERY_CODE.fullmatch(code) for code in codes)
    user = find_user(services.store, "bob")
    assert user is not None and user.status == "active"


def test_verify_setup_before_setup_is_refused(client: FlaskClient, auth: OpaqueActions) -> None:
    _error(client.post("/totp/verify-setup", json={"code": "123456"}, headers=_registered(auth)), 401, "invalid_totp")


def test_enrolment_token_stops_working_once_active(
    client: FlaskClient, auth: OpaqueActions, actions: AuthActions, services: Services
) -> None:
    """Nobody resets an active account's TOTP with an enrolment token (the original allowed it)."""
    bearer = _registered(auth)
    secret = client.post("/totp/setup", json={}, headers=bearer).get_json()["secret"]
    assert client.post("/totp/verify-setup", json={"code": actions.code(secret)}, headers=bearer).status_code == 200
    before = _stored_secret(services, "bob")
    _error(client.post("/totp/setup", json={}, headers=bearer), 401, "invalid_token")
    _error(client.post("/totp/verify-setup", json={"code": actions.code(secret)}, headers=bearer), 401, "invalid_token")
    assert _stored_secret(services, "bob") == before


@pytest.mark.parametrize("which", ["none", "garbage", "access", "pass_auth", "other_user", "expired"])
def test_setup_needs_this_accounts_enrolment_token(
    client: FlaskClient, auth: OpaqueActions, services: Services, clock: ManualClock, user: Enrolled, which: str
) -> None:
    _registered(auth, "bob")
    carol = _registered(auth, "carol")
    headers = {
        "none": {},
        "garbage": {"Authorization": "Bearer v4.local.nonsense"},
        "access": {"Authorization": "Bearer " + services.tokens.mint(TokenPurpose.ACCESS, "bob", session_id="s").token},
        "pass_auth": {"Authorization": "Bearer " + services.tokens.mint(TokenPurpose.PASS_AUTH, "bob").token},
        # carol's token sets carol's secret, never bob's or alice's
        "other_user": carol,
        "expired": carol,
    }[which]
    if which == "expired":
        clock.advance(300)
    before = {name: _stored_secret(services, name) for name in ("alice", "bob")}
    response = client.post("/totp/setup", json={}, headers=headers)
    if which == "other_user":
        assert response.status_code == 200
        assert _stored_secret(services, "carol") is not None
    else:
        _error(response, 401, "invalid_token")
    assert {name: _stored_secret(services, name) for name in ("alice", "bob")} == before


def test_an_enrolment_token_from_an_expired_account_does_not_enrol_its_successor(
    app_config: dict[str, object], clock: ManualClock
) -> None:
    # With an enrolment token that outlives the pending account, the name may be registered anew
    # while the old token is still unexpired: it must not enrol the new account.
    app = create_app({**app_config, "ENROLL_TTL": 900})
    try:
        auth = OpaqueActions(app.test_client())
        old_bearer = _registered(auth, "dave")
        clock.advance(301)
        # Past its pending time the account cannot be enrolled, swept or not ...
        _error(app.test_client().post("/totp/setup", json={}, headers=old_bearer), 401, "invalid_token")
        _registered(auth, "dave")  # ... and once its name is taken anew, the old token is no key to it
        _error(app.test_client().post("/totp/setup", json={}, headers=old_bearer), 401, "invalid_token")
    finally:
        app.extensions["cypher"].store.dispose()


def test_an_unverified_account_expires_and_frees_its_name(
    client: FlaskClient, auth: OpaqueActions, clock: ManualClock, services: Services, runner: FlaskCliRunner
) -> None:
    _registered(auth, "erin")
    request = b64(start_registration(PASSWORD).request)
    _error(
        client.post("/register/init", json={"username": "erin", "registrationRequest": request}), 409, "username_taken"
    )
    clock.advance(301)
    assert auth.register("erin", PASSWORD).status_code == 201  # swept by /register/init
    clock.advance(301)
    result = runner.invoke(args=["purge"])
    assert result.exit_code == 0, result.output
    assert "pending_accounts: 1" in result.output
    assert find_user(services.store, "erin") is None


# -- login ------------------------------------------------------------------------------------


def _cookies(response: Any) -> dict[str, str]:
    return {header.split("=", 1)[0]: header for header in response.headers.getlist("Set-Cookie")}


def test_verify_login_opens_a_session(actions: AuthActions, user: Enrolled, services: Services) -> None:
    response = actions.login(user)
    assert response.status_code == 200
    body = response.get_json()
    assert list(body) == ["username", "accessToken", "refreshToken", "tokenType", "expiresIn", "refreshExpiresIn"]
    assert (body["username"], body["tokenType"], body["expiresIn"], body["refreshExpiresIn"]) == (
        "alice",
        "Bearer",
        900,
        2_592_000,
    )
    access = services.tokens.parse(body["accessToken"], TokenPurpose.ACCESS)
    refresh = services.tokens.parse(body["refreshToken"], TokenPurpose.REFRESH)
    assert access.session_id == refresh.session_id is not None
    cookies = _cookies(response)
    assert cookies["cypher_access"].startswith(f"cypher_access={body['accessToken']};")
    assert "Path=/;" in cookies["cypher_access"] and "Max-Age=900" in cookies["cypher_access"]
    assert "Path=/api/refresh-token" in cookies["cypher_refresh"]
    for cookie in cookies.values():
        assert "HttpOnly" in cookie and "SameSite=Strict" in cookie
    assert "Max-Age=0" in cookies["cypher_pass_auth"]  # the pass-auth cookie is cleared
    assert response.headers["Cache-Control"] == "no-store"


def test_session_cookies_read_back_as_set(
    app: Flask, actions: AuthActions, user: Enrolled, client: FlaskClient
) -> None:
    """Read back by werkzeug's cookie jar, as a browser would: each value exactly the token, each
    attribute as written (Secure ones, in production: tests/test_cookies.py). A value that is not
    a token is never written."""
    body = actions.login(user).get_json()
    access = client.get_cookie("cypher_access", path="/")
    refresh = client.get_cookie("cypher_refresh", path="/api/refresh-token")
    assert access is not None and refresh is not None
    assert (access.value, access.max_age, access.http_only, access.same_site) == (
        body["accessToken"],
        900,
        True,
        "Strict",
    )
    assert (refresh.value, refresh.max_age) == (body["refreshToken"], 2_592_000)
    assert not access.secure and not refresh.secure  # COOKIE_SECURE is off for the tests' plain HTTP
    with app.test_request_context(), pytest.raises(ValueError):
        set_pass_auth_cookie(Response(), "v4.local.x; Domain=evil.example", 180)


def test_pass_auth_from_the_cookie_needs_our_origin(client: FlaskClient, actions: AuthActions, user: Enrolled) -> None:
    actions.pass_auth(user)  # the client now holds the cypher_pass_auth cookie
    code = actions.code(user.secret)
    _error(client.post("/totp/verify-login", json={"code": code}), 403, "origin_rejected")
    _error(
        client.post("/totp/verify-login", json={"code": code}, headers={"Origin": "https://evil.example"}),
        403,
        "origin_rejected",
    )
    assert client.post("/totp/verify-login", json={"code": code}, headers={"Origin": ORIGIN}).status_code == 200


def test_wrong_and_replayed_codes_are_refused(client: FlaskClient, actions: AuthActions, user: Enrolled) -> None:
    token = actions.pass_auth(user)
    wrong = client.post("/totp/verify-login", json={"passAuthToken": token, "code": "12345x"})
    _error(wrong, 401, "invalid_totp")
    assert wrong.get_json()["error"] == "Invalid TOTP code"
    code = actions.code(user.secret)
    assert client.post("/totp/verify-login", json={"passAuthToken": token, "code": code}).status_code == 200
    # The same code again, with a new pass-auth token, within the same 30 s step: a replay.
    replay = client.post("/totp/verify-login", json={"passAuthToken": actions.pass_auth(user), "code": code})
    _error(replay, 401, "invalid_totp")


def test_one_step_of_drift_either_way(
    client: FlaskClient, actions: AuthActions, user: Enrolled, clock: ManualClock
) -> None:
    totp = pyotp.TOTP(user.secret)
    clock.advance(300)
    for offset, expected in [(-60, 401), (-30, 200), (30, 200), (90, 401)]:
        clock.advance(120)  # past every step used so far
        code = totp.at(clock().timestamp() + offset)
        response = client.post("/totp/verify-login", json={"passAuthToken": actions.pass_auth(user), "code": code})
        assert response.status_code == expected, (offset, response.get_json())


def test_five_wrong_codes_burn_the_pass_auth_token(client: FlaskClient, actions: AuthActions, user: Enrolled) -> None:
    token = actions.pass_auth(user)
    for _ in range(5):
        _error(client.post("/totp/verify-login", json={"passAuthToken": token, "code": "000000"}), 401, "invalid_totp")
    right = client.post("/totp/verify-login", json={"passAuthToken": token, "code": actions.code(user.secret)})
    _error(right, 429, "too_many_attempts")
    # A new password step gets a new allowance.
    assert actions.login(user).status_code == 200


def test_concurrent_guesses_stay_within_five(app: Flask, actions: AuthActions, user: Enrolled) -> None:
    token = actions.pass_auth(user)
    responses = race(
        12, lambda: app.test_client().post("/totp/verify-login", json={"passAuthToken": token, "code": "000000"})
    )
    assert sorted(response.status_code for response in responses) == [401] * 5 + [429] * 7


def test_a_pass_auth_token_opens_one_session(client: FlaskClient, actions: AuthActions, user: Enrolled) -> None:
    token = actions.pass_auth(user)
    assert (
        client.post("/totp/verify-login", json={"passAuthToken": token, "code": actions.code(user.secret)}).status_code
        == 200
    )
    again = client.post("/totp/verify-login", json={"passAuthToken": token, "code": actions.code(user.secret)})
    _error(again, 401, "pass_auth_expired")


def test_an_expired_or_missing_pass_auth_token(
    client: FlaskClient, actions: AuthActions, user: Enrolled, clock: ManualClock, services: Services
) -> None:
    token = actions.pass_auth(user)
    clock.advance(180)
    expired = client.post("/totp/verify-login", json={"passAuthToken": token, "code": "123456"})
    _error(expired, 401, "pass_auth_expired")
    assert expired.get_json()["error"] == "Password authentication token not found or expired"
    client.delete_cookie("cypher_pass_auth", path="/totp")
    _error(client.post("/totp/verify-login", json={"code": "123456"}), 401, "pass_auth_expired")
    enroll = services.tokens.mint(TokenPurpose.ENROLL, "alice").token
    for wrong in (enroll, "v4.local." + "A" * 5000):
        response = client.post("/totp/verify-login", json={"passAuthToken": wrong, "code": "123456"})
        _error(response, 401, "pass_auth_expired")


def test_a_recovery_code_works_once(client: FlaskClient, actions: AuthActions, user: Enrolled) -> None:
    first, second = user.recovery_codes[:2]
    assert actions.login(user, recoveryCode=first).status_code == 200
    reused = actions.login(user, recoveryCode=first)
    _error(reused, 401, "invalid_totp")
    # Case and dashes do not matter.
    assert actions.login(user, recoveryCode=second.lower().replace("-", "")).status_code == 200


@pytest.mark.parametrize(
    "body", [{}, {"code": "123456", "recoveryCode": "AAAA-BBBB-CCCC"}, {"code": 123456}, {"code": "1" * 17}]
)
def test_verify_login_needs_exactly_one_code(
    client: FlaskClient, actions: AuthActions, user: Enrolled, body: dict[str, object]
) -> None:
    _error(
        client.post("/totp/verify-login", json={"passAuthToken": actions.pass_auth(user), **body}),
        400,
        "invalid_request",
    )


def test_wrong_codes_lock_the_account_whatever_the_token(
    client: FlaskClient, actions: AuthActions, user: Enrolled, clock: ManualClock
) -> None:
    """Ten wrong codes in a row, spread over fresh pass-auth tokens, rest the second factor."""
    for _ in range(2):
        token = actions.pass_auth(user)
        for _ in range(5):
            wrong = client.post("/totp/verify-login", json={"passAuthToken": token, "code": "000000"})
            _error(wrong, 401, "invalid_totp")
    locked = client.post(
        "/totp/verify-login", json={"passAuthToken": actions.pass_auth(user), "code": actions.code(user.secret)}
    )
    _error(locked, 429, "too_many_attempts")
    assert "15 minutes" in locked.get_json()["error"]
    recovery = client.post(
        "/totp/verify-login", json={"passAuthToken": actions.pass_auth(user), "recoveryCode": user.recovery_codes[0]}
    )
    _error(recovery, 429, "too_many_attempts")
    clock.advance(15 * 60)
    assert actions.login(user).status_code == 200
    # A success clears the count: nine wrong codes later the account is still open.
    for _ in range(9):
        _error(actions.login(user, code="000000"), 401, "invalid_totp")
    assert actions.login(user).status_code == 200


def test_an_enrolment_verifies_against_the_newest_secret(
    client: FlaskClient, auth: OpaqueActions, actions: AuthActions, services: Services
) -> None:
    bearer = _registered(auth)
    first = client.post("/totp/setup", json={}, headers=bearer).get_json()["secret"]
    second = client.post("/totp/setup", json={}, headers=bearer).get_json()["secret"]  # as from a second tab
    _error(client.post("/totp/verify-setup", json={"code": actions.code(first)}, headers=bearer), 401, "invalid_totp")
    assert find_user(services.store, "bob").status == "pending"  # type: ignore[union-attr]
    verified = client.post("/totp/verify-setup", json={"code": actions.code(second)}, headers=bearer)
    assert verified.status_code == 200, verified.get_json()
    assert find_user(services.store, "bob").status == "active"  # type: ignore[union-attr]
