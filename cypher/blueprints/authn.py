"""Who is calling: tokens from the Authorization header, the body or cookies; session cookies;
and the Origin check that keeps cookie-authenticated state changes from other sites out (CSRF)."""

from __future__ import annotations

import re
from typing import Any

from flask import Request, Response, current_app

from cypher.http import json_response
from cypher.services.errors import InvalidToken, OriginRejected
from cypher.services.sessions import ClientInfo, Principal, SessionTokens
from cypher.wiring import services

ACCESS_COOKIE = "cypher_access"
REFRESH_COOKIE = "cypher_refresh"
PASS_AUTH_COOKIE = "cypher_pass_auth"
REFRESH_PATH = "/api/refresh-token"
PASS_AUTH_PATH = "/totp"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
# What a cookie of ours may hold: a PASETO token (base64url parts and dots), or nothing.
COOKIE_VALUE = re.compile(r"[A-Za-z0-9_.-]*")


# The request is passed in, not read from Flask's context, because the login routes answer
# without one (login_routes.py). Headers are read from the WSGI environ, as PEP 3333 names them:
# the same strings req.headers gives, without building its header view (docs/performance.md).
def client_info(req: Request) -> ClientInfo:
    return ClientInfo(ip=req.remote_addr, user_agent=req.environ.get("HTTP_USER_AGENT"))


def bearer_from(authorization: str) -> str | None:
    """The token of an `Authorization: Bearer <token>` header's value, or None."""
    scheme, _, token = authorization.partition(" ")
    return token.strip() or None if scheme.lower() == "bearer" else None


def bearer_token(req: Request) -> str | None:
    return bearer_from(req.environ.get("HTTP_AUTHORIZATION", ""))


def check_origin(req: Request) -> None:
    """Refuse a cookie-authenticated state change unless its Origin is Cypher's own or allowed.

    Browsers send Origin with every POST and DELETE; SameSite=Strict cookies already stay home,
    and this is the second lock on the door.
    """
    if req.method in SAFE_METHODS:
        return
    origin = req.headers.get("Origin", "").rstrip("/")
    if not origin or (origin != own_origin(req) and origin not in current_app.config["ALLOWED_ORIGINS"]):
        raise OriginRejected()


def own_origin(req: Request) -> str:
    """Cypher's own origin as this request reached it (behind a trusted proxy, as the client did)."""
    return req.host_url.rstrip("/")


def token_from(
    req: Request, body: dict[str, Any] | None, field: str | None, cookie: str, *, changes_state: bool = True
) -> str | None:
    """A token from the Authorization header, a body field, or a cookie.

    A cookie is sent by the browser on its own, so when the request changes state the Origin
    must be checked before the cookie's token is used.
    """
    token = bearer_token(req)
    if token is None and body is not None and field is not None:
        value = body.get(field)
        token = value if isinstance(value, str) and value else None
    if token is None and cookie in req.cookies:
        if changes_state:
            check_origin(req)
        token = req.cookies[cookie]
    return token


def current_principal(req: Request) -> Principal:
    """The caller's live session, from the bearer token or the access cookie."""
    token = token_from(req, None, None, ACCESS_COOKIE)
    if token is None:
        raise InvalidToken("Log in first.")
    return services().sessions.verify(token)


def _cookie(response: Response, name: str, value: str, max_age: int, path: str) -> None:
    """Set one of our cookies: HttpOnly, SameSite=Strict, Secure when configured, Max-Age alone.

    Max-Age alone (0 deletes): every browser honours it, and an Expires twin would be an HTTP date
    computed for each of a login's four cookies. Written here rather than by werkzeug's
    dump_cookie, whose general quoting and attribute handling cost a login about 20 us
    (docs/performance.md): every part but the value is our constant, and the value must be a
    token, so it never needs quoting and can never end the cookie or add an attribute.
    """
    if not COOKIE_VALUE.fullmatch(value):
        raise ValueError(f"the {name} cookie holds a token: base64url characters and dots only")
    secure = "; Secure" if current_app.config["COOKIE_SECURE"] else ""
    response.headers.add(
        "Set-Cookie", f"{name}={value}; Path={path}; Max-Age={max_age}; HttpOnly; SameSite=Strict{secure}"
    )


def set_pass_auth_cookie(response: Response, token: str, max_age: int) -> None:
    _cookie(response, PASS_AUTH_COOKIE, token, max_age, PASS_AUTH_PATH)


def clear_cookie(response: Response, name: str) -> None:
    path = {REFRESH_COOKIE: REFRESH_PATH, PASS_AUTH_COOKIE: PASS_AUTH_PATH}.get(name, "/")
    _cookie(response, name, "", 0, path)


def session_response(tokens: SessionTokens) -> Response:
    """The API's token answer, with both tokens also set as HttpOnly cookies."""
    response = json_response(
        {
            "username": tokens.username,
            "accessToken": tokens.access.token,
            "refreshToken": tokens.refresh.token,
            "tokenType": "Bearer",
            "expiresIn": tokens.access.lifetime_seconds,
            "refreshExpiresIn": tokens.refresh.lifetime_seconds,
        }
    )
    _cookie(response, ACCESS_COOKIE, tokens.access.token, tokens.access.lifetime_seconds, "/")
    _cookie(response, REFRESH_COOKIE, tokens.refresh.token, tokens.refresh.lifetime_seconds, REFRESH_PATH)
    response.headers["Cache-Control"] = "no-store"
    return response


def ended_session_response(body: dict[str, Any] | None) -> Response:
    """A response that clears the session cookies; with a JSON body, or empty."""
    response = json_response(body) if body is not None else Response()
    clear_cookie(response, ACCESS_COOKIE)
    clear_cookie(response, REFRESH_COOKIE)
    return response
