"""Operations endpoints (API.md: Gateway and operations). GET /auth/verify, the nginx gateway,
is answered before Flask: cypher/forward_auth.py.

/healthz says only that the process answers (a supervisor restarts it when it does not); /readyz
says whether what it needs answers too: the database, and Redis when rate limits are counted
there. Neither is rate limited; each costs at most one round trip to each.
"""

from __future__ import annotations

import logging

from flask import Blueprint, Response, current_app
from sqlalchemy.exc import SQLAlchemyError

from cypher.http import DATABASE_RETRY_AFTER_SECONDS, JsonObject, error_response
from cypher.ratelimit import EXTENSION_NAME as RATE_LIMITS
from cypher.ratelimit import AddressLimits
from cypher.wiring import services

bp = Blueprint("gateway", __name__)
log = logging.getLogger(__name__)


@bp.get("/healthz")
def healthz() -> JsonObject:
    return {"status": "ok"}


@bp.get("/readyz")
def readyz() -> JsonObject | Response:
    parts = {"database": "up" if _database_answers() else "down"}
    limits: AddressLimits | None = current_app.extensions.get(RATE_LIMITS)
    redis_answers = None if limits is None else limits.shared_storage_answers()
    if redis_answers is not None:
        parts["redis"] = "up" if redis_answers else "down"
    down = [name for name, state in parts.items() if state == "down"]
    if not down:
        return {"status": "ready", **parts}
    what = " and ".join({"database": "the database", "redis": "Redis (rate limits)"}[name] for name in down)
    verb = "does" if len(down) == 1 else "do"
    response = error_response(503, "not_ready", f"Not ready: {what} {verb} not answer.")
    response.headers["Retry-After"] = str(DATABASE_RETRY_AFTER_SECONDS)
    return response


def _database_answers() -> bool:
    try:
        services().store.ping()
    except SQLAlchemyError as error:
        log.warning("readiness: database unreachable: %s", type(error).__name__)
        return False
    return True
