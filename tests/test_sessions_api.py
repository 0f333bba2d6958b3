"""Sessions over HTTP: the whole journey, verification, rotation with reuse detection, revocation."""

from __future__ import annotations

from typing import Any

from alembic import command
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import text

from cypher.services.clock import ManualClock
from cypher.services.tokens import TokenPurpose
from cypher.store.migrate import alembic_config, upgrade
from cypher.wiring import Services
from tests.auth_actions import ORIGIN, AuthActions, Enrolled
from tests.concurrency import race
from tests.test_opaque_api import _error


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _verify(client: FlaskClient, access_token: str) -> Any:
    return client.post("/api/verify-access", headers=_bearer(access_token))


def _refuted(response: Any, code: str = "invalid_token") -> None:
    assert response.status_code == 401
    body = response.get_json()
    assert body["valid"] is False and body["code"] == code and body["error"]


def test_the_whole_journey(app: Flask, actions: AuthActions) -> None:
    """Register, enrol TOTP, log in, verify, refresh, list, revoke another session, log out."""
    alice = actions.enrol("Alice", "correct horse battery staple")
    laptop = actions.session(alice)
    phone_client = app.test_client()
    phone = AuthActions(phone_client, actions.clock).session(alice)
    client = actions.client

    verified = _verify(client, laptop["accessToken"])
    assert verified.status_code == 200
    body = verified.get_json()
    assert body["valid"] is True and body["username"] == "alice" and body["sessionId"]
    assert body["expiresAt"].endswith("+00:00")

    refreshed = client.post("/api/refresh-token", json={"refreshToken": laptop["refreshToken"]})
    assert refreshed.status_code == 200
    laptop = refreshed.get_json()
    assert _verify(client, laptop["accessToken"]).status_code == 200

    sessions = client.get("/api/sessions", headers=_bearer(laptop["accessToken"])).get_json()["sessions"]
    assert len(sessions) == 2
    assert [session["current"] for session in sessions].count(True) == 1
    assert set(sessions[0]) == {"id", "createdAt", "lastSeenAt", "ip", "userAgent", "device", "current"}
    other = next(session for session in sessions if not session["current"])

    assert client.delete(f"/api/sessions/{other['id']}", headers=_bearer(laptop["accessToken"])).status_code == 204
    _refuted(_verify(phone_client, phone["accessToken"]))
    _error(phone_client.post("/api/refresh-token", json={"refreshToken": phone["refreshToken"]}), 401, "invalid_token")

    logout = client.post("/api/logout", headers=_bearer(laptop["accessToken"]))
    assert logout.status_code == 200
    cleared = {header.split("=", 1)[0] for header in logout.headers.getlist("Set-Cookie") if "Max-Age=0" in header}
    assert cleared == {"cypher_access", "cypher_refresh"}
    _refuted(_verify(client, laptop["accessToken"]))


def test_verify_access_reads_bearer_body_or_cookie(client: FlaskClient, actions: AuthActions, user: Enrolled) -> None:
    tokens = actions.session(user)  # the client now holds the access cookie too
    assert client.post("/api/verify-access").status_code == 200  # cookie; reading needs no Origin
    client.delete_cookie("cypher_access")
    _refuted(client.post("/api/verify-access"))
    assert client.post("/api/verify-access", json={"accessToken": tokens["accessToken"]}).status_code == 200
    assert _verify(client, tokens["accessToken"]).status_code == 200


def test_verify_access_refuses_wrong_expired_and_foreign_tokens(
    client: FlaskClient, actions: AuthActions, user: Enrolled, clock: ManualClock
) -> None:
    tokens = actions.session(user)
    _refuted(_verify(client, tokens["refreshToken"]))
    _refuted(_verify(client, tokens["accessToken"][:-4] + "AAAA"))
    _refuted(_verify(client, "not a token"))
    _error(client.post("/api/verify-access", data=b"{", content_type="application/json"), 400, "invalid_request")
    clock.advance(900)
    _refuted(_verify(client, tokens["accessToken"]))


def test_an_access_token_is_no_refresh_token(client: FlaskClient, actions: AuthActions, user: Enrolled) -> None:
    tokens = actions.session(user)
    _error(client.post("/api/refresh-token", json={"refreshToken": tokens["accessToken"]}), 401, "invalid_token")
    _error(client.post("/api/refresh-token", json={}), 401, "invalid_token")


def test_a_revoked_sessions_refresh_token_is_refused_alike_every_time(
    client: FlaskClient, actions: AuthActions, user: Enrolled
) -> None:
    tokens = actions.session(user)
    assert client.post("/api/logout", headers=_bearer(tokens["accessToken"])).status_code == 200
    for _ in range(2):
        _error(client.post("/api/refresh-token", json={"refreshToken": tokens["refreshToken"]}), 401, "invalid_token")


