"""API.md's conventions: JSON in, the one error shape out, and never a 500 for bad input."""

from __future__ import annotations

import io
import json
import socket
import struct
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
from flask import Flask, jsonify, request
from flask.testing import FlaskClient
from werkzeug.test import EnvironBuilder, run_wsgi_app

from cypher import create_app
from cypher.http import json_body
from cypher.services import errors
from cypher.services.errors import CypherError
from cypher.wiring import Services
from tests.test_opaque_api import _error, row_counts

OPAQUE_POSTS = ["/register/init", "/register/finish", "/login/init", "/login/finish"]


@pytest.mark.parametrize("path", OPAQUE_POSTS)
@pytest.mark.parametrize(
    ("data", "content_type"),
    [
        (b"{not json", "application/json"),
        (b"[1, 2]", "application/json"),
        (b'"a string"', "application/json"),
        (b"\xff\xfe{}", "application/json"),
        (b"[" * 30_000 + b"]" * 30_000, "application/json"),
        (b'{"username": "alice"}', "text/plain"),
        (b"username=alice", "application/x-www-form-urlencoded"),
        (b"", "application/json"),
    ],
)
def test_bodies_that_are_not_json_objects_get_400(
    client: FlaskClient, services: Services, path: str, data: bytes, content_type: str
) -> None:
    _error(client.post(path, data=data, content_type=content_type), 400, "invalid_request")
    assert row_counts(services) == {"users": 0, "registration_states": 0, "spent_logins": 0}


@pytest.mark.parametrize("path", OPAQUE_POSTS)
def test_a_body_over_the_limit_gets_413(client: FlaskClient, services: Services, path: str) -> None:
    padding = "x" * (64 * 1024)
    response = client.post(
        path, json={"username": "alice", "registrationRequest": padding, "startLoginRequest": padding}
    )
    _error(response, 413, "body_too_large")
    assert row_counts(services) == {"users": 0, "registration_states": 0, "spent_logins": 0}


def test_a_body_read_once_can_be_read_again(app: Flask, client: FlaskClient) -> None:
    """Whatever reads the body after json_body still gets all of it."""

    def echo() -> bytes:
        json_body()
        return request.get_data()

    app.add_url_rule("/echo", view_func=echo, methods=["POST"])
    assert client.post("/echo", data=b'{"a": 1}', content_type="application/json").data == b'{"a": 1}'


def test_a_body_shorter_than_its_content_length_gets_400(client: FlaskClient, services: Services) -> None:
    """A client that stops early: what arrived is refused, even when it happens to be valid JSON."""
    body = b'{"username": "alice", "startLoginRequest": "x"}'
    response = client.post(
        "/login/init",
        data=body,
        content_type="application/json",
        environ_overrides={"CONTENT_LENGTH": str(len(body) + 10)},
    )
    _error(response, 400, "invalid_request")
    assert row_counts(services) == {"users": 0, "registration_states": 0, "spent_logins": 0}


def test_a_client_that_resets_mid_body_gets_400(app: Flask, services: Services) -> None:
    """A real TCP reset on loopback while the body is being read: a 400, not a 500."""
    with socket.create_server(("127.0.0.1", 0)) as server:
        sender = socket.create_connection(server.getsockname())
        receiver, _ = server.accept()
    with receiver, receiver.makefile("rb") as stream:
        sender.sendall(b'{"username": "alice", ')
        sender.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        sender.close()  # linger 0: the peer sees a reset, not an orderly end
        time.sleep(0.05)
        environ = EnvironBuilder(path="/login/init", method="POST", content_type="application/json").get_environ()
        environ.update({"CONTENT_LENGTH": "200", "wsgi.input": stream})
        body, status, _headers = run_wsgi_app(app, environ, buffered=True)  # the socket cannot seek
    assert status == "400 BAD REQUEST"
    assert json.loads(b"".join(body))["code"] == "invalid_request"
    assert row_counts(services) == {"users": 0, "registration_states": 0, "spent_logins": 0}


LIMIT = 64 * 1024


def _padded(size: int) -> bytes:
    """A JSON object of exactly `size` bytes that reaches the field checks of /login/init."""
    body = b'{"username": "alice", "startLoginRequest": "x"}'
    return body + b" " * (size - len(body))


