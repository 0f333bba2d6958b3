"""OPAQUE registration and login over HTTP (API.md: Registration, Login)."""

from __future__ import annotations

from flask import Blueprint, Response, jsonify

from cypher import base64url
from cypher.http import JsonObject, base64url_field, json_body, string_field
from cypher.request_auth import client_info, set_pass_auth_cookie
from cypher.services.opaque_protocol import (
    KE1_BYTES,
    KE3_BYTES,
    REGISTRATION_RECORD_BYTES,
    REGISTRATION_REQUEST_BYTES,
)
from cypher.services.registration import RegistrationStarted
from cypher.wiring import services

bp = Blueprint("opaque", __name__)

# libopaque's fixed key stretching function, which the browser must use too.
KEY_STRETCHING = {"argon2id-custom": {"iterations": 2, "memory": 65536, "parallelism": 1}}
MAX_USERNAME_FIELD = 256  # longer than any valid username; the service gives the precise error
# A loginId is 284 characters and a registrationId 167 (16 more with the longest key id a keys
# file may hold).
MAX_LOGIN_ID_FIELD = 320
MAX_REGISTRATION_ID_FIELD = 256


def registration_response(started: RegistrationStarted) -> JsonObject:
    """The answer to the first step of an OPAQUE registration (new account or password change)."""
    answer: JsonObject = {
        "username": started.username,
        "serverId": started.server_id,
        "registrationResponse": base64url.encode(started.registration_response),
    }
    if started.registration_id is not None:
        answer["registrationId"] = started.registration_id
    return answer


@bp.post("/register/init")
def register_init() -> JsonObject:
    body = json_body()
    started = services().registration.start_registration(
        string_field(body, "username", MAX_USERNAME_FIELD),
        base64url_field(body, "registrationRequest", REGISTRATION_REQUEST_BYTES),
    )
    return registration_response(started)


@bp.post("/register/finish")
def register_finish() -> tuple[JsonObject, int]:
    body = json_body()
    finished = services().registration.finish_registration(
        string_field(body, "username", MAX_USERNAME_FIELD),
        string_field(body, "registrationId", MAX_REGISTRATION_ID_FIELD),
        base64url_field(body, "registrationRecord", REGISTRATION_RECORD_BYTES),
        client_info(),
    )
    enrollment = finished.enrollment
    return {
        "username": finished.username,
        "enrollmentToken": enrollment.token,
        "expiresIn": enrollment.lifetime_seconds,
    }, 201


@bp.post("/login/init")
def login_init() -> JsonObject:
    body = json_body()
    started = services().login.start_login(
        string_field(body, "username", MAX_USERNAME_FIELD),
        base64url_field(body, "startLoginRequest", KE1_BYTES),
        client_info(),
    )
    return {
        "loginId": started.login_id,
        "username": started.username,
        "serverId": started.server_id,
        "loginResponse": base64url.encode(started.login_response),
    }


@bp.post("/login/finish")
def login_finish() -> Response:
    body = json_body()
    finished = services().login.finish_login(
        string_field(body, "loginId", MAX_LOGIN_ID_FIELD),
        base64url_field(body, "finishLoginRequest", KE3_BYTES),
        client_info(),
    )
    pass_auth = finished.pass_auth
    response = jsonify(
        {"username": finished.username, "passAuthToken": pass_auth.token, "expiresIn": pass_auth.lifetime_seconds}
    )
    set_pass_auth_cookie(response, pass_auth.token, pass_auth.lifetime_seconds)
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.get("/api/opaque-config")
def opaque_config() -> JsonObject:
    return {"serverId": services().login.server_id, "keyStretching": KEY_STRETCHING}
