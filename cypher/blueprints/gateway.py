"""Operations endpoints (API.md: Gateway and operations). GET /auth/verify, the nginx gateway,
is answered before Flask: cypher/forward_auth.py."""

from __future__ import annotations

import logging

from flask import Blueprint, Response
from sqlalchemy.exc import SQLAlchemyError

from cypher.http import JsonObject, error_response
from cypher.wiring import services

bp = Blueprint("gateway", __name__)
log = logging.getLogger(__name__)


@bp.get("/healthz")
def healthz() -> JsonObject | Response:
    try:
        services().store.ping()
    except SQLAlchemyError as error:
        log.warning("health check: database unreachable: %s", type(error).__name__)
        return error_response(503, "database_unavailable", "The database cannot be reached.")
    return {"status": "ok"}
