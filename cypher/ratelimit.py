"""Per-client-address rate limits on every authentication endpoint (Flask-Limiter).

Counters live in `CYPHER_RATELIMIT_STORAGE`: `memory://` for one process, `redis://...` when
several workers or machines serve, so that a limit reached through one holds on all.
"""

from __future__ import annotations

from flask import Blueprint, Flask
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address


def install_rate_limits(app: Flask, blueprints: list[Blueprint]) -> Limiter:
    limiter = Limiter(
        get_remote_address,
        app=app,
        storage_uri=app.config["RATELIMIT_STORAGE"],
        headers_enabled=True,  # Retry-After on a 429, as the API says
        enabled=app.config["RATELIMIT_ENABLED"],
        key_prefix=app.config["RATELIMIT_KEY_PREFIX"],
        strategy="moving-window",
    )
    for blueprint in blueprints:
        limiter.limit(app.config["RATELIMIT_AUTH"])(blueprint)
    return limiter
