"""The audit log: which security event each action leaves, that refused requests leave theirs too,
that no event holds a secret, the operator's `audit` command, retention, and the account page's
GET /api/account/activity."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient, FlaskCliRunner
from sqlalchemy import select

from cypher.config import ConfigError, load_config
from cypher.services.clock import ManualClock
from cypher.store.models import AuditEvent as AuditEventRow
from cypher.wiring import Services
from tests.auth_actions import AuthActions, Enrolled
from tests.opaque_client import b64
from tests.test_account_api import (
    NEW_PASSWORD,
    bearer,
    next_code,
    password_finish,
    password_init,
    record_for,
    wrong_code,
)
from tests.test_opaque_api import _error

PASSWORD = "correct horse battery staple"
USER_AGENT = "AuditTest/1.0 (X11; Linux x86_64)"
ADDRESS = "198.51.100.23"
DAY = 24 * 3600


@pytest.fixture
def from_browser(client: FlaskClient) -> FlaskClient:
    """Every request of the test client comes from ADDRESS with USER_AGENT."""
    client.environ_base.update({"REMOTE_ADDR": ADDRESS, "HTTP_USER_AGENT": USER_AGENT})
    return client


def events(services: Services) -> list[tuple[str, str | None, dict[str, Any]]]:
    """(event, username, detail) of every event, oldest first."""
    found = services.audit.search(limit=10_000)
    return [(event.event, event.username, event.detail) for event in reversed(found)]


def names(services: Services) -> list[str]:
    return [event for event, _, _ in events(services)]


def table_text(services: Services) -> str:
    """Every stored value of the audit table but the times, as one text to search."""
    with services.store.engine.connect() as connection:
        rows = connection.execute(select(AuditEventRow.__table__)).mappings().all()
    return "\n".join(json.dumps({key: value for key, value in row.items() if key != "occurred_at"}) for row in rows)


def login_id_for(actions: AuthActions, username: str) -> str:
    _, init = actions.opaque.login_init(username, PASSWORD)
    assert init.status_code == 200, init.get_json()
    return str(init.get_json()["loginId"])


def bogus_finish(client: FlaskClient, login_id: str) -> Any:
    """/login/finish with a KE3 no password makes: the server's wrong-password case."""
    return client.post("/login/finish", json={"loginId": login_id, "finishLoginRequest": b64(bytes(64))})


# -- a whole journey --------------------------------------------------------------------------