def test_refresh_rotates_and_reuse_revokes_the_session(
    client: FlaskClient, actions: AuthActions, user: Enrolled
) -> None:
    first = actions.session(user)
    second = client.post("/api/refresh-token", json={"refreshToken": first["refreshToken"]}).get_json()
    assert second["refreshToken"] != first["refreshToken"]
    reused = client.post("/api/refresh-token", json={"refreshToken": first["refreshToken"]})
    _error(reused, 401, "token_reused")
    cleared = {header.split("=", 1)[0] for header in reused.headers.getlist("Set-Cookie") if "Max-Age=0" in header}
    assert cleared == {"cypher_access", "cypher_refresh"}
    # The whole session is gone: its newest tokens too.
    _refuted(_verify(client, second["accessToken"]))
    _error(client.post("/api/refresh-token", json={"refreshToken": second["refreshToken"]}), 401, "invalid_token")


def test_a_spent_refresh_token_of_an_ended_session_is_still_reuse(
    client: FlaskClient, actions: AuthActions, user: Enrolled
) -> None:
    first = actions.session(user)
    second = client.post("/api/refresh-token", json={"refreshToken": first["refreshToken"]}).get_json()
    assert client.post("/api/logout", headers=_bearer(second["accessToken"])).status_code == 200
    _error(client.post("/api/refresh-token", json={"refreshToken": first["refreshToken"]}), 401, "token_reused")
    _error(client.post("/api/refresh-token", json={"refreshToken": second["refreshToken"]}), 401, "invalid_token")


def _jti(services: Services, refresh_token: str) -> str:
    return services.tokens.parse(refresh_token, TokenPurpose.REFRESH).token_id


def _refresh_pointers(services: Services) -> list[tuple[str, str | None]]:
    """Each live session's refresh pointer (the enrolment's own session was logged out)."""
    with services.store.engine.connect() as connection:
        query = text("SELECT id, refresh_token_id FROM sessions WHERE revoked_at IS NULL")
        return [tuple(row) for row in connection.execute(query)]


def test_rotation_moves_the_sessions_one_pointer_on(
    client: FlaskClient, actions: AuthActions, user: Enrolled, services: Services
) -> None:
    """Rotation rewrites the session row's current token; nothing piles up per refresh."""
    tokens = actions.session(user)
    session_id = services.tokens.parse(tokens["refreshToken"], TokenPurpose.REFRESH).session_id
    for _ in range(3):
        tokens = client.post("/api/refresh-token", json={"refreshToken": tokens["refreshToken"]}).get_json()
        assert _refresh_pointers(services) == [(session_id, _jti(services, tokens["refreshToken"]))]


def test_the_refresh_pointer_migration_keeps_each_sessions_current_token(
    app: Flask, client: FlaskClient, actions: AuthActions, user: Enrolled, services: Services
) -> None:
    """Down to 0003 and up again: the current refresh token still refreshes, a spent one is reuse."""
    with services.store.engine.begin() as connection:
        connection.execute(text("DELETE FROM sessions"))  # the enrolment's, logged out: not this test's
    first = actions.session(user)
    current = client.post("/api/refresh-token", json={"refreshToken": first["refreshToken"]}).get_json()
    engine = services.store.engine
    with engine.connect() as connection:
        command.downgrade(alembic_config(connection), "0003")
        connection.commit()
    with engine.begin() as connection:
        carried = connection.execute(text("SELECT id, spent_at FROM refresh_tokens")).all()
        assert [tuple(row) for row in carried] == [(_jti(services, current["refreshToken"]), None)]
        # As 0003's code left it: the first token spent beside the current one.
        connection.execute(
            text(
                "INSERT INTO refresh_tokens (id, session_id, issued_at, expires_at, spent_at)"
                " SELECT :id, session_id, issued_at, expires_at, issued_at FROM refresh_tokens"
            ),
            {"id": _jti(services, first["refreshToken"])},
        )
    upgrade(engine)
    assert [pointer for _session, pointer in _refresh_pointers(services)] == [_jti(services, current["refreshToken"])]
    refreshed = client.post("/api/refresh-token", json={"refreshToken": current["refreshToken"]})
    assert refreshed.status_code == 200
    _error(client.post("/api/refresh-token", json={"refreshToken": first["refreshToken"]}), 401, "token_reused")
    _refuted(_verify(client, refreshed.get_json()["accessToken"]))


