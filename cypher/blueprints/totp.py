"""TOTP enrolment and the login's second step over HTTP (API.md: Registration, Login)."""

from __future__ import annotations

from flask import Blueprint, Response, jsonify

from cypher.http import JsonObject, json_body, optional_string_field, string_field
from cypher.request_auth import (
    bearer_token,
    clear_cookie,
    client_info,
    session_cookies,
    session_response,
    token_from,
)
from cypher.services.errors import InvalidRequest, InvalidToken
from cypher.wiring import services

bp = Blueprint("totp", __name__, url_prefix="/totp")

MAX_CODE_FIELD = 16
MAX_RECOVERY_CODE_FIELD = 64


def _enrollment_token() -> str:
    token = bearer_token()
    if token is None:
        raise InvalidToken("Send the enrolment token as Authorization: Bearer <token>.")
    return token


@bp.post("/setup")
def setup() -> Response:
    json_body()  # the body is {}; anything but a JSON object is still refused
    enrollment = services().totp.setup(_enrollment_token())
    response = jsonify(
        {"secret": enrollment.secret, "otpauthUri": enrollment.otpauth_uri, "qrCode": enrollment.qr_code}
    )
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.post("/verify-setup")
def verify_setup() -> Response:
    body = json_body()
    activated = services().totp.verify_setup(
        _enrollment_token(), string_field(body, "code", MAX_CODE_FIELD), client_info()
    )
    # The account is active and this browser logged in: the answer of verify-login, and the codes.
    return session_response(activated.session, {"recoveryCodes": activated.recovery_codes})


@bp.post("/verify-login")
def verify_login() -> Response:
    body = json_body()
    code, recovery_code = _one_code(body)
    pass_auth = token_from(body, "passAuthToken", session_cookies().pass_auth)
    tokens = services().totp.verify_login(pass_auth, code, recovery_code, client_info())
    response = session_response(tokens)
    clear_cookie(response, session_cookies().pass_auth)
    return response


def _one_code(body: JsonObject) -> tuple[str | None, str | None]:
    code = optional_string_field(body, "code", MAX_CODE_FIELD)
    recovery_code = optional_string_field(body, "recoveryCode", MAX_RECOVERY_CODE_FIELD)
    if (code is None) == (recovery_code is None):
        raise InvalidRequest("Send either code or recoveryCode.")
    return code, recovery_code
