"""Who is calling: tokens from the Authorization header, the body or cookies; session cookies;
and the Origin check that keeps cookie-authenticated state changes from other sites out (CSRF)."""

from __future__ import annotations

import re

from flask import Response, current_app, jsonify, request

from cypher.cookies import Cookie, SessionCookies
from cypher.http import JsonObject
from cypher.services.client_info import ClientInfo
from cypher.services.errors import InvalidToken, OriginRejected
from cypher.services.sessions import Principal, SessionTokens
from cypher.wiring import services

COOKIES_EXTENSION = "cypher.cookies"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
# What a cookie of ours may hold: a PASETO token (base64url parts and dots), or nothing.
COOKIE_VALUE = re.compile(r"[A-Za-z0-9_.-]*")


def session_cookies() -> SessionCookies:
    """This application's cookies, as create_app named them."""
    cookies: SessionCookies = current_app.extensions[COOKIES_EXTENSION]
    return cookies


def client_info() -> ClientInfo:
    return ClientInfo(ip=request.remote_addr, user_agent=request.headers.get("User-Agent"))


def bearer_from(authorization: str) -> str | None:
    """The token of an `Authorization: Bearer <token>` header's value, or None."""
    scheme, _, token = authorization.partition(" ")
    return token.strip() or None if scheme.lower() == "bearer" else None


def bearer_token() -> str | None:
    return bearer_from(request.headers.get("Authorization", ""))


def check_origin() -> None:
    """Refuse a cookie-authenticated state change unless its Origin is Cypher's own or allowed.

    Browsers send Origin with every POST and DELETE; SameSite=Strict cookies already stay home,
    and this is the second lock on the door.
    """
    if request.method in SAFE_METHODS:
        return
    origin = request.headers.get("Origin", "").rstrip("/")
    own_origin = request.host_url.rstrip("/")  # as the client reached us (behind a trusted proxy too)
    if not origin or (origin != own_origin and origin not in current_app.config["ALLOWED_ORIGINS"]):
        raise OriginRejected()


def token_from(body: JsonObject | None, field: str | None, cookie: Cookie, *, changes_state: bool = True) -> str | None:
    """A token from the Authorization header, a body field, or a cookie.

    A cookie is sent by the browser on its own, so when the request changes state the Origin
    must be checked before the cookie's token is used.
    """
    token = bearer_token()
    if token is None and body is not None and field is not None:
        value = body.get(field)
        token = value if isinstance(value, str) and value else None
    if token is None and cookie.name in request.cookies:
        if changes_state:
            check_origin()
        token = request.cookies[cookie.name]
    return token


def current_principal() -> Principal:
    """The caller's live session, from the bearer token or the access cookie."""
    token = token_from(None, None, session_cookies().access)
    if token is None:
        raise InvalidToken("Log in first.")
    return services().sessions.verify(token)


def set_token_cookie(response: Response, cookie: Cookie, token: str, max_age: int) -> None:
    """Set one of our cookies: HttpOnly, SameSite=Strict, with its name, path, domain and Secure."""
    if not COOKIE_VALUE.fullmatch(token):  # a token never needs quoting; anything else is a bug
        raise ValueError(f"the {cookie.name} cookie holds a token: base64url characters and dots only")
    response.set_cookie(
        cookie.name,
        token,
        max_age=max_age,
        path=cookie.path,
        domain=cookie.domain,
        secure=cookie.secure,
        httponly=True,
        samesite="Strict",
    )


def set_pass_auth_cookie(response: Response, token: str, max_age: int) -> None:
    set_token_cookie(response, session_cookies().pass_auth, token, max_age)


def clear_cookie(response: Response, cookie: Cookie) -> None:
    response.delete_cookie(
        cookie.name, path=cookie.path, domain=cookie.domain, secure=cookie.secure, httponly=True, samesite="Strict"
    )


def session_response(tokens: SessionTokens, extra: JsonObject | None = None) -> Response:
    """The API's token answer (with `extra` fields), both tokens also set as HttpOnly cookies."""
    response = jsonify(
        {
            **(extra or {}),
            "username": tokens.username,
            "accessToken": tokens.access.token,
            "refreshToken": tokens.refresh.token,
            "tokenType": "Bearer",
            "expiresIn": tokens.access.lifetime_seconds,
            "refreshExpiresIn": tokens.refresh.lifetime_seconds,
        }
    )
    cookies = session_cookies()
    set_token_cookie(response, cookies.access, tokens.access.token, tokens.access.lifetime_seconds)
    set_token_cookie(response, cookies.refresh, tokens.refresh.token, tokens.refresh.lifetime_seconds)
    response.headers["Cache-Control"] = "no-store"
    return response


def ended_session_response(body: JsonObject | None, status: int = 200) -> Response:
    """A response that clears the session cookies; with a JSON body, or empty."""
    response = jsonify(body) if body is not None else Response()
    response.status_code = status
    cookies = session_cookies()
    clear_cookie(response, cookies.access)
    clear_cookie(response, cookies.refresh)
    return response
