"""Account actions over HTTP (API.md: Account); each needs a session and a fresh TOTP code."""

from __future__ import annotations

from flask import Blueprint, Response, request

from cypher.blueprints.authn import current_principal, ended_session_response
from cypher.blueprints.opaque import registration_response
from cypher.http import base64url_field, json_body, json_response, string_field
from cypher.services.opaque_protocol import REGISTRATION_RECORD_BYTES, REGISTRATION_REQUEST_BYTES
from cypher.wiring import services

bp = Blueprint("account", __name__, url_prefix="/account")

MAX_CODE_FIELD = 16


@bp.post("/password/init")
def password_init() -> Response:
    principal = current_principal(request)
    body = json_body(request)
    started = services().accounts.start_password_change(
        principal, base64url_field(body, "registrationRequest", REGISTRATION_REQUEST_BYTES)
    )
    return registration_response(started)


@bp.post("/password/finish")
def password_finish() -> Response:
    principal = current_principal(request)
    body = json_body(request)
    revoked = services().accounts.finish_password_change(
        principal,
        base64url_field(body, "registrationRecord", REGISTRATION_RECORD_BYTES),
        string_field(body, "code", MAX_CODE_FIELD),
    )
    return json_response({"username": principal.username, "revokedSessions": revoked})


@bp.post("/recovery-codes")
def recovery_codes() -> Response:
    principal = current_principal(request)
    body = json_body(request)
    codes = services().accounts.regenerate_recovery_codes(principal, string_field(body, "code", MAX_CODE_FIELD))
    response = json_response({"recoveryCodes": codes})
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.delete("")
def delete_account() -> Response:
    principal = current_principal(request)
    body = json_body(request)
    services().accounts.delete(principal, string_field(body, "code", MAX_CODE_FIELD))
    response = ended_session_response(None)
    response.status_code = 204
    return response
