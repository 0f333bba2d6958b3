"""Account actions over HTTP (API.md: Account): password change, new recovery codes, deletion.

Each action needs a live session (bearer token, or the access cookie with Cypher's own Origin)
and a fresh TOTP code. Every OPAQUE login or registration costs about 0.15 s of client-side
Argon2, so each test logs in as few times as it can; `actions.code()` moves the test clock to a
fresh 30 s step, so codes are never replayed by accident.
"""

from __future__ import annotations

from typing import Any

import pyotp
import pytest
from flask.testing import FlaskClient
from sqlalchemy import func, select

from cypher.services.clock import ManualClock
from cypher.store.models import RecoveryCode, RegistrationState, User, UserSession
from cypher.wiring import Services
from tests.auth_actions import ORIGIN, AuthActions, Enrolled
from tests.conftest import SERVER_ID
from tests.opaque_client import RegistrationStart, b64, finish_login, finish_registration, start_registration, unb64
from tests.test_opaque_api import _error

NEW_PASSWORD = "purple monkey dishwasher"
EVIL_ORIGIN = "https://evil.example"


# -- helpers ----------------------------------------------------------------------------------


def bearer(tokens: dict[str, Any]) -> dict[str, str]:
    return {"Authorization": f"Bearer {tokens['accessToken']}"}


def wrong_code(user: Enrolled, clock: ManualClock) -> str:
    """Six digits that match no step of the current drift window."""
    totp = pyotp.TOTP(user.secret)
    window = {totp.at(clock().timestamp() + offset) for offset in (-30, 0, 30)}
    return next(code for code in ("000000", "111111", "222222", "333333") if code not in window)


def next_code(user: Enrolled, clock: ManualClock) -> str:
    """The next step's code, accepted within the drift window, without moving the clock (an
    open password change lasts only 60 s, two `actions.code()` calls)."""
    return pyotp.TOTP(user.secret).at(clock().timestamp() + 30)


def password_init(client: FlaskClient, password: str, headers: dict[str, str]) -> tuple[RegistrationStart, Any]:
    start = start_registration(password)
    response = client.post("/account/password/init", json={"registrationRequest": b64(start.request)}, headers=headers)
    return start, response


def record_for(start: RegistrationStart, init: Any) -> str:
    """The client's registration record, for the username and serverId that init returned."""
    assert init.status_code == 200, init.get_json()
    body = init.get_json()
    return b64(finish_registration(start, unb64(body["registrationResponse"]), body["username"], body["serverId"]))


def password_finish(client: FlaskClient, record: str, code: str, headers: dict[str, str]) -> Any:
    return client.post("/account/password/finish", json={"registrationRecord": record, "code": code}, headers=headers)


def verifies(client: FlaskClient, tokens: dict[str, Any]) -> bool:
    """Whether the session's access token is still accepted (and the refusal is well-formed)."""
    response = client.post("/api/verify-access", headers=bearer(tokens))
    body = response.get_json()
    if response.status_code == 200:
        return bool(body["valid"])
    assert response.status_code == 401 and body["valid"] is False and body["code"] == "invalid_token", body
    return False


def password_works(actions: AuthActions, user: Enrolled, password: str) -> bool:
    """OPAQUE login: False when the client finds the password wrong (or the user unknown)."""
    response = actions.opaque.login(user.username, password)
    if response is None:
        return False
    assert response.status_code == 200, response.get_json()
    return True


def opaque_record(services: Services, username: str = "alice") -> bytes | None:
    with services.store.engine.connect() as connection:
        return connection.scalar(select(User.opaque_record).where(User.username == username))


def recovery_hashes(services: Services) -> set[bytes]:
    with services.store.engine.connect() as connection:
        return set(connection.scalars(select(RecoveryCode.code_hash)))


def row_counts(services: Services) -> dict[str, int]:
    """Rows per table; the tests that use it have one account, so every row is alice's."""
    with services.store.engine.connect() as connection:
        return {
            model.__tablename__: connection.scalar(select(func.count()).select_from(model)) or 0
            for model in (User, UserSession, RecoveryCode, RegistrationState)
        }


# -- password change --------------------------------------------------------------------------


