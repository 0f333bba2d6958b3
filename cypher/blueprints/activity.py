"""The caller's own security activity over HTTP (API.md: Account activity), for the account page."""

from __future__ import annotations

from flask import Blueprint, Response, jsonify

from cypher.request_auth import current_principal
from cypher.services.audit import describe
from cypher.services.client_info import device_name
from cypher.wiring import services

bp = Blueprint("activity", __name__, url_prefix="/api/account")


@bp.get("/activity")
def activity() -> Response:
    events = services().audit.recent(current_principal().user_id)
    response = jsonify(
        {
            "events": [
                {
                    "occurredAt": event.occurred_at.isoformat(timespec="seconds"),
                    "event": event.event,
                    "description": describe(event),
                    "ip": event.ip,
                    "userAgent": event.user_agent,
                    "device": device_name(event.user_agent),
                }
                for event in events
            ]
        }
    )
    # Where the account was used from is the account owner's business only: no shared cache keeps it.
    response.headers["Cache-Control"] = "no-store"
    return response
