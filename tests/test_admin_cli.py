"""The operator's commands: users, sessions, keys."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient, FlaskCliRunner

from cypher import create_app
from cypher.services.errors import InvalidToken
from cypher.services.tokens import TokenPurpose
from cypher.store import NewSession
from tests.auth_actions import AuthActions, Enrolled
from tests.records import find_user
from tests.test_opaque_api import _error


def _bearer(tokens: dict[str, str]) -> dict[str, str]:
    return {"Authorization": f"Bearer {tokens['accessToken']}"}


def test_users_list_and_show(runner: FlaskCliRunner, actions: AuthActions, user: Enrolled) -> None:
    actions.session(user)
    listed = runner.invoke(args=["users", "list"])
    assert listed.exit_code == 0 and listed.output.startswith("alice  active  created ")
    shown = runner.invoke(args=["users", "show", "ALICE"])
    assert shown.exit_code == 0, shown.output
    assert "status: active" in shown.output and "totp: enrolled" in shown.output
    assert "unused recovery codes: 10" in shown.output and "1 live session(s)" in shown.output
    missing = runner.invoke(args=["users", "show", "nobody"])
    assert missing.exit_code == 1 and "No account named nobody." in missing.output


def test_a_disabled_user_cannot_log_in_and_loses_live_sessions(
    runner: FlaskCliRunner, client: FlaskClient, actions: AuthActions, user: Enrolled
) -> None:
    tokens = actions.session(user)
    pass_auth = actions.pass_auth(user)
    disabled = runner.invoke(args=["users", "disable", "alice"])
    assert disabled.exit_code == 0 and "1 session(s) revoked" in disabled.output
    assert client.post("/api/verify-access", headers=_bearer(tokens)).status_code == 401
    _error(client.get("/auth/verify", headers=_bearer(tokens)), 401, "invalid_token")
    _error(actions.opaque.login("alice", user.password), 403, "account_disabled")
    late = client.post("/totp/verify-login", json={"passAuthToken": pass_auth, "code": actions.code(user.secret)})
    _error(late, 401, "pass_auth_expired")
    again = runner.invoke(args=["users", "disable", "alice"])
    assert again.exit_code == 1 and "alice is not an active account." in again.output

    assert runner.invoke(args=["users", "enable", "alice"]).exit_code == 0
    enabled_again = runner.invoke(args=["users", "enable", "alice"])
    assert enabled_again.exit_code == 1 and "alice is not a disabled account." in enabled_again.output
    assert actions.login(user).status_code == 200


def test_sessions_list_and_revoke(
    runner: FlaskCliRunner, client: FlaskClient, actions: AuthActions, user: Enrolled
) -> None:
    tokens = actions.session(user)
    session_id = client.get("/api/sessions", headers=_bearer(tokens)).get_json()["sessions"][0]["id"]
    listed = runner.invoke(args=["sessions", "list"])
    assert session_id in listed.output and "1 live session(s)" in listed.output
    assert runner.invoke(args=["sessions", "revoke", session_id]).exit_code == 0
    assert client.post("/api/verify-access", headers=_bearer(tokens)).status_code == 401
    assert runner.invoke(args=["sessions", "revoke", session_id]).exit_code == 1
    assert "0 live session(s)" in runner.invoke(args=["sessions", "list", "alice"]).output


def test_a_session_id_beginning_with_a_dash_is_an_id(
    runner: FlaskCliRunner,
    services,
    clock,
    user: Enrolled,  # type: ignore[no-untyped-def]
) -> None:
    """One session id in 64 begins with "-" (URL-safe base64); the command must not read it as an option."""
    alice = find_user(services.store, "alice")
    now = clock()
    row = NewSession(
        "-9yFHLNjMKXGPfhgAR0BXmXj898rqCOZ", alice.id, "refresh-1", now, now + timedelta(days=1), None, None
    )
    with services.store.transaction() as tx:
        tx.sessions.add(row)
    revoked = runner.invoke(args=["sessions", "revoke", row.session_id])
    assert revoked.exit_code == 0, revoked.output
    with services.store.transaction(readonly=True) as tx:
        assert tx.sessions.live(row.session_id, now) is None


def test_users_delete(runner: FlaskCliRunner, services, user: Enrolled) -> None:  # type: ignore[no-untyped-def]
    assert runner.invoke(args=["users", "delete", "alice"]).exit_code == 1  # asks first; no input, no deletion
    assert find_user(services.store, "alice") is not None
    assert runner.invoke(args=["users", "delete", "alice", "--yes"]).exit_code == 0
    assert find_user(services.store, "alice") is None


def test_keys_rotate_then_prune(app: Flask, app_config: dict[str, object], runner: FlaskCliRunner) -> None:
    old_token = app.extensions["cypher"].tokens.mint(TokenPurpose.ACCESS, "alice", session_id="s").token
    keys_file = Path(str(app_config["KEYS_FILE"]))
    before = json.loads(keys_file.read_text())
    assert runner.invoke(args=["keys", "rotate"]).exit_code == 0
    after = json.loads(keys_file.read_text())
    for purpose in ("pass_auth", "access", "refresh", "enroll"):
        assert after["purposes"][purpose]["current"] != before["purposes"][purpose]["current"]
        assert len(after["purposes"][purpose]["keys"]) == 2
    for purpose in ("opaque_server", "fake_record", "at_rest"):
        assert after["purposes"][purpose] == before["purposes"][purpose]

    rotated = create_app(app_config)  # a restarted worker
    rotated_tokens = rotated.extensions["cypher"].tokens
    assert rotated_tokens.parse(old_token, TokenPurpose.ACCESS).subject == "alice"  # still verifies
    new_token = rotated_tokens.mint(TokenPurpose.ACCESS, "alice", session_id="s").token
    rotated.extensions["cypher"].store.dispose()

    assert runner.invoke(args=["keys", "prune"]).exit_code == 0
    assert keys_file.stat().st_mode & 0o077 == 0
    pruned = create_app(app_config)
    pruned_tokens = pruned.extensions["cypher"].tokens
    assert pruned_tokens.parse(new_token, TokenPurpose.ACCESS).subject == "alice"
    with pytest.raises(InvalidToken):
        pruned_tokens.parse(old_token, TokenPurpose.ACCESS)
    pruned.extensions["cypher"].store.dispose()
