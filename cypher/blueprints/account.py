"""Account actions over HTTP (API.md: Account); each needs a session and a fresh TOTP code."""

from __future__ import annotations

from flask import Blueprint, Response, jsonify

from cypher.blueprints.opaque import registration_response
from cypher.http import JsonObject, base64url_field, json_body, string_field
from cypher.request_auth import client_info, current_principal, ended_session_response
from cypher.services.opaque_protocol import REGISTRATION_RECORD_BYTES, REGISTRATION_REQUEST_BYTES
from cypher.wiring import services

bp = Blueprint("account", __name__, url_prefix="/account")

MAX_CODE_FIELD = 16


@bp.post("/password/init")
def password_init() -> JsonObject:
    principal = current_principal()
    body = json_body()
    started = services().accounts.start_password_change(
        principal, base64url_field(body, "registrationRequest", REGISTRATION_REQUEST_BYTES)
    )
    return registration_response(started)


@bp.post("/password/finish")
def password_finish() -> JsonObject:
    principal = current_principal()
    body = json_body()
    revoked = services().accounts.finish_password_change(
        principal,
        base64url_field(body, "registrationRecord", REGISTRATION_RECORD_BYTES),
        string_field(body, "code", MAX_CODE_FIELD),
        client_info(),
    )
    return {"username": principal.username, "revokedSessions": revoked}


@bp.post("/recovery-codes")
def recovery_codes() -> Response:
    principal = current_principal()
    body = json_body()
    codes = services().accounts.regenerate_recovery_codes(
        principal, string_field(body, "code", MAX_CODE_FIELD), client_info()
    )
    response = jsonify({"recoveryCodes": codes})
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.delete("")
def delete_account() -> Response:
    principal = current_principal()
    body = json_body()
    services().accounts.delete(principal, string_field(body, "code", MAX_CODE_FIELD), client_info())
    return ended_session_response(None, 204)
