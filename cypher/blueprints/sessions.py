"""Sessions over HTTP (API.md: Sessions): refresh, verify, list, revoke, log out."""

from __future__ import annotations

import re
from datetime import datetime

from flask import Blueprint, Response

from cypher.http import JsonObject, optional_json_body
from cypher.request_auth import (
    client_info,
    current_principal,
    ended_session_response,
    session_cookies,
    session_response,
    token_from,
)
from cypher.services.client_info import device_name
from cypher.services.errors import CypherError, InvalidToken, NotFound
from cypher.wiring import services

bp = Blueprint("sessions", __name__, url_prefix="/api")
SESSION_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")


def _timestamp(moment: datetime) -> str:
    return moment.isoformat(timespec="seconds")


@bp.post("/refresh-token")
def refresh_token() -> Response:
    body = optional_json_body()
    token = token_from(body, "refreshToken", session_cookies().refresh)
    if token is None:
        raise InvalidToken("Send refreshToken or the refresh cookie.")
    try:
        return session_response(services().sessions.refresh(token, client_info()))
    except InvalidToken as error:
        # A dead refresh token must not linger in the browser.
        return ended_session_response({"error": error.message, "code": error.code}, error.status)


@bp.post("/verify-access")
def verify_access() -> JsonObject | tuple[JsonObject, int]:
    body = optional_json_body()
    try:
        token = token_from(body, "accessToken", session_cookies().access, changes_state=False)
        if token is None:
            raise InvalidToken("Send an access token.")
        principal = services().sessions.verify(token)
    except CypherError as error:
        return {"valid": False, "error": error.message, "code": error.code}, 401
    return {
        "valid": True,
        "username": principal.username,
        "sessionId": principal.session_id,
        "expiresAt": _timestamp(principal.expires_at),
    }


@bp.post("/logout")
def logout() -> Response:
    services().sessions.logout(current_principal(), client_info())
    return ended_session_response({"revoked": 1})


@bp.post("/logout-all")
def logout_all() -> Response:
    revoked = services().sessions.logout_all(current_principal(), client_info())
    return ended_session_response({"revoked": revoked})


@bp.get("/sessions")
def list_sessions() -> JsonObject:
    views = services().sessions.list(current_principal())
    return {
        "sessions": [
            {
                "id": view.id,
                "createdAt": _timestamp(view.created_at),
                "lastSeenAt": _timestamp(view.last_seen_at),
                "ip": view.ip,
                "userAgent": view.user_agent,
                "device": device_name(view.user_agent),
                "current": view.current,
            }
            for view in views
        ]
    }


@bp.delete("/sessions/<session_id>")
def revoke_session(session_id: str) -> Response:
    principal = current_principal()
    if not SESSION_ID.fullmatch(session_id):
        raise NotFound("No such session.")  # no such id was ever issued
    services().sessions.revoke(principal, session_id, client_info())
    if session_id == principal.session_id:
        return ended_session_response(None, 204)
    return Response(status=204)
