"""GET /auth/verify, the question nginx's auth_request asks for every request it guards, answered
before Flask (cypher/forward_auth.py) yet like every other response at the edge."""

from __future__ import annotations

import pytest
from flask.testing import FlaskClient
from sqlalchemy import text

from cypher.services.clock import ManualClock
from cypher.wiring import Services
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


def test_bytes_that_are_not_utf8_are_refused_not_a_crash(
    client: FlaskClient, actions: AuthActions, user: Enrolled
) -> None:
    """A WSGI server hands headers over as latin-1 strings: "\xe9" in the environ is the byte 0xE9,
    which is not UTF-8. The test client would encode a header itself, so the environ is set."""
    raw = client.application.test_client(use_cookies=False)
    for name, value in (("HTTP_COOKIE", "cypher_access=\xe9"), ("HTTP_AUTHORIZATION", "Bearer \xe9")):
        refused = raw.get("/auth/verify", environ_overrides={name: value})
        _error(refused, 401, "invalid_token")
        assert refused.headers["X-Content-Type-Options"] == "nosniff" and "X-Request-Id" in refused.headers
    # Another cookie of the site with such bytes leaves a live session's cookie readable.
    access = actions.session(user)["accessToken"]
    passed = raw.get("/auth/verify", environ_overrides={"HTTP_COOKIE": f"theme=\xe9\xff; cypher_access={access}"})
    assert passed.status_code == 200 and passed.headers["X-Cypher-User"] == "alice", passed.get_json()


def test_head_answers_like_get_without_a_body(client: FlaskClient, actions: AuthActions, user: Enrolled) -> None:
    refused = client.head("/auth/verify")
    assert refused.status_code == 401 and refused.data == b""
    actions.session(user)
    allowed = client.head("/auth/verify")
    assert allowed.status_code == 200 and allowed.data == b""
    assert allowed.headers["X-Cypher-User"] == "alice"


def test_other_methods_are_refused_with_allow(client: FlaskClient) -> None:
    for method in ("POST", "PUT", "DELETE", "OPTIONS"):
        response = client.open("/auth/verify", method=method)
        _error(response, 405, "method_not_allowed")
        assert response.headers["Allow"] == "GET, HEAD"


def test_gateway_answers_carry_the_edge_headers(client: FlaskClient, actions: AuthActions, user: Enrolled) -> None:
    """Answered before Flask, yet with the request id, security headers and no-store of every response."""
    refused = client.get("/auth/verify", headers={"X-Request-ID": "gateway-1"})
    actions.session(user)
    allowed = client.get("/auth/verify")
    for response in (refused, allowed):
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        assert response.headers["X-Frame-Options"] == "DENY"
        assert response.headers["Referrer-Policy"] == "no-referrer"
        assert response.headers["Cache-Control"] == "no-store"
    assert refused.headers["X-Request-ID"] == "gateway-1"
    assert len(allowed.headers["X-Request-ID"]) == 16
    assert refused.headers["Content-Type"] == "application/json"
    assert int(refused.headers["Content-Length"]) == len(refused.data)


def test_gateway_requests_are_counted(client: FlaskClient, actions: AuthActions, user: Enrolled) -> None:
    client.get("/auth/verify")
    actions.session(user)
    client.get("/auth/verify")
    client.get("/auth/verify")
    text = client.get("/metrics").get_data(as_text=True)
    assert 'endpoint="gateway.auth_verify",method="GET",status="401"} 1.0' in text
    assert 'endpoint="gateway.auth_verify",method="GET",status="200"} 2.0' in text


def test_a_broken_database_is_a_500_without_details(
    client: FlaskClient, actions: AuthActions, user: Enrolled, services: Services, caplog: pytest.LogCaptureFixture
) -> None:
    """A real failure, not a stand-in: the sessions table is gone. nginx gets the error shape."""
    actions.session(user)
    with services.store.engine.begin() as connection:
        connection.execute(text("DROP TABLE sessions"))
    response = client.get("/auth/verify")
    _error(response, 500, "internal_error")
    assert "sessions" not in response.get_data(as_text=True)
    assert any("unhandled error on GET /auth/verify" in record.getMessage() for record in caplog.records)