def test_password_change_replaces_the_password_and_revokes_other_sessions(
    actions: AuthActions, client: FlaskClient, user: Enrolled
) -> None:
    other = actions.session(user)
    mine = actions.session(user)
    start, init = password_init(client, NEW_PASSWORD, bearer(mine))
    assert init.status_code == 200, init.get_json()
    assert set(init.get_json()) == {"username", "serverId", "registrationResponse"}
    assert init.get_json()["username"] == "alice" and init.get_json()["serverId"] == SERVER_ID

    response = password_finish(client, record_for(start, init), actions.code(user.secret), bearer(mine))
    assert response.status_code == 200, response.get_json()
    assert response.get_json() == {"username": "alice", "revokedSessions": 1}

    assert verifies(client, mine) and not verifies(client, other)
    _error(client.post("/api/refresh-token", json={"refreshToken": other["refreshToken"]}), 401, "invalid_token")
    assert not password_works(actions, user, user.password)
    assert password_works(actions, user, NEW_PASSWORD)


def test_password_change_with_a_wrong_code_changes_nothing(
    actions: AuthActions, client: FlaskClient, clock: ManualClock, services: Services, user: Enrolled
) -> None:
    headers = bearer(actions.session(user))
    before = opaque_record(services)
    start, init = password_init(client, NEW_PASSWORD, headers)
    clock.advance(30)
    _error(password_finish(client, record_for(start, init), wrong_code(user, clock), headers), 401, "invalid_totp")
    assert opaque_record(services) == before
    assert password_works(actions, user, user.password)


def test_password_change_refuses_a_replayed_code(
    actions: AuthActions, client: FlaskClient, services: Services, user: Enrolled
) -> None:
    headers = bearer(actions.session(user))
    code = actions.code(user.secret)
    start, init = password_init(client, NEW_PASSWORD, headers)
    assert password_finish(client, record_for(start, init), code, headers).status_code == 200
    changed = opaque_record(services)

    start, init = password_init(client, "another new password", headers)
    _error(password_finish(client, record_for(start, init), code, headers), 401, "invalid_totp")
    assert opaque_record(services) == changed


def test_password_finish_without_an_open_change_is_gone(
    actions: AuthActions, client: FlaskClient, clock: ManualClock, services: Services, user: Enrolled
) -> None:
    headers = bearer(actions.session(user))
    before = opaque_record(services)
    # A well-formed record from a registration of another name: alice has no change open.
    start = start_registration(NEW_PASSWORD)
    other = client.post("/register/init", json={"username": "bob", "registrationRequest": b64(start.request)})
    response = password_finish(client, record_for(start, other), actions.code(user.secret), headers)
    _error(response, 410, "registration_expired")

    # An open change lasts 60 s.
    start, init = password_init(client, NEW_PASSWORD, headers)
    clock.advance(61)
    response = password_finish(client, record_for(start, init), actions.code(user.secret), headers)
    _error(response, 410, "registration_expired")
    assert opaque_record(services) == before


def test_one_password_change_at_a_time(
    actions: AuthActions, client: FlaskClient, clock: ManualClock, user: Enrolled
) -> None:
    headers = bearer(actions.session(user))
    assert password_init(client, NEW_PASSWORD, headers)[1].status_code == 200
    _error(password_init(client, "a second new password", headers)[1], 409, "password_change_in_progress")

    clock.advance(61)
    start, init = password_init(client, NEW_PASSWORD, headers)
    assert init.status_code == 200, init.get_json()
    assert password_finish(client, record_for(start, init), actions.code(user.secret), headers).status_code == 200


def test_password_change_refuses_malformed_messages(
    actions: AuthActions, client: FlaskClient, clock: ManualClock, services: Services, user: Enrolled
) -> None:
    headers = bearer(actions.session(user))
    for bad in [b64(b"\x01" * 31), b64(b"\xff" * 32), "*" * 43, b64(bytes(32)) + "="]:
        response = client.post("/account/password/init", json={"registrationRequest": bad}, headers=headers)
        _error(response, 400, "invalid_message")
    assert row_counts(services)["registration_states"] == 0

    before = opaque_record(services)
    start, init = password_init(client, NEW_PASSWORD, headers)  # not refused as "in progress"
    record = unb64(record_for(start, init))
    for bad in [b64(record[:-1]), b64(record + b"\x00"), b64(b"\xff" * 32 + record[32:]), "!" * 256]:
        _error(password_finish(client, bad, next_code(user, clock), headers), 400, "invalid_message")
    assert opaque_record(services) == before
    # The open change, and the code sent with the malformed records, survive them.
    assert password_finish(client, b64(record), actions.code(user.secret), headers).status_code == 200


