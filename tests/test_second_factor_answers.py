"""What the second factor's answers tell a person: enrolment opens a session, a code already used
says so and how long until the next, a used recovery code says so, a resting account says how long."""

from __future__ import annotations

from flask.testing import FlaskClient

from cypher.services.clock import ManualClock
from cypher.services.tokens import TokenPurpose
from cypher.wiring import Services
from tests.auth_actions import AuthActions, Enrolled
from tests.opaque_client import OpaqueActions
from tests.test_opaque_api import _error
from tests.test_totp_api import _registered


def test_enrolment_opens_a_session_in_the_enrolling_browser(
    client: FlaskClient, auth: OpaqueActions, actions: AuthActions, services: Services
) -> None:
    bearer = _registered(auth)
    secret = client.post("/totp/setup", json={}, headers=bearer).get_json()["secret"]
    response = client.post("/totp/verify-setup", json={"code": actions.code(secret)}, headers=bearer)
    assert response.status_code == 200
    body = response.get_json()
    assert body["username"] == "bob" and len(body["recoveryCodes"]) == 10
    assert (body["tokenType"], body["expiresIn"], body["refreshExpiresIn"]) == ("Bearer", 900, 2_592_000)
    access = services.tokens.parse(body["accessToken"], TokenPurpose.ACCESS)
    assert access.subject == "bob"
    assert response.headers["Cache-Control"] == "no-store"
    # The cookies hold the session: the browser is logged in without another login.
    verified = client.post("/api/verify-access", json={})
    assert verified.status_code == 200 and verified.get_json()["username"] == "bob"


def test_a_code_used_already_says_so_and_when_the_next_comes(
    client: FlaskClient, actions: AuthActions, user: Enrolled, clock: ManualClock
) -> None:
    code = actions.code(user.secret)
    first = client.post("/totp/verify-login", json={"passAuthToken": actions.pass_auth(user), "code": code})
    assert first.status_code == 200
    replay = client.post("/totp/verify-login", json={"passAuthToken": actions.pass_auth(user), "code": code})
    _error(replay, 401, "invalid_totp")
    wait = 30 - int(clock().timestamp()) % 30
    assert replay.get_json()["error"] == f"This code was already used. Wait for the next one (in {wait} s)."
    assert replay.headers["Retry-After"] == str(wait)
    # A plain wrong code keeps the API's wording and asks for no wait.
    wrong = client.post("/totp/verify-login", json={"passAuthToken": actions.pass_auth(user), "code": "000000"})
    assert wrong.get_json()["error"] == "Invalid TOTP code" and "Retry-After" not in wrong.headers


def test_a_recovery_code_used_already_says_so(actions: AuthActions, user: Enrolled) -> None:
    assert actions.login(user, recoveryCode=user.recovery_codes[0]).status_code == 200
    reused = actions.login(user, recoveryCode=user.recovery_codes[0])
    _error(reused, 401, "invalid_totp")
    assert reused.get_json()["error"] == "This recovery code was already used."
    wrong = actions.login(user, recoveryCode="AAAA-BBBB-CCCC")
    assert wrong.get_json()["error"] == "Invalid recovery code"


def test_a_resting_account_says_how_long_to_wait(
    client: FlaskClient, actions: AuthActions, user: Enrolled, clock: ManualClock
) -> None:
    for _ in range(2):
        token = actions.pass_auth(user)
        for _ in range(5):
            client.post("/totp/verify-login", json={"passAuthToken": token, "code": "000000"})
    clock.advance(60)
    locked = client.post(
        "/totp/verify-login", json={"passAuthToken": actions.pass_auth(user), "code": actions.code(user.secret)}
    )
    _error(locked, 429, "too_many_attempts")
    assert locked.headers["Retry-After"] == str(15 * 60 - 60 - 30)  # actions.code moved the clock 30 s