def test_a_journey_records_each_event_and_never_a_secret(
    from_browser: FlaskClient, actions: AuthActions, services: Services, clock: ManualClock
) -> None:
    client = from_browser
    user = actions.enrol("alice", PASSWORD)
    secrets = [PASSWORD, NEW_PASSWORD, user.secret, *user.recovery_codes]

    unknown_login = login_id_for(actions, "Mallory")
    _error(bogus_finish(client, unknown_login), 401, "invalid_credentials")
    wrong_password_login = login_id_for(actions, "alice")
    _error(bogus_finish(client, wrong_password_login), 401, "invalid_credentials")
    _error(bogus_finish(client, wrong_password_login), 410, "login_expired")  # replayed
    secrets += [unknown_login, wrong_password_login]

    pass_auth = actions.pass_auth(user)
    wrong = wrong_code(user, clock)
    refused = client.post("/totp/verify-login", json={"passAuthToken": pass_auth, "code": wrong})
    _error(refused, 401, "invalid_totp")
    secrets += [pass_auth, wrong]

    first = actions.session(user)
    by_recovery_code = actions.login(user, recoveryCode=user.recovery_codes[0])
    assert by_recovery_code.status_code == 200, by_recovery_code.get_json()
    second = by_recovery_code.get_json()
    third = actions.session(user)
    secrets += [token for tokens in (first, second, third) for token in (tokens["accessToken"], tokens["refreshToken"])]
    second_id = _current(client, second)
    secrets += [_current(client, first), second_id, _current(client, third)]

    # The second session refreshes, is revoked from the first, then its spent refresh token comes back.
    rotated = client.post("/api/refresh-token", json={"refreshToken": second["refreshToken"]})
    assert rotated.status_code == 200, rotated.get_json()
    assert client.delete(f"/api/sessions/{second_id}", headers=bearer(first)).status_code == 204
    reused = client.post("/api/refresh-token", json={"refreshToken": second["refreshToken"]})
    _error(reused, 401, "token_reused")

    assert client.post("/api/logout", headers=bearer(third)).status_code == 200

    wrong = wrong_code(user, clock)
    _error(client.post("/account/recovery-codes", json={"code": wrong}, headers=bearer(first)), 401, "invalid_totp")
    code = actions.code(user.secret)
    regenerated = client.post("/account/recovery-codes", json={"code": code}, headers=bearer(first))
    assert regenerated.status_code == 200, regenerated.get_json()
    secrets += [code, *regenerated.get_json()["recoveryCodes"]]

    start, init = password_init(client, NEW_PASSWORD, bearer(first))
    code = next_code(user, clock)
    changed = password_finish(client, record_for(start, init), code, bearer(first))
    assert changed.status_code == 200, changed.get_json()
    secrets.append(code)
    assert client.post("/api/logout-all", headers=bearer(first)).status_code == 200

    clock.advance(30)  # past the step whose code confirmed the change
    fourth = actions.session(Enrolled("alice", NEW_PASSWORD, user.secret, []))
    code = actions.code(user.secret)
    deleted = client.delete("/account", json={"code": code}, headers=bearer(fourth))
    assert deleted.status_code == 204, deleted.get_json()
    secrets += [code, fourth["accessToken"], fourth["refreshToken"]]

    assert names(services) == [
        "registration.finished",
        "totp.enrolled",
        "login.succeeded",  # enrolment logs the enrolling browser in
        "session.logout",
        "login.failed",  # unknown name
        "login.failed",  # wrong password
        "login.failed",  # the loginId again
        "login.failed",  # wrong TOTP code
        "login.succeeded",
        "recovery_code.used",
        "login.succeeded",
        "login.succeeded",
        "session.revoked",
        "refresh_token.reused",
        "session.logout",
        "totp.failed",
        "recovery_codes.regenerated",
        "password.changed",
        "session.logout_all",
        "login.succeeded",
        "account.deleted",
    ]
    recorded = events(services)
    assert recorded[4] == ("login.failed", "mallory", {"phase": "password"})  # no account; the loginId names it
    assert recorded[5] == ("login.failed", "alice", {"phase": "password"})
    assert recorded[6][2] == {"phase": "expired"}
    assert recorded[7] == ("login.failed", "alice", {"phase": "totp"})
    assert recorded[8][2]["factor"] == "totp" and recorded[10][2]["factor"] == "recovery_code"
    assert recorded[12][2] == {"session": second_id[:8]} and recorded[13][2] == {"session": second_id[:8]}
    assert recorded[15][2] == {"phase": "totp"}
    assert recorded[17][2] == {"sessions": 0} and recorded[18][2] == {"sessions": 1}
    assert all(username in {"alice", "mallory"} for _, username, _ in recorded)

    with services.store.transaction(readonly=True) as tx:
        stored = tx.audit.search(username=None, event_prefix=None, since=None, limit=100)
    assert {(event.ip, event.user_agent) for event in stored} == {(ADDRESS, USER_AGENT)}
    assert {event.user_id for event in stored if event.username == "alice"} == {stored[0].user_id}

    text = table_text(services)
    assert "v4.local." not in text  # no PASETO token of any kind
    leaked = [secret for secret in secrets if secret in text]
    assert leaked == []


def _current(client: FlaskClient, tokens: dict[str, Any]) -> str:
    listed = client.get("/api/sessions", headers=bearer(tokens)).get_json()["sessions"]
    return str(next(session["id"] for session in listed if session["current"]))


# -- refusals are recorded although the request failed ----------------------------------------


def test_a_disabled_or_pending_account_leaves_its_refused_login(
    actions: AuthActions, runner: FlaskCliRunner, services: Services, user: Enrolled
) -> None:
    assert runner.invoke(args=["users", "disable", "alice"]).exit_code == 0
    _error(actions.opaque.login("alice", PASSWORD), 403, "account_disabled")
    assert actions.opaque.register("bob", PASSWORD).status_code == 201  # TOTP never set up
    _error(actions.opaque.login("bob", PASSWORD), 403, "account_pending")
    failed = [(name, detail) for event, name, detail in events(services) if event == "login.failed"]
    assert failed == [("alice", {"phase": "disabled"}), ("bob", {"phase": "pending"})]


def test_wrong_codes_lock_the_second_factor_and_each_is_recorded(
    actions: AuthActions, client: FlaskClient, clock: ManualClock, services: Services, user: Enrolled
) -> None:
    headers = bearer(actions.session(user))
    wrong = wrong_code(user, clock)
    for _ in range(10):
        _error(client.post("/account/recovery-codes", json={"code": wrong}, headers=headers), 401, "invalid_totp")
    _error(client.post("/account/recovery-codes", json={"code": wrong}, headers=headers), 429, "too_many_attempts")
    recorded = [(event, detail) for event, _, detail in events(services) if event.startswith("totp.")][1:]
    assert recorded == [("totp.failed", {"phase": "totp"})] * 9 + [
        ("totp.locked", {}),
        ("totp.failed", {"phase": "totp"}),
        ("totp.failed", {"phase": "locked"}),
    ]