def test_account_actions_need_a_session(client: FlaskClient) -> None:
    request = b64(start_registration(NEW_PASSWORD).request)
    for headers in ({}, {"Authorization": "Bearer v4.local.not-a-token"}):
        init = client.post("/account/password/init", json={"registrationRequest": request}, headers=headers)
        _error(init, 401, "invalid_token")
        response = password_finish(client, b64(bytes(192)), "123456", headers)
        _error(response, 401, "invalid_token")
        _error(client.post("/account/recovery-codes", json={"code": "123456"}, headers=headers), 401, "invalid_token")
        _error(client.delete("/account", json={"code": "123456"}, headers=headers), 401, "invalid_token")


# -- recovery codes ---------------------------------------------------------------------------


def test_new_recovery_codes_replace_the_old_ones(
    actions: AuthActions, client: FlaskClient, clock: ManualClock, services: Services, user: Enrolled
) -> None:
    headers = bearer(actions.session(user))
    before = recovery_hashes(services)
    clock.advance(30)
    refused = client.post("/account/recovery-codes", json={"code": wrong_code(user, clock)}, headers=headers)
    _error(refused, 401, "invalid_totp")
    assert recovery_hashes(services) == before

    response = client.post("/account/recovery-codes", json={"code": actions.code(user.secret)}, headers=headers)
    assert response.status_code == 200, response.get_json()
    assert response.headers["Cache-Control"] == "no-store"
    codes = response.get_json()["recoveryCodes"]
    assert len(codes) == len(set(codes)) == 10 and not set(codes) & set(user.recovery_codes)

    # One password step: an old code is refused, then a new one opens the session.
    pass_auth = actions.pass_auth(user)
    old = client.post("/totp/verify-login", json={"passAuthToken": pass_auth, "recoveryCode": user.recovery_codes[0]})
    _error(old, 401, "invalid_totp")
    new = client.post("/totp/verify-login", json={"passAuthToken": pass_auth, "recoveryCode": codes[0]})
    assert new.status_code == 200, new.get_json()
    _error(actions.login(user, recoveryCode=codes[0]), 401, "invalid_totp")


# -- deletion ---------------------------------------------------------------------------------


def test_delete_account_removes_the_user_and_everything_of_theirs(
    actions: AuthActions, client: FlaskClient, services: Services, user: Enrolled
) -> None:
    other = actions.session(user)
    mine = actions.session(user)
    assert all(count > 0 for table, count in row_counts(services).items() if table != "registration_states")

    response = client.delete("/account", json={"code": actions.code(user.secret)}, headers=bearer(mine))
    assert response.status_code == 204 and response.data == b""

    assert set(row_counts(services).values()) == {0}
    assert not verifies(client, mine) and not verifies(client, other)
    _error(client.post("/api/refresh-token", json={"refreshToken": mine["refreshToken"]}), 401, "invalid_token")
    assert not password_works(actions, user, user.password)  # an unknown user now
    assert actions.opaque.register("ALICE", NEW_PASSWORD).status_code == 201


def test_delete_account_drops_an_open_password_change(
    actions: AuthActions, client: FlaskClient, services: Services, user: Enrolled
) -> None:
    """The change's sealed server secret is one of the account's secrets, and it must not hold
    the freed name for another minute."""
    headers = bearer(actions.session(user))
    assert password_init(client, NEW_PASSWORD, headers)[1].status_code == 200
    assert client.delete("/account", json={"code": actions.code(user.secret)}, headers=headers).status_code == 204
    assert row_counts(services)["registration_states"] == 0
    start = start_registration(NEW_PASSWORD)
    response = client.post("/register/init", json={"username": "alice", "registrationRequest": b64(start.request)})
    assert response.status_code == 200, response.get_json()


def test_delete_account_with_a_wrong_code_deletes_nothing(
    actions: AuthActions, client: FlaskClient, clock: ManualClock, services: Services, user: Enrolled
) -> None:
    tokens = actions.session(user)
    before = row_counts(services)
    clock.advance(30)
    refused = client.delete("/account", json={"code": wrong_code(user, clock)}, headers=bearer(tokens))
    _error(refused, 401, "invalid_totp")
    assert row_counts(services) == before
    assert verifies(client, tokens)


# -- authentication by cookie -----------------------------------------------------------------


