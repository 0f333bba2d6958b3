"""The login's POSTs answered at the WSGI layer (cypher/login_routes.py): the same answers as Flask's
dispatch gives, CORS requests and other methods left to Flask, and no Flask hook skipped unseen."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import partial
from typing import Any

import pyotp
import pytest
from flask import Flask, request, request_finished, request_started
from flask.sessions import SecureCookieSessionInterface
from werkzeug.test import Client, EnvironBuilder, TestResponse

from cypher.login_routes import ROUTES, LoginRoutes
from cypher.services.clock import ManualClock
from cypher.wiring import Services
from tests.auth_actions import Enrolled
from tests.conftest import PARTNER
from tests.opaque_client import b64, finish_login, start_login, unb64
from tests.test_opaque_api import _error

OWN_ORIGIN = "http://localhost"  # the test client's host
PASSWORD = "correct horse battery staple"


@contextmanager
def flask_dispatches(app: Flask) -> Iterator[list[str]]:
    """The paths Flask's own dispatch answered meanwhile (it sends request_started; the routes do not)."""
    paths: list[str] = []

    def record(_sender: Flask, **_extra: Any) -> None:
        paths.append(request.path)

    with request_started.connected_to(record, app):
        yield paths


def _clients(app: Flask) -> tuple[Client, Client]:
    """(Flask's dispatch alone, the login routes in front of it), with no other layer around either."""
    flask_alone = partial(Flask.wsgi_app, app)
    return Client(flask_alone, TestResponse), Client(LoginRoutes(app, flask_alone, None), TestResponse)


KE1_ZEROS = b64(bytes(96))  # 96 bytes, not a group element: libopaque refuses it
MALFORMED: list[tuple[str, dict[str, Any]]] = [
    ("/login/init", {"data": "{not json", "content_type": "application/json"}),
    ("/login/init", {"data": "{}", "content_type": "text/plain"}),
    ("/login/init", {"json": ["a", "list"]}),
    ("/login/init", {"json": {"username": "alice"}}),
    ("/login/init", {"json": {"username": "alice", "startLoginRequest": "!" * 128}}),
    ("/login/init", {"json": {"username": "alice", "startLoginRequest": KE1_ZEROS[:-1] + "B"}}),
    ("/login/init", {"json": {"username": "alice", "startLoginRequest": KE1_ZEROS}}),
    ("/login/init", {"json": {"username": "a\x00b", "startLoginRequest": KE1_ZEROS}}),
    ("/login/init", {"json": {"username": "no", "startLoginRequest": KE1_ZEROS}}),
    ("/login/init", {"json": {"username": "alice", "startLoginRequest": "A" * 70_000}}),
    ("/login/finish", {"json": {"loginId": "k1.abc", "finishLoginRequest": b64(bytes(64))}}),
    ("/login/finish", {"json": {"loginId": "k1.abc", "finishLoginRequest": b64(bytes(63))}}),
    ("/totp/verify-login", {"json": {"code": "123456"}}),
    ("/totp/verify-login", {"json": {"passAuthToken": "v4.local.x", "code": "1", "recoveryCode": "x"}}),
    ("/totp/verify-login", {"json": {"passAuthToken": ["not", "a", "string"], "code": "123456"}}),
    (
        "/totp/verify-login",
        {
            "json": {"code": "123456"},
            "headers": {"Cookie": "cypher_pass_auth=v4.local.x", "Origin": "https://evil.example"},
        },
    ),
]


@pytest.mark.parametrize(("path", "request_options"), MALFORMED)
def test_every_refusal_is_the_one_flask_gives(app: Flask, path: str, request_options: dict[str, Any]) -> None:
    flask_alone, routes = _clients(app)
    with flask_dispatches(app) as dispatched:
        expected = flask_alone.post(path, **request_options)
        answered = routes.post(path, **request_options)
    assert dispatched == [path]  # Flask answered the first, the routes the second
    assert 400 <= answered.status_code < 500
    assert (answered.status_code, answered.data) == (expected.status_code, expected.data)
    assert sorted(answered.headers.items()) == sorted(expected.headers.items())


def test_a_chunked_body_is_read_as_flask_reads_it(app: Flask) -> None:
    """No Content-Length, wsgi.input_terminated (gunicorn's chunked requests): the same answers."""
    flask_alone, routes = _clients(app)

    def chunked(size: int) -> dict[str, Any]:
        body = json.dumps({"username": "alice", "startLoginRequest": "x" * size}).encode()
        environ = EnvironBuilder(
            path="/login/init", method="POST", input_stream=io.BytesIO(body), content_type="application/json"
        ).get_environ()
        del environ["CONTENT_LENGTH"]
        environ["wsgi.input_terminated"] = True
        return environ

    for size, status in ((10, 400), (70_000, 413)):
        expected, answered = flask_alone.open(chunked(size)), routes.open(chunked(size))
        assert answered.status_code == status
        assert (answered.status_code, answered.data) == (expected.status_code, expected.data)