def test_too_many_codes_on_one_pass_auth_token_and_a_spent_one_are_recorded(
    actions: AuthActions, client: FlaskClient, clock: ManualClock, services: Services, user: Enrolled
) -> None:
    pass_auth = actions.pass_auth(user)
    wrong = wrong_code(user, clock)
    for _ in range(5):
        client.post("/totp/verify-login", json={"passAuthToken": pass_auth, "code": wrong})
    _error(
        client.post("/totp/verify-login", json={"passAuthToken": pass_auth, "code": wrong}), 429, "too_many_attempts"
    )
    phases = [detail["phase"] for event, _, detail in events(services) if event == "login.failed"]
    assert phases == ["totp"] * 5 + ["too_many_attempts"]


# -- the operator's side ----------------------------------------------------------------------


def test_admin_actions_are_recorded_with_the_operator_as_client(
    actions: AuthActions, client: FlaskClient, runner: FlaskCliRunner, services: Services, user: Enrolled
) -> None:
    tokens = actions.session(user)
    session_id = _current(client, tokens)
    assert runner.invoke(args=["sessions", "revoke", session_id]).exit_code == 0
    assert runner.invoke(args=["users", "disable", "alice"]).exit_code == 0
    assert runner.invoke(args=["users", "enable", "alice"]).exit_code == 0
    assert runner.invoke(args=["users", "delete", "alice", "--yes"]).exit_code == 0
    assert runner.invoke(args=["users", "disable", "alice"]).exit_code == 1  # refused: nothing recorded
    admin = services.audit.search(event_prefix="admin.", limit=10)
    assert [(event.event, event.username, event.detail) for event in reversed(admin)] == [
        ("admin.session_revoked", "alice", {"session": session_id[:8]}),
        ("admin.user_disabled", "alice", {"sessions": 0}),
        ("admin.user_enabled", "alice", {"sessions": 0}),
        ("admin.user_deleted", "alice", {}),
    ]
    assert all(event.ip is None and (event.user_agent or "").startswith("flask cli (") for event in admin)


def test_the_audit_command_filters_newest_first(
    actions: AuthActions, clock: ManualClock, runner: FlaskCliRunner, user: Enrolled
) -> None:
    clock.advance(2 * DAY)
    _error(bogus_finish(actions.client, login_id_for(actions, "alice")), 401, "invalid_credentials")
    actions.session(user)
    _error(bogus_finish(actions.client, login_id_for(actions, "nobody")), 401, "invalid_credentials")

    everything = runner.invoke(args=["audit"])
    assert everything.exit_code == 0, everything.output
    lines = everything.output.splitlines()
    assert [line.split("  ")[1] for line in lines] == [
        "login.failed",
        "login.succeeded",
        "login.failed",
        "session.logout",
        "login.succeeded",  # enrolment logged the enrolling client in
        "totp.enrolled",
        "registration.finished",
    ]
    assert lines[2].split("  ")[2:5] == ["alice", "127.0.0.1", "phase=password"]

    def listed(*options: str) -> list[str]:
        result = runner.invoke(args=["audit", "--json", *options])
        assert result.exit_code == 0, result.output
        return [json.loads(line)["event"] for line in result.output.splitlines()]

    assert listed("--event", "login.") == ["login.failed", "login.succeeded", "login.failed", "login.succeeded"]
    assert listed("--event", "login.f", "--user", "ALICE") == ["login.failed"]
    assert listed("--since", "1d") == ["login.failed", "login.succeeded", "login.failed"]
    since = (clock() - timedelta(hours=1)).replace(tzinfo=None).isoformat()
    assert listed("--since", since, "--limit", "2") == ["login.failed", "login.succeeded"]
    assert listed("--user", "nobody") == ["login.failed"]  # an unknown name is named too

    first = json.loads(runner.invoke(args=["audit", "--json", "--limit", "1", "--event", "login.s"]).output)
    assert set(first) == {"occurredAt", "event", "userId", "username", "ip", "userAgent", "detail"}
    assert first["detail"]["factor"] == "totp" and first["username"] == "alice"

    bad = runner.invoke(args=["audit", "--since", "yesterday"])
    assert bad.exit_code == 2 and "neither an ISO time" in bad.output
    bad_name = runner.invoke(args=["audit", "--user", "no spaces allowed"])
    assert bad_name.exit_code == 1 and "Traceback" not in bad_name.output


