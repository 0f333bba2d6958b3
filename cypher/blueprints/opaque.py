"""OPAQUE registration and login over HTTP (API.md: Registration, Login)."""

from __future__ import annotations

from flask import Blueprint, Request, Response, request

from cypher import base64url
from cypher.blueprints.authn import set_pass_auth_cookie
from cypher.http import base64url_field, json_body, json_response, string_field
from cypher.services.opaque import RegistrationStarted
from cypher.services.opaque_protocol import (
    KE1_BYTES,
    KE3_BYTES,
    REGISTRATION_RECORD_BYTES,
    REGISTRATION_REQUEST_BYTES,
)
from cypher.wiring import services

bp = Blueprint("opaque", __name__)

# libopaque's fixed key stretching function, which the browser must use too.
KEY_STRETCHING = {"argon2id-custom": {"iterations": 2, "memory": 65536, "parallelism": 1}}
MAX_USERNAME_FIELD = 256  # longer than any valid username; the service gives the precise error
MAX_LOGIN_ID_FIELD = 256  # a loginId is 199 characters (215 with the longest key id a keys file may hold)


def registration_response(started: RegistrationStarted) -> Response:
    """The answer to the first step of an OPAQUE registration (new account or password change)."""
    return json_response(
        {
            "username": started.username,
            "serverId": started.server_id,
            "registrationResponse": base64url.encode(started.registration_response),
        }
    )


@bp.post("/register/init")
def register_init() -> Response:
    body = json_body(request)
    started = services().opaque.start_registration(
        string_field(body, "username", MAX_USERNAME_FIELD),
        base64url_field(body, "registrationRequest", REGISTRATION_REQUEST_BYTES),
    )
    return registration_response(started)


@bp.post("/register/finish")
def register_finish() -> Response:
    body = json_body(request)
    finished = services().opaque.finish_registration(
        string_field(body, "username", MAX_USERNAME_FIELD),
        base64url_field(body, "registrationRecord", REGISTRATION_RECORD_BYTES),
    )
    enrollment = finished.enrollment
    return json_response(
        {"username": finished.username, "enrollmentToken": enrollment.token, "expiresIn": enrollment.lifetime_seconds},
        201,
    )


@bp.post("/login/init")
def login_init() -> Response:
    return answer_login_init(request)


# The login's steps are answered by functions of the request: the views call them inside Flask's
# request context, and the login routes (login_routes.py) without one. One code for both.
def answer_login_init(req: Request) -> Response:
    body = json_body(req)
    started = services().opaque.start_login(
        string_field(body, "username", MAX_USERNAME_FIELD),
        base64url_field(body, "startLoginRequest", KE1_BYTES),
    )
    return json_response(
        {
            "loginId": started.login_id,
            "username": started.username,
            "serverId": started.server_id,
            "loginResponse": base64url.encode(started.login_response),
        }
    )


@bp.post("/login/finish")
def login_finish() -> Response:
    return answer_login_finish(request)


def answer_login_finish(req: Request) -> Response:
    body = json_body(req)
    finished = services().opaque.finish_login(
        string_field(body, "loginId", MAX_LOGIN_ID_FIELD),
        base64url_field(body, "finishLoginRequest", KE3_BYTES),
    )
    pass_auth = finished.pass_auth
    response = json_response(
        {"username": finished.username, "passAuthToken": pass_auth.token, "expiresIn": pass_auth.lifetime_seconds}
    )
    set_pass_auth_cookie(response, pass_auth.token, pass_auth.lifetime_seconds)
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.get("/api/opaque-config")
def opaque_config() -> Response:
    return json_response({"serverId": services().opaque.server_id, "keyStretching": KEY_STRETCHING})