@pytest.mark.parametrize(("size", "status"), [(100, 400), (LIMIT, 400), (LIMIT + 1, 413), (80 * 1024, 413)])
def test_a_body_without_content_length_is_held_to_the_limit(
    app: Flask, services: Services, size: int, status: int
) -> None:
    """Chunked requests, as servers pass them (no Content-Length, wsgi.input_terminated): one within
    the limit reaches the field checks (400 invalid_message), one a byte over it is 413, never cut
    at the limit and read."""
    environ = EnvironBuilder(
        path="/login/init", method="POST", input_stream=io.BytesIO(_padded(size)), content_type="application/json"
    ).get_environ()
    del environ["CONTENT_LENGTH"]  # EnvironBuilder writes "0" for a stream it cannot measure
    environ["wsgi.input_terminated"] = True
    body, status_line, _headers = run_wsgi_app(app, environ, buffered=True)  # not the test client: it adds a length
    assert int(status_line[:3]) == status
    assert json.loads(b"".join(body))["code"] == ("invalid_message" if status == 400 else "body_too_large")
    assert row_counts(services) == {"users": 0, "registration_states": 0, "spent_logins": 0}


@pytest.mark.parametrize(("size", "status"), [(LIMIT, 400), (LIMIT + 1, 413)])
def test_a_body_with_content_length_is_held_to_the_limit(client: FlaskClient, size: int, status: int) -> None:
    response = client.post("/login/init", data=_padded(size), content_type="application/json")
    assert response.status_code == status
    assert response.get_json()["code"] == ("invalid_message" if status == 400 else "body_too_large")


@pytest.mark.parametrize("path", OPAQUE_POSTS)
def test_missing_and_oversized_fields_get_400(client: FlaskClient, path: str) -> None:
    _error(client.post(path, json={}), 400, "invalid_request")
    response = client.post(path, json={"username": "a" * 10_000, "loginId": "b" * 10_000})
    _error(response, 400, "invalid_request")


def test_unknown_paths_and_methods_keep_the_shape(client: FlaskClient) -> None:
    _error(client.get("/no/such/page"), 404, "not_found")
    response = client.get("/register/init")
    _error(response, 405, "method_not_allowed")
    assert set(response.headers["Allow"].split(", ")) == {"OPTIONS", "POST"}


def test_an_unexpected_error_is_a_bare_500(app: Flask, client: FlaskClient, caplog: pytest.LogCaptureFixture) -> None:
    def explode() -> str:
        raise RuntimeError("secret detail that must not leak")

    app.add_url_rule("/explode", view_func=explode)
    app.config["PROPAGATE_EXCEPTIONS"] = False
    response = client.get("/explode")
    _error(response, 500, "internal_error")
    assert b"secret detail" not in response.data and b"Traceback" not in response.data
    assert response.headers["X-Content-Type-Options"] == "nosniff" and len(response.headers["X-Request-ID"]) == 16
    assert "secret detail" in caplog.text  # the operator's log keeps the cause
    logged = [record for record in caplog.records if record.getMessage() == "unhandled error on GET /explode"]
    assert len(logged) == 1 and logged[0].exc_info is not None  # with its traceback


def test_healthz(client: FlaskClient) -> None:
    response = client.get("/healthz")
    assert response.status_code == 200 and response.get_json() == {"status": "ok"}


def test_without_a_database_healthz_answers_and_readyz_and_every_endpoint_say_503(tmp_path: Path) -> None:
    app = create_app(
        {
            "TESTING": True,
            "DATABASE_URL": f"sqlite:///{tmp_path / 'missing-dir' / 'cypher.db'}",
            "KEYS_FILE": str(tmp_path / "keys.json"),
            "MIGRATE_ON_START": False,
        }
    )
    client = app.test_client()
    assert client.get("/healthz").get_json() == {"status": "ok"}  # the process answers
    not_ready = client.get("/readyz")
    _error(not_ready, 503, "not_ready")
    assert not_ready.get_json()["error"] == "Not ready: the database does not answer."  # no Redis: memory://
    assert int(not_ready.headers["Retry-After"]) > 0
    refused = client.post("/login/init", json={"username": "alice", "startLoginRequest": "A" * 128})
    _error(refused, 503, "database_unavailable")
    assert int(refused.headers["Retry-After"]) > 0
    assert b"missing-dir" not in refused.data and b"sqlite" not in refused.data.lower()
    assert client.get("/api/opaque-config").status_code == 200  # what needs no database is still served


def test_readyz_when_everything_answers(client: FlaskClient) -> None:
    response = client.get("/readyz")
    assert response.status_code == 200 and response.get_json() == {"status": "ready", "database": "up"}


def test_a_nul_character_is_a_400_not_a_database_error(client: FlaskClient) -> None:
    body = {"loginId": "a\u0000b", "finishLoginRequest": "A" * 86}
    _error(client.post("/login/finish", json=body), 400, "invalid_request")
    _error(
        client.post("/login/init", json={"username": "al\u0000ce", "startLoginRequest": "A" * 128}),
        400,
        "invalid_request",
    )


def test_a_malformed_session_id_is_not_found(client: FlaskClient, actions, user) -> None:  # type: ignore[no-untyped-def]
    tokens = actions.session(user)
    for bad in ("a%00b", "x" * 65, "a.b"):
        response = client.delete(f"/api/sessions/{bad}", headers={"Authorization": f"Bearer {tokens['accessToken']}"})
        _error(response, 404, "not_found")


