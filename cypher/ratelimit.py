"""Per-client-address rate limits on every authentication endpoint (Flask-Limiter).

Counters live in `CYPHER_RATELIMIT_STORAGE`: `memory://` for one process, `redis://...` when
several workers or machines serve, so that a limit reached through one holds on all.
"""

from __future__ import annotations

from flask import Blueprint, Flask, request
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address


class BlueprintLimiter(Limiter):
    """Flask-Limiter, consulted only for requests to the blueprints it limits.

    Flask-Limiter checks every request of the application, limited or not; on a request no
    limit covers (the pages, /healthz) that check cost a tenth of the request. Limits themselves
    are Flask-Limiter's, unchanged. (The nginx gateway's /auth/verify never reaches Flask.)
    """

    def __init__(self, app: Flask, limited: list[Blueprint], **options: object) -> None:
        self._limited_blueprints = frozenset(blueprint.name for blueprint in limited)
        super().__init__(get_remote_address, app=app, **options)  # type: ignore[arg-type]

    def _check_request_limit(self, callable_name: str | None = None, in_middleware: bool = True) -> None:
        if request.blueprint in self._limited_blueprints:
            super()._check_request_limit(callable_name, in_middleware)


def install_rate_limits(app: Flask, blueprints: list[Blueprint]) -> Limiter:
    limiter = BlueprintLimiter(
        app,
        blueprints,
        storage_uri=app.config["RATELIMIT_STORAGE"],
        headers_enabled=True,  # Retry-After on a 429, as the API says
        enabled=app.config["RATELIMIT_ENABLED"],
        key_prefix=app.config["RATELIMIT_KEY_PREFIX"],
        strategy="moving-window",
    )
    for blueprint in blueprints:
        limiter.limit(app.config["RATELIMIT_AUTH"])(blueprint)
    return limiter