def test_an_unexpected_error_is_a_logged_500_on_both_paths(
    app: Flask, services: Services, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(*_arguments: object) -> None:
        raise RuntimeError("the database went away")

    monkeypatch.setattr(services.opaque, "start_login", broken)
    flask_alone, routes = _clients(app)
    body = {"username": "alice", "startLoginRequest": KE1_ZEROS}
    with caplog.at_level(logging.ERROR, logger="cypher.http"):
        expected, answered = flask_alone.post("/login/init", json=body), routes.post("/login/init", json=body)
    _error(answered, 500, "internal_error")
    assert answered.data == expected.data and b"database" not in answered.data
    logged = [record for record in caplog.records if record.getMessage() == "unhandled error on POST /login/init"]
    assert len(logged) == 2 and all(record.exc_info for record in logged)


def _log_in(client: Client, user: Enrolled, clock: ManualClock) -> list[TestResponse]:
    start = start_login(PASSWORD)
    init = client.post("/login/init", json={"username": user.username, "startLoginRequest": b64(start.ke1)})
    body = init.get_json()
    ke3 = finish_login(start, unb64(body["loginResponse"]), body["username"], body["serverId"])
    assert ke3 is not None
    finish = client.post("/login/finish", json={"loginId": body["loginId"], "finishLoginRequest": b64(ke3)})
    clock.advance(30)  # a TOTP step is accepted once per account
    code = pyotp.TOTP(user.secret).at(clock())
    verified = client.post(
        "/totp/verify-login", json={"passAuthToken": finish.get_json()["passAuthToken"], "code": code}
    )
    return [init, finish, verified]


FRESH_VALUES = {"loginId", "loginResponse", "passAuthToken", "accessToken", "refreshToken"}


def _shape(response: TestResponse) -> tuple[int, dict[str, Any], list[tuple[str, str]]]:
    """Status, body and headers, with each fresh token, loginId and KE2 reduced to its field's
    name and every cookie's value left out."""
    body = {name: name if name in FRESH_VALUES else value for name, value in response.get_json().items()}
    headers = [
        (name, value.partition("=")[0] + ";" + value.partition(";")[2] if name == "Set-Cookie" else value)
        for name, value in response.headers.items()
        if name != "Content-Length"  # it follows the fresh values' lengths
    ]
    return response.status_code, body, sorted(headers)


def test_a_login_gets_the_answers_flask_gives(app: Flask, user: Enrolled, clock: ManualClock) -> None:
    flask_alone, routes = _clients(app)
    with flask_dispatches(app) as dispatched:
        expected = _log_in(flask_alone, user, clock)
        answered = _log_in(routes, user, clock)
    assert dispatched == list(ROUTES)  # the first login through Flask, the second through the routes
    assert [_shape(response) for response in answered] == [_shape(response) for response in expected]
    assert [response.status_code for response in answered] == [200, 200, 200]


def test_other_methods_and_cross_origin_requests_go_to_flask(partner_app: Flask) -> None:
    client = partner_app.test_client()
    login_init = {"username": "alice", "startLoginRequest": KE1_ZEROS}
    with flask_dispatches(partner_app) as dispatched:
        not_allowed = client.get("/login/init")
        preflight = client.options("/login/init", headers={"Origin": PARTNER, "Access-Control-Request-Method": "POST"})
        cross_origin = client.post("/login/init", json=login_init, headers={"Origin": PARTNER})
    assert dispatched == ["/login/init"] * 3
    _error(not_allowed, 405, "method_not_allowed")
    assert preflight.headers["Access-Control-Allow-Origin"] == PARTNER
    _error(cross_origin, 400, "invalid_message")
    assert cross_origin.headers["Access-Control-Allow-Origin"] == PARTNER
    assert cross_origin.headers["Access-Control-Allow-Credentials"] == "true"
    with flask_dispatches(partner_app) as dispatched:
        own_origin = client.post("/login/init", json=login_init, headers={"Origin": OWN_ORIGIN})
        no_origin = client.post("/login/init", json=login_init)
    assert dispatched == []  # both answered by the login routes, without CORS headers
    for response in (own_origin, no_origin):
        _error(response, 400, "invalid_message")
        assert not any(name.startswith("Access-Control-") for name in response.headers.keys())


def test_both_paths_count_against_one_rate_limit(make_app: Callable[..., Flask]) -> None:
    app = make_app(ALLOWED_ORIGINS=[PARTNER], RATELIMIT_ENABLED=True, RATELIMIT_AUTH="2 per minute")
    client = app.test_client()
    body = {"username": "alice", "startLoginRequest": KE1_ZEROS}
    with flask_dispatches(app) as dispatched:
        first = client.post("/login/init", json=body)  # the login routes
        second = client.post("/login/init", json=body, headers={"Origin": PARTNER})  # Flask, for CORS
        third = client.post("/login/init", json=body)
    assert dispatched == ["/login/init"]
    assert [first.status_code, second.status_code] == [400, 400]
    _error(third, 429, "rate_limited")
    assert 1 <= int(third.headers["Retry-After"]) <= 60


def test_behind_a_trusted_proxy_the_routes_count_the_clients_address(make_app: Callable[..., Flask]) -> None:
    """The routes sit inside ProxyFix: each forwarded client has its own limit, as in Flask."""
    app = make_app(TRUSTED_PROXIES=1, RATELIMIT_ENABLED=True, RATELIMIT_AUTH="1 per minute")
    client = app.test_client()
    body = {"username": "alice", "startLoginRequest": KE1_ZEROS}

    def post_from(address: str) -> TestResponse:
        return client.post("/login/init", json=body, headers={"X-Forwarded-For": address})

    assert [post_from("198.51.100.1").status_code, post_from("198.51.100.2").status_code] == [400, 400]
    _error(post_from("198.51.100.1"), 429, "rate_limited")


@pytest.mark.parametrize(
    ("allowed", "origin"),
    [
        ([OWN_ORIGIN], OWN_ORIGIN),
        ([OWN_ORIGIN, PARTNER], OWN_ORIGIN),
        ([OWN_ORIGIN.upper()], OWN_ORIGIN),
        ([PARTNER], OWN_ORIGIN),
        ([OWN_ORIGIN], OWN_ORIGIN + "/"),
    ],
)
def test_cypher_s_own_pages_get_the_cors_headers_flask_cors_gives(
    make_app: Callable[..., Flask], allowed: list[str], origin: str
) -> None:
    """Production lists Cypher's own origin among the allowed ones: its pages' logins take the
    routes, with what flask-cors would have added."""
    app = make_app(ALLOWED_ORIGINS=allowed)
    flask_alone, routes = _clients(app)
    body = {"username": "alice", "startLoginRequest": KE1_ZEROS}
    with flask_dispatches(app) as dispatched:
        expected = flask_alone.post("/login/init", json=body, headers={"Origin": origin})
        answered = routes.post("/login/init", json=body, headers={"Origin": origin})
    assert dispatched == ["/login/init"]  # Flask alone answered the first only
    assert sorted(answered.headers.items()) == sorted(expected.headers.items())
    listed = origin.casefold() in {entry.casefold() for entry in allowed}
    assert (answered.headers.get("Access-Control-Allow-Origin") == origin) is listed


def test_a_private_network_question_goes_to_flask(make_app: Callable[..., Flask]) -> None:
    app = make_app(ALLOWED_ORIGINS=[OWN_ORIGIN])
    headers = {"Origin": OWN_ORIGIN, "Access-Control-Request-Private-Network": "true"}
    with flask_dispatches(app) as dispatched:
        response = app.test_client().post("/login/init", json={}, headers=headers)
    assert dispatched == ["/login/init"]
    assert response.headers["Access-Control-Allow-Private-Network"] == "false"


def test_the_app_has_no_hook_the_login_routes_would_skip(make_app: Callable[..., Flask]) -> None:
    """The login routes stand in for Flask's dispatch: they must know all it would run.

    If this fails, something was added to the application: make cypher/login_routes.py do what it
    does for the login's POSTs, or send those paths to Flask, then update this test.
    """
    blueprints = {endpoint.partition(".")[0] for endpoint, _answer in ROUTES.values()}
    for settings in ({}, {"ALLOWED_ORIGINS": [PARTNER]}, {"RATELIMIT_ENABLED": True}):
        application = make_app(**settings)
        before = {name: [hook.__name__ for hook in hooks] for name, hooks in application.before_request_funcs.items()}
        assert None not in before
        limits = ["check_rate_limits"] if settings.get("RATELIMIT_ENABLED") else []
        assert all(before.get(name, []) == limits for name in blueprints)  # the routes check the same limits
        after = {name: [hook.__name__ for hook in hooks] for name, hooks in application.after_request_funcs.items()}
        cors = ["cors_after_request"] if settings.get("ALLOWED_ORIGINS") else []
        assert after == {None: ["_name_endpoint", *cors]}  # the routes name the endpoint and add CORS
        handlers = {
            blueprint: {code: set(by_class) for code, by_class in by_code.items()}
            for blueprint, by_code in application.error_handler_spec.items()
        }
        assert handlers == {None: {None: {Exception}}}  # error_response_for, which the routes call too
        for hooks in (application.url_value_preprocessors, application.teardown_request_funcs):
            assert not any(hooks.values())
        assert not application.teardown_appcontext_funcs
        assert not application.url_map.host_matching and application.config["TRUSTED_HOSTS"] is None
        # No session: Flask's default interface, with no key to sign one.
        assert type(application.session_interface) is SecureCookieSessionInterface and not application.secret_key
    for signal in (request_started, request_finished):
        assert not signal.receivers  # nothing listens to what only Flask's dispatch sends