@pytest.mark.parametrize(
    "body",
    [
        {"username": "alice", "expiresIn": 900, "valid": True, "ip": None},
        {"userAgent": 'Mozilla/5.0 (X11; Linux) \u00e9\u4e2d\U0001f600 "quoted" \\ </script>\n'},
        {"sessions": [{"id": "a", "current": False}, {"id": "b", "current": True}], "empty": {}},
        {"z": 1, "a": 2},  # the order given, not sorted
    ],
)
@pytest.mark.parametrize("debug", [False, True])
def test_bodies_are_compact_ascii_in_the_order_given(app: Flask, body: dict[str, object], debug: bool) -> None:
    """The bytes clients have always had: no spaces, non-ASCII escaped, keys unsorted, one newline;
    the same under `flask run --debug`."""
    app.debug = debug
    with app.test_request_context():
        response = jsonify(body)
    assert response.get_data() == json.dumps(body, separators=(",", ":")).encode("ascii") + b"\n"
    assert response.content_type == "application/json"
    assert json.loads(response.get_data()) == body


def test_a_view_returning_a_dict_gets_the_same_bytes(app: Flask, client: FlaskClient) -> None:
    body = {"z": 1, "a": "\u00e9"}
    app.add_url_rule("/dict", view_func=lambda: (body, 201))
    response = client.get("/dict")
    assert (response.status_code, response.data) == (201, b'{"z":1,"a":"\\u00e9"}\n')


def test_json_refuses_what_json_cannot_hold(app: Flask) -> None:
    """A datetime is a programming error here (views format their own timestamps), not an HTTP date."""
    with app.test_request_context(), pytest.raises(TypeError):
        jsonify({"at": datetime.now(UTC)})


@pytest.mark.parametrize(
    ("content_type", "is_json"),
    [
        ("application/json", True),
        ("Application/JSON; charset=utf-8", True),
        (' application/json ;charset="utf-8"', True),
        ("application/problem+json", True),
        ("application/vnd.api+json; version=2", True),
        ("application/jsonx", False),
        ("text/json", False),
        ("text/plain+json", False),
        ("application/x-www-form-urlencoded", False),
        ("multipart/form-data; boundary=json", False),
        ("json", False),
        ("", False),
    ],
)
def test_only_json_media_types_are_read_as_json(client: FlaskClient, content_type: str, is_json: bool) -> None:
    """application/json and application/*+json, whatever their case and parameters, reach the
    field checks (invalid_message); any other type is refused before (invalid_request)."""
    body = b'{"username": "alice", "startLoginRequest": "x"}'
    response = client.post("/login/init", data=body, headers={"Content-Type": content_type})
    _error(response, 400, "invalid_message" if is_json else "invalid_request")


@pytest.mark.parametrize("declared", ["+12", " 12", "1_2", "12.0", "\u0661\u0662", "-1", ""])
def test_a_content_length_that_is_not_plain_digits_is_a_400(app: Flask, services: Services, declared: str) -> None:
    """Not a hang and not a 500: a 400 with the error shape, storing nothing."""
    before = row_counts(services)
    data = b'{"username": "alice", "registrationRequest": "AAAA"}'
    environ = EnvironBuilder(path="/register/init", method="POST", data=data, content_type="application/json")
    environ_dict = environ.get_environ()
    environ_dict["CONTENT_LENGTH"] = declared
    body, status, _headers = run_wsgi_app(app, environ_dict, buffered=True)
    assert status.startswith("400 ")
    assert json.loads(b"".join(body))["code"] in {"invalid_request", "invalid_message"}
    assert row_counts(services) == before


def test_each_domain_error_is_answered_with_its_own_status(app: Flask, client: FlaskClient) -> None:
    raised = [value for value in vars(errors).values() if isinstance(value, type) and issubclass(value, CypherError)]
    assert len(raised) > 10

    def fail(name: str) -> str:
        raise getattr(errors, name)()

    app.add_url_rule("/raise/<name>", view_func=fail)
    for error_class in raised:
        response = client.get(f"/raise/{error_class.__name__}")
        assert response.status_code == error_class.status
        assert response.get_json() == {"error": error_class.message, "code": error_class.code}
    assert {errors.InvalidToken.status, errors.NotFound.status, errors.TooManyAttempts.status} == {401, 404, 429}


def test_a_new_error_code_must_say_its_status() -> None:
    """Else it would inherit its parent's status (400 from CypherError) without anyone deciding so."""
    with pytest.raises(TypeError, match="needs its own status"):

        class Teapot(CypherError):
            code = "teapot"

    class Expired(errors.InvalidToken):  # the parent's code, so the parent's status
        message = "Gone."

    assert Expired.status == 401