@pytest.mark.parametrize("origin", [None, EVIL_ORIGIN])
def test_cookie_authenticated_actions_need_our_origin(
    actions: AuthActions,
    client: FlaskClient,
    clock: ManualClock,
    services: Services,
    user: Enrolled,
    origin: str | None,
) -> None:
    tokens = actions.session(user)  # the client now holds the access cookie
    before = (opaque_record(services), recovery_hashes(services), row_counts(services))
    foreign = {} if origin is None else {"Origin": origin}
    request = b64(start_registration("yet another password").request)
    refused = client.post("/account/password/init", json={"registrationRequest": request}, headers=foreign)
    _error(refused, 403, "origin_rejected")
    refused = client.post("/account/recovery-codes", json={"code": actions.code(user.secret)}, headers=foreign)
    _error(refused, 403, "origin_rejected")
    _error(client.delete("/account", json={"code": actions.code(user.secret)}, headers=foreign), 403, "origin_rejected")
    # A bearer token needs no Origin: open a change, then try to finish it by cookie.
    start, init = password_init(client, NEW_PASSWORD, bearer(tokens))
    record = record_for(start, init)
    _error(password_finish(client, record, next_code(user, clock), foreign), 403, "origin_rejected")
    assert (opaque_record(services), recovery_hashes(services)) == before[:2]
    assert row_counts(services) == {**before[2], "registration_states": 1}  # only the bearer's change
    assert verifies(client, tokens)

    own = {"Origin": ORIGIN}
    assert password_finish(client, record, actions.code(user.secret), own).status_code == 200
    renewed = client.post("/account/recovery-codes", json={"code": actions.code(user.secret)}, headers=own)
    assert renewed.status_code == 200, renewed.get_json()
    assert opaque_record(services) != before[0] and recovery_hashes(services) != before[1]


def test_a_password_change_ends_what_the_old_password_started(
    actions: AuthActions, client: FlaskClient, user: Enrolled
) -> None:
    """Pass-auth tokens and logins in flight from before the change die with the old password."""
    mine = actions.session(user)
    old_pass_auth = actions.pass_auth(user)
    start_old, old_login = actions.opaque.login_init(user.username, user.password)
    assert old_login.status_code == 200
    start, init = password_init(client, NEW_PASSWORD, bearer(mine))
    changed = password_finish(client, record_for(start, init), actions.code(user.secret), bearer(mine))
    assert changed.status_code == 200, changed.get_json()

    late = client.post("/totp/verify-login", json={"passAuthToken": old_pass_auth, "code": actions.code(user.secret)})
    _error(late, 401, "pass_auth_expired")
    body = old_login.get_json()
    ke3 = finish_login(start_old, unb64(body["loginResponse"]), body["username"], body["serverId"])
    assert ke3 is not None  # the old password still fitted the response it got before the change
    finished = client.post("/login/finish", json={"loginId": body["loginId"], "finishLoginRequest": b64(ke3)})
    _error(finished, 410, "login_expired")


def test_a_pass_auth_token_from_the_same_second_before_a_password_change_dies_with_it(
    actions: AuthActions, client: FlaskClient, user: Enrolled, clock: ManualClock
) -> None:
    mine = actions.session(user)
    start, init = password_init(client, NEW_PASSWORD, bearer(mine))
    code = actions.code(user.secret)  # the change's code, taken first: taking one moves the clock
    clock.advance(1.1 - clock().microsecond / 1e6)  # 0.1 s into the next second
    old_pass_auth = actions.pass_auth(user)
    clock.advance(0.3)  # the change lands in the same second, after the token
    assert password_finish(client, record_for(start, init), code, bearer(mine)).status_code == 200
    late = client.post("/totp/verify-login", json={"passAuthToken": old_pass_auth, "code": actions.code(user.secret)})
    _error(late, 401, "pass_auth_expired")


def test_wrong_codes_on_account_actions_lock_the_account(
    actions: AuthActions, client: FlaskClient, user: Enrolled, clock: ManualClock, services: Services
) -> None:
    tokens = actions.session(user)
    for _ in range(10):
        response = client.post(
            "/account/recovery-codes", json={"code": wrong_code(user, clock)}, headers=bearer(tokens)
        )
        _error(response, 401, "invalid_totp")
    before = recovery_hashes(services)
    locked = client.post("/account/recovery-codes", json={"code": actions.code(user.secret)}, headers=bearer(tokens))
    _error(locked, 429, "too_many_attempts")
    assert recovery_hashes(services) == before
    clock.advance(15 * 60)
    tokens = actions.session(user)  # the old access token has expired meanwhile
    assert (
        client.post(
            "/account/recovery-codes", json={"code": actions.code(user.secret)}, headers=bearer(tokens)
        ).status_code
        == 200
    )
