"""GET /auth/verify, the question nginx's auth_request asks for every request it guards."""

from __future__ import annotations

from flask.testing import FlaskClient

from cypher.services.clock import ManualClock
from tests.auth_actions import AuthActions, Enrolled
from tests.test_opaque_api import _error


def test_a_live_session_passes_with_who_it_is(client: FlaskClient, actions: AuthActions, user: Enrolled) -> None:
    tokens = actions.session(user)  # the client holds the access cookie now
    by_cookie = client.get("/auth/verify")
    assert by_cookie.status_code == 200 and by_cookie.data == b""
    assert by_cookie.headers["X-Cypher-User"] == "alice"
    session_id = client.get("/api/sessions").get_json()["sessions"][0]["id"]
    assert by_cookie.headers["X-Cypher-Session"] == session_id
    client.delete_cookie("cypher_access")
    by_bearer = client.get("/auth/verify", headers={"Authorization": f"Bearer {tokens['accessToken']}"})
    assert by_bearer.status_code == 200
    assert by_bearer.headers["X-Cypher-Session"] == by_cookie.headers["X-Cypher-Session"]
    assert by_bearer.headers["Cache-Control"] == "no-store"


def test_no_session_no_entry(client: FlaskClient, actions: AuthActions, user: Enrolled, clock: ManualClock) -> None:
    _error(client.get("/auth/verify"), 401, "invalid_token")
    _error(client.get("/auth/verify", headers={"Authorization": "Bearer v4.local.x"}), 401, "invalid_token")
    tokens = actions.session(user)
    refresh_as_access = client.get("/auth/verify", headers={"Authorization": f"Bearer {tokens['refreshToken']}"})
    _error(refresh_as_access, 401, "invalid_token")
    assert client.post("/api/logout", headers={"Authorization": f"Bearer {tokens['accessToken']}"}).status_code == 200
    response = client.get("/auth/verify", headers={"Authorization": f"Bearer {tokens['accessToken']}"})
    _error(response, 401, "invalid_token")
    assert "X-Cypher-User" not in response.headers
    fresh = actions.session(user)
    clock.advance(900)
    _error(
        client.get("/auth/verify", headers={"Authorization": f"Bearer {fresh['accessToken']}"}), 401, "invalid_token"
    )
