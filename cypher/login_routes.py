"""The login's three POSTs (/login/init, /login/finish, /totp/verify-login) answered at the WSGI
layer, by the same functions the blueprints' views call, without Flask's request context.

A login is three requests, and Flask's dispatch of each (the request context with its URL adapter,
routing, session and signals, the hooks, the teardown) cost about 65 us on the development VM,
a fifth of the server's time for a whole login (docs/performance.md). So a POST to one of these
paths gets exactly what Flask's dispatch gives it in this application, and nothing more:
- an app context (current_app, the services, the config) and a Flask Request of its environ;
- the rate limits of ratelimit.py, counted under the endpoint's name, as the Flask hook counts;
- the blueprint's answer function (blueprints/opaque.py, blueprints/totp.py), and for anything
  it raises the error answer every view gets (http.error_response_for);
- the endpoint's name in the environ, for metrics and logs (observability.py);
- the headers flask-cors adds, as create_app sets it up, to a request from Cypher's own pages
  when Cypher's own origin is listed in CYPHER_ALLOWED_ORIGINS (as production deployments list
  it): the Origin echoed, with credentials, and Vary: Origin when more than one is listed.
Flask answers the rest itself: other methods (OPTIONS preflights, 405), other paths, and every
request from another origin, whose CORS answer matters to the browser and stays flask-cors's.
tests/test_login_routes.py compares both paths' answers, and fails when the application gains a
hook that this module does not stand in for.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from flask import Flask, Request, Response

from cypher.blueprints.authn import own_origin
from cypher.blueprints.opaque import answer_login_finish, answer_login_init
from cypher.blueprints.totp import answer_verify_login
from cypher.http import WsgiApp, error_response_for
from cypher.observability import ENDPOINT_KEY
from cypher.ratelimit import AddressLimits

# Path: (the endpoint's name, as Flask routes it, for rate limits, metrics and logs; its answer).
ROUTES: dict[str, tuple[str, Callable[[Request], Response]]] = {
    "/login/init": ("opaque.login_init", answer_login_init),
    "/login/finish": ("opaque.login_finish", answer_login_finish),
    "/totp/verify-login": ("totp.verify_login", answer_verify_login),
}


class LoginRoutes:
    """WSGI middleware answering POSTs to ROUTES; everything else goes to `wsgi_app` (Flask)."""

    def __init__(self, app: Flask, wsgi_app: WsgiApp, limits: AddressLimits | None) -> None:
        self._app = app
        self._wsgi_app = wsgi_app
        self._limits = limits
        allowed_origins: list[str] = app.config["ALLOWED_ORIGINS"]
        # flask-cors compares origins without regard to case (config.py refuses patterns).
        self._cors_origins = {origin.casefold() for origin in allowed_origins}
        self._cors_vary = len(allowed_origins) > 1  # flask-cors adds Vary: Origin then

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        route = ROUTES.get(environ.get("PATH_INFO", ""))
        if route is None or environ.get("REQUEST_METHOD") != "POST":
            return self._wsgi_app(environ, start_response)
        endpoint, answer = route
        req = self._app.request_class(environ)
        cors_headers = self._cors_headers(req)
        if cors_headers is None:
            return self._wsgi_app(environ, start_response)
        with self._app.app_context():
            try:
                if self._limits is not None:
                    self._limits.check(req.remote_addr or "", endpoint)
                response = answer(req)
            except Exception as error:  # as Flask's dispatch hands every error to error_response_for
                response = error_response_for(error, req)
        response.headers.extend(cors_headers)
        environ[ENDPOINT_KEY] = endpoint
        return response(environ, start_response)

    def _cors_headers(self, req: Request) -> list[tuple[str, str]] | None:
        """The CORS headers flask-cors would add to this request's answer, or None for a request
        from another origin (or one asking about private networks), which Flask answers."""
        origin = req.environ.get("HTTP_ORIGIN")
        if not self._cors_origins or origin is None:
            return []  # no CORS set up, or not a CORS request (flask-cors: always_send=False)
        if "HTTP_ACCESS_CONTROL_REQUEST_PRIVATE_NETWORK" in req.environ:
            return None
        if origin.rstrip("/").casefold() != own_origin(req).casefold():
            return None
        if origin.casefold() not in self._cors_origins:
            return []
        headers = [("Access-Control-Allow-Origin", origin), ("Access-Control-Allow-Credentials", "true")]
        return [*headers, ("Vary", "Origin")] if self._cors_vary else headers
