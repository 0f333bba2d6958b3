"""GET /auth/verify, the question nginx's auth_request asks (API.md: Gateway and operations),
answered at the WSGI layer, before Flask.

nginx asks it once for every request to every application it guards, so it is the hottest path
of a deployment. Flask's dispatch (request context, routing, hooks, the response object) cost
more than the check itself (docs/performance.md), so this path does only what the gateway needs:
read the access token, check it and its session, answer. The request id, security headers,
metrics and log line are added around it by the same middleware as for every other response
(see create_app), and the session check is the one every other endpoint uses.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from typing import Any

from flask.json.provider import JSONProvider
from werkzeug.exceptions import SecurityError
from werkzeug.sansio.http import parse_cookie
from werkzeug.wsgi import get_host

from cypher.http import (
    DATABASE_RETRY_AFTER_SECONDS,
    DATABASE_UNAVAILABLE,
    HOST_REFUSED_CODE,
    HOST_REFUSED_MESSAGE,
    WsgiApp,
    database_unavailable,
)
from cypher.observability import ENDPOINT_KEY
from cypher.request_auth import bearer_from
from cypher.services.errors import InvalidToken
from cypher.services.sessions import SessionService

PATH = "/auth/verify"
ENDPOINT = "gateway.auth_verify"  # its name in metrics and logs
METHODS = ("GET", "HEAD")

log = logging.getLogger(__name__)

Answer = tuple[str, list[tuple[str, str]], bytes]


class ForwardAuth:
    """WSGI middleware answering GET and HEAD /auth/verify; everything else goes to `wsgi_app`.

    `access_cookie` is the access cookie's name and `allowed_hosts` Flask's TRUSTED_HOSTS, both as
    create_app settled them for the rest of the application.
    """

    def __init__(
        self,
        wsgi_app: WsgiApp,
        sessions: SessionService,
        json: JSONProvider,
        access_cookie: str,
        allowed_hosts: list[str],
    ) -> None:
        self._wsgi_app = wsgi_app
        self._sessions = sessions
        self._json = json  # the application's, so error bodies are written as every other
        self._access_cookie = access_cookie
        self._allowed_hosts = allowed_hosts

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if environ.get("PATH_INFO") != PATH:
            return self._wsgi_app(environ, start_response)
        environ[ENDPOINT_KEY] = ENDPOINT
        method = environ.get("REQUEST_METHOD", "")
        if not self._host_allowed(environ):
            status, headers, body = self._error("400 BAD REQUEST", HOST_REFUSED_CODE, HOST_REFUSED_MESSAGE)
        elif method in METHODS:
            status, headers, body = self._verify(environ)
        else:
            status, headers, body = self._error("405 METHOD NOT ALLOWED", "method_not_allowed", "Use GET or HEAD.")
            headers.append(("Allow", ", ".join(METHODS)))
        start_response(status, headers)
        return [b"" if method == "HEAD" else body]

    def _host_allowed(self, environ: dict[str, Any]) -> bool:
        """The check Flask makes of TRUSTED_HOSTS for every other request (werkzeug's get_host)."""
        try:
            get_host(environ, self._allowed_hosts)
        except SecurityError:
            return False
        return True

    def _verify(self, environ: dict[str, Any]) -> Answer:
        token = bearer_from(environ.get("HTTP_AUTHORIZATION", ""))
        if token is None and self._access_cookie in environ.get("HTTP_COOKIE", ""):
            # The header arrives as latin-1 (PEP 3333); a byte that is not UTF-8, in any cookie of
            # the site, must not fail the gate: it becomes U+FFFD, which no token holds.
            cookie = environ["HTTP_COOKIE"].encode("latin-1").decode(errors="replace")
            token = parse_cookie(cookie).get(self._access_cookie)
        try:
            if not token:
                raise InvalidToken("Log in first.")
            principal = self._sessions.verify(token)
        except InvalidToken as error:
            return self._error("401 UNAUTHORIZED", error.code, error.message)
        except Exception as error:
            if database_unavailable(error):  # as on every endpoint (http.py); nginx makes it a 500 of its own
                log.warning("database unavailable on %s %s", environ.get("REQUEST_METHOD"), PATH)
                status, headers, body = self._error(
                    "503 SERVICE UNAVAILABLE", "database_unavailable", DATABASE_UNAVAILABLE
                )
                headers.append(("Retry-After", str(DATABASE_RETRY_AFTER_SECONDS)))
                return status, headers, body
            # Logged with its traceback for the operator, as Flask's handler does; nginx sees a 500.
            log.exception("unhandled error on %s %s", environ.get("REQUEST_METHOD"), PATH)
            return self._error("500 INTERNAL SERVER ERROR", "internal_error", "Internal server error.")
        headers = [
            ("X-Cypher-User", principal.username),
            ("X-Cypher-Session", principal.session_id),
            ("Cache-Control", "no-store"),
            ("Content-Length", "0"),
        ]
        return "200 OK", headers, b""

    def _error(self, status: str, code: str, message: str) -> Answer:
        body = (self._json.dumps({"error": message, "code": code}) + "\n").encode()
        headers = [
            ("Content-Type", "application/json"),
            ("Content-Length", str(len(body))),
            ("Cache-Control", "no-store"),
        ]
        return status, headers, body
