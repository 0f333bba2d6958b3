"""Operations endpoints (API.md: Gateway and operations)."""

from __future__ import annotations

import logging

from flask import Blueprint, Response, jsonify
from sqlalchemy.exc import SQLAlchemyError

from cypher.blueprints.authn import ACCESS_COOKIE, token_from
from cypher.http import error_response
from cypher.services.errors import InvalidToken
from cypher.wiring import services

bp = Blueprint("gateway", __name__)
log = logging.getLogger(__name__)


@bp.get("/healthz")
def healthz() -> Response:
    try:
        services().store.ping()
    except SQLAlchemyError as error:
        log.warning("health check: database unreachable: %s", type(error).__name__)
        return error_response(503, "database_unavailable", "The database cannot be reached.")
    return jsonify(status="ok")


@bp.get("/auth/verify")
def auth_verify() -> Response:
    """For nginx's auth_request: 200 with who is logged in, or 401. Only the token and session."""
    token = token_from(None, None, ACCESS_COOKIE, changes_state=False)
    try:
        if token is None:
            raise InvalidToken("Log in first.")
        principal = services().sessions.verify(token)
    except InvalidToken as error:
        return error_response(401, error.code, error.message)
    response = Response(status=200)
    response.headers["X-Cypher-User"] = principal.username
    response.headers["X-Cypher-Session"] = principal.session_id
    response.headers["Cache-Control"] = "no-store"
    return response