def test_purge_deletes_events_past_the_retention(
    make_app: Any, clock: ManualClock, actions: AuthActions, user: Enrolled, services: Services
) -> None:
    assert names(services) == ["registration.finished", "totp.enrolled", "login.succeeded", "session.logout"]
    clock.advance(180 * DAY)  # the default retention has just passed for these four
    actions.session(user)
    purged = services.maintenance.purge()
    assert purged["audit_events"] == 4
    assert names(services) == ["login.succeeded"]

    short = make_app(AUDIT_RETENTION_DAYS=1)
    clock.advance(DAY + 1)
    output = short.test_cli_runner().invoke(args=["purge"]).output
    assert "audit_events: 1" in output
    assert names(services) == []


# -- the account page's activity --------------------------------------------------------------


def test_activity_shows_only_the_callers_own_events_newest_first(
    actions: AuthActions, from_browser: FlaskClient, services: Services, user: Enrolled
) -> None:
    client = from_browser
    _error(client.get("/api/account/activity"), 401, "invalid_token")
    bob = actions.enrol("bob", PASSWORD)
    _error(bogus_finish(client, login_id_for(actions, "bob")), 401, "invalid_credentials")
    actions.session(bob)
    tokens = actions.session(user)  # the client's cookies now hold alice's session

    response = client.get("/api/account/activity", headers=bearer(tokens))
    assert response.status_code == 200 and response.headers["Cache-Control"] == "no-store"
    listed = response.get_json()["events"]
    assert [item["event"] for item in listed] == [
        "login.succeeded",
        "session.logout",
        "login.succeeded",
        "totp.enrolled",
        "registration.finished",
    ]
    assert listed[0]["description"] == "Logged in"
    assert listed[0]["ip"] == ADDRESS and listed[0]["userAgent"] == USER_AGENT
    assert set(listed[0]) == {"occurredAt", "event", "description", "ip", "userAgent", "device"}
    assert listed[0]["occurredAt"].endswith("+00:00")

    by_cookie = client.get("/api/account/activity")  # the access cookie, as the page sends it
    assert by_cookie.status_code == 200 and by_cookie.get_json()["events"] == listed

    bob_tokens = actions.session(bob)
    bobs = client.get("/api/account/activity", headers=bearer(bob_tokens)).get_json()["events"]
    assert [item["description"] for item in bobs][:3] == [
        "Logged in",
        "Logged in",
        "Login failed: wrong password",
    ]


def test_activity_keeps_the_newest_fifty(
    actions: AuthActions, client: FlaskClient, clock: ManualClock, user: Enrolled
) -> None:
    headers = bearer(actions.session(user))
    wrong = wrong_code(user, clock)
    for _ in range(60):  # 60 totp.failed, and a totp.locked at the tenth
        client.post("/account/recovery-codes", json={"code": wrong}, headers=headers)
    listed = client.get("/api/account/activity", headers=headers).get_json()["events"]
    assert len(listed) == 50
    assert {item["event"] for item in listed} == {"totp.failed"}  # the older eleven are left out
    assert listed[0]["description"] == "Wrong authenticator code"


def test_a_new_account_does_not_inherit_a_deleted_ones_events(
    actions: AuthActions, client: FlaskClient, clock: ManualClock, runner: FlaskCliRunner, user: Enrolled
) -> None:
    """SQLite may give the new account the deleted one's id; its events stay the old account's."""
    _error(bogus_finish(client, login_id_for(actions, "alice")), 401, "invalid_credentials")
    assert runner.invoke(args=["users", "delete", "alice", "--yes"]).exit_code == 0
    clock.advance(1)  # the test clock stands still otherwise
    again = actions.enrol("alice", PASSWORD)
    listed = client.get("/api/account/activity", headers=bearer(actions.session(again))).get_json()["events"]
    assert [item["event"] for item in listed] == [
        "login.succeeded",
        "session.logout",
        "login.succeeded",
        "totp.enrolled",
        "registration.finished",
    ]


def test_activity_is_rate_limited(make_app: Any) -> None:
    limited: Flask = make_app(RATELIMIT_ENABLED=True, RATELIMIT_AUTH="2 per minute")
    client = limited.test_client()
    for _ in range(2):
        _error(client.get("/api/account/activity"), 401, "invalid_token")
    _error(client.get("/api/account/activity"), 429, "rate_limited")


def test_the_retention_is_read_from_the_environment(tmp_path: Path) -> None:
    assert load_config(tmp_path, {})["AUDIT_RETENTION_DAYS"] == 180
    assert load_config(tmp_path, {"CYPHER_AUDIT_RETENTION_DAYS": "30"})["AUDIT_RETENTION_DAYS"] == 30
    with pytest.raises(ConfigError, match="CYPHER_AUDIT_RETENTION_DAYS must be at least 1"):
        load_config(tmp_path, {"CYPHER_AUDIT_RETENTION_DAYS": "0"})