def test_refresh_by_cookie_needs_our_origin(client: FlaskClient, actions: AuthActions, user: Enrolled) -> None:
    actions.session(user)
    _error(client.post("/api/refresh-token"), 403, "origin_rejected")
    _error(client.post("/api/refresh-token", headers={"Origin": "https://evil.example"}), 403, "origin_rejected")
    refreshed = client.post("/api/refresh-token", headers={"Origin": ORIGIN})
    assert refreshed.status_code == 200
    assert _verify(client, refreshed.get_json()["accessToken"]).status_code == 200


def test_concurrent_refreshes_one_wins(app: Flask, actions: AuthActions, user: Enrolled) -> None:
    tokens = actions.session(user)
    body = {"refreshToken": tokens["refreshToken"]}
    responses = race(20, lambda: app.test_client().post("/api/refresh-token", json=body))
    statuses = sorted(response.status_code for response in responses)
    assert statuses == [200] + [401] * 19
    assert {response.get_json()["code"] for response in responses if response.status_code == 401} == {"token_reused"}
    # Reuse detection revoked the session, so even the winner's new tokens are dead.
    winner = next(response for response in responses if response.status_code == 200).get_json()
    _refuted(_verify(app.test_client(), winner["accessToken"]))


def test_a_session_ends_after_its_lifetime(
    client: FlaskClient, actions: AuthActions, user: Enrolled, clock: ManualClock
) -> None:
    tokens = actions.session(user)
    clock.advance(30 * 24 * 3600 - 60)
    refreshed = client.post("/api/refresh-token", json={"refreshToken": tokens["refreshToken"]})
    assert refreshed.status_code == 200
    # Refreshing never extends the session: the new tokens end with it.
    assert refreshed.get_json()["refreshExpiresIn"] == refreshed.get_json()["expiresIn"] == 60
    clock.advance(60)
    _error(
        client.post("/api/refresh-token", json={"refreshToken": refreshed.get_json()["refreshToken"]}),
        401,
        "invalid_token",
    )


def test_logout_all_and_listing_only_live_sessions(app: Flask, actions: AuthActions, user: Enrolled) -> None:
    first = actions.session(user)
    second = AuthActions(app.test_client(), actions.clock).session(user)
    response = actions.client.post("/api/logout-all", headers=_bearer(first["accessToken"]))
    assert response.status_code == 200 and response.get_json() == {"revoked": 2}
    for tokens in (first, second):
        _refuted(_verify(actions.client, tokens["accessToken"]))
    third = actions.session(user)
    listed = actions.client.get("/api/sessions", headers=_bearer(third["accessToken"])).get_json()["sessions"]
    assert len(listed) == 1 and listed[0]["current"] is True


def test_sessions_of_others_cannot_be_touched(app: Flask, actions: AuthActions, user: Enrolled) -> None:
    mine = actions.session(user)
    bob = actions.enrol("bob", "another long passphrase")
    bobs_client = app.test_client()
    bobs = AuthActions(bobs_client, actions.clock).session(bob)
    bobs_id = bobs_client.get("/api/sessions", headers=_bearer(bobs["accessToken"])).get_json()["sessions"][0]["id"]
    _error(actions.client.delete(f"/api/sessions/{bobs_id}", headers=_bearer(mine["accessToken"])), 404, "not_found")
    _error(actions.client.delete("/api/sessions/no-such-id", headers=_bearer(mine["accessToken"])), 404, "not_found")
    assert _verify(bobs_client, bobs["accessToken"]).status_code == 200
    # Ending one's own session this way also clears its cookies.
    own = bobs_client.delete(f"/api/sessions/{bobs_id}", headers=_bearer(bobs["accessToken"]))
    assert own.status_code == 204
    cleared = {header.split("=", 1)[0] for header in own.headers.getlist("Set-Cookie") if "Max-Age=0" in header}
    assert cleared == {"cypher_access", "cypher_refresh"}


def test_authenticated_endpoints_refuse_without_a_session(client: FlaskClient) -> None:
    for method, path in [
        ("post", "/api/logout"),
        ("post", "/api/logout-all"),
        ("get", "/api/sessions"),
        ("delete", "/api/sessions/x"),
    ]:
        _error(getattr(client, method)(path), 401, "invalid_token")


def test_cookie_authenticated_changes_need_our_origin(
    client: FlaskClient, actions: AuthActions, user: Enrolled, services: Services
) -> None:
    tokens = actions.session(user)
    _error(client.post("/api/logout"), 403, "origin_rejected")
    _error(client.post("/api/logout-all", headers={"Origin": "https://evil.example"}), 403, "origin_rejected")
    assert client.get("/api/sessions").status_code == 200  # reading needs no Origin
    assert _verify(client, tokens["accessToken"]).status_code == 200
    assert client.post("/api/logout", headers={"Origin": ORIGIN}).status_code == 200
    _refuted(_verify(client, tokens["accessToken"]))
