"""Operations endpoints (API.md: Gateway and operations). GET /auth/verify, the nginx gateway,
is answered before Flask: cypher/forward_auth.py.

/healthz says only that the process answers (a supervisor restarts it when it does not); /readyz
says whether it can serve: not without the database (503); without the Redis that counts the rate
limits it still serves, counting per process, so it answers 200 "degraded" (a load balancer that
drops nodes on 503 would otherwise drop every one of them during a Redis outage). Neither is rate
limited; each costs at most one round trip to each.
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
    if parts["database"] == "up":
        return {"status": "degraded" if parts.get("redis") == "down" else "ready", **parts}
    response = error_response(503, "not_ready", "Not ready: the database does not answer.")
    response.headers["Retry-After"] = str(DATABASE_RETRY_AFTER_SECONDS)
    return response


def _database_answers() -> bool:
    try:
        services().store.ping()
    except SQLAlchemyError as error:
        log.warning("readiness: database unreachable: %s", type(error).__name__)
        return False
    return True
