"""The HTTP conventions of API.md: JSON bodies, base64url fields, and the one error shape."""

from __future__ import annotations

import binascii
import io
import json
import logging
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from flask import Flask, Request, Response, current_app, request
from werkzeug.exceptions import HTTPException, MethodNotAllowed, TooManyRequests

from cypher import base64url
from cypher.services.errors import CypherError, InvalidMessage, InvalidRequest

log = logging.getLogger(__name__)

# A WSGI application, for the middleware at the edge (PEP 3333).
WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]

STATUS_BY_CODE: dict[str, int] = {
    "invalid_request": 400,
    "invalid_username": 400,
    "invalid_message": 400,
    "invalid_credentials": 401,
    "invalid_token": 401,
    "token_reused": 401,
    "invalid_totp": 401,
    "pass_auth_expired": 401,
    "account_pending": 403,
    "account_disabled": 403,
    "origin_rejected": 403,
    "not_found": 404,
    "username_taken": 409,
    "password_change_in_progress": 409,
    "too_many_attempts": 429,
    "registration_expired": 410,
    "login_expired": 410,
}


# Bodies exactly as jsonify writes them outside debug mode (compact, ASCII, keys in the order
# given, one newline), from one encoder made once: jsonify builds an encoder and parses its
# mimetype on every call, which cost a login about 30 us of its three responses (docs/performance.md).
_JSON_ENCODER = json.JSONEncoder(separators=(",", ":"))


def json_bytes(body: Mapping[str, Any]) -> bytes:
    """A JSON object as the API's response body."""
    return _JSON_ENCODER.encode(body).encode("ascii") + b"\n"


def json_response(body: Mapping[str, Any], status: int = 200) -> Response:
    """A JSON object as the API's response. Values are JSON's own types: a datetime is a TypeError."""
    return Response(json_bytes(body), status=status, content_type="application/json")


def error_json(code: str, message: str) -> bytes:
    """The API's error shape as a body."""
    return json_bytes({"error": message, "code": code})


def error_response(status: int, code: str, message: str) -> Response:
    return json_response({"error": message, "code": code}, status)


def json_body(req: Request) -> dict[str, Any]:
    """The request body as a JSON object, or InvalidRequest."""
    if not is_json_media_type(req.environ.get("CONTENT_TYPE", "")):
        raise InvalidRequest("Send a JSON object with Content-Type: application/json.")
    raw = _request_body(req)
    try:
        body = json.loads(raw)
    except (ValueError, RecursionError):  # RecursionError: absurdly nested arrays
        raise InvalidRequest("The body is not valid JSON.") from None
    if not isinstance(body, dict):
        raise InvalidRequest("The body must be a JSON object.")
    return body


def is_json_media_type(content_type: str) -> bool:
    """What werkzeug's Request.is_json says of this Content-Type: application/json or +json.

    Read from the environ (PEP 3333's CONTENT_TYPE) rather than through the request's headers
    and its full option parser, which cost about 3 us of every JSON request; the media type is
    all before the first ";" in any case (RFC 9110 section 8.3.1).
    """
    media_type = content_type.partition(";")[0].strip().lower()
    return media_type == "application/json" or (media_type.startswith("application/") and media_type.endswith("+json"))


def _request_body(req: Request) -> bytes:
    """The request body. One with a plain decimal Content-Length within MAX_CONTENT_LENGTH is
    read straight from the server's stream, exactly that many bytes as PEP 3333 allows; anything
    else (chunked, no length, too long, a malformed length) goes through werkzeug, which answers
    413 or reads a chunked body within the limit. werkzeug's stream wrapper and its header
    parsing cost about 25 us of every JSON request (docs/performance.md)."""
    environ = req.environ
    declared = environ.get("CONTENT_LENGTH", "")
    plain = "HTTP_TRANSFER_ENCODING" not in environ and declared.isascii() and declared.isdigit()
    if not plain or int(declared) > current_app.config["MAX_CONTENT_LENGTH"]:
        return req.get_data(cache=True)  # 413 from MAX_CONTENT_LENGTH happens here
    length = int(declared)
    chunks: list[bytes] = []
    received = 0
    try:
        while received < length:  # a server may hand the body over in parts
            chunk = environ["wsgi.input"].read(length - received)
            if not chunk:
                break
            chunks.append(chunk)
            received += len(chunk)
    except OSError:  # the client went away mid-body
        raise InvalidRequest("The body ended before its Content-Length.") from None
    if received != length:  # the client stopped early; werkzeug would refuse it too
        raise InvalidRequest("The body ended before its Content-Length.")
    body = b"".join(chunks)
    environ["wsgi.input"] = io.BytesIO(body)  # read again, by werkzeug or anyone, it is all there
    return body


def optional_json_body(req: Request) -> dict[str, Any]:
    """Like json_body, for endpoints whose every field may instead come from a header or cookie."""
    return json_body(req) if req.content_length else {}


def string_field(body: dict[str, Any], name: str, max_length: int) -> str:
    value = body.get(name)
    if not isinstance(value, str) or not value:
        raise InvalidRequest(f"{name} is required and must be a string.")
    if len(value) > max_length:
        raise InvalidRequest(f"{name} is too long.")
    if "\x00" in value:  # PostgreSQL refuses NUL in text; no field of ours can hold one
        raise InvalidRequest(f"{name} holds a NUL character.")
    return value


def optional_string_field(body: dict[str, Any], name: str, max_length: int) -> str | None:
    if body.get(name) is None:
        return None
    return string_field(body, name, max_length)


def base64url_field(body: dict[str, Any], name: str, decoded_length: int) -> bytes:
    """A field holding exactly decoded_length bytes as unpadded base64url; else InvalidMessage."""
    value = body.get(name)
    if not isinstance(value, str):
        raise InvalidRequest(f"{name} is required and must be a base64url string.")
    malformed = f"{name} must be {decoded_length} bytes as unpadded base64url."
    if len(value) != _base64url_length(decoded_length):
        raise InvalidMessage(malformed)
    try:
        decoded = base64url.decode(value)
    except binascii.Error:
        raise InvalidMessage(malformed) from None
    if base64url.encode(decoded) != value:  # non-canonical trailing bits
        raise InvalidMessage(f"{name} is not canonical base64url.")
    return decoded


def _base64url_length(byte_count: int) -> int:
    full, rest = divmod(byte_count, 3)
    return full * 4 + (rest + 1 if rest else 0)


def register_error_handlers(app: Flask) -> None:
    """Every error Flask's dispatch meets is answered by error_response_for, as the login routes' are
    (Flask finds a handler along the exception's classes, and every one is an Exception)."""
    app.register_error_handler(Exception, lambda error: error_response_for(error, request))


def error_response_for(error: Exception, req: Request) -> Response:
    """The API's answer to an exception raised while answering `req`.

    Call it from an except block: an unexpected error is logged with its traceback for the
    operator, and the client learns nothing about it.
    """
    if isinstance(error, CypherError):
        return error_response(STATUS_BY_CODE.get(error.code, 400), error.code, error.message)
    if isinstance(error, HTTPException):
        return _http_error_response(error)
    log.exception("unhandled error on %s %s", req.method, req.path)
    return error_response(500, "internal_error", "Internal server error.")


def _http_error_response(error: HTTPException) -> Response:
    status = error.code or 500
    code = {
        400: "invalid_request",
        404: "not_found",
        405: "method_not_allowed",
        413: "body_too_large",
        415: "unsupported_media_type",
        429: "rate_limited",
    }.get(status, "http_error")
    message = error.description or error.name
    if status == 413:
        message = f"The request body is larger than {current_app.config['MAX_CONTENT_LENGTH']} bytes."
    if status == 429:
        message = "Too many requests from this address. Try again later (see Retry-After)."
    response = error_response(status, code, message)
    if isinstance(error, MethodNotAllowed) and error.valid_methods:
        response.headers["Allow"] = ", ".join(error.valid_methods)
    if isinstance(error, TooManyRequests) and error.retry_after is not None:
        response.headers["Retry-After"] = str(error.retry_after)  # whole seconds (ratelimit.py)
    return response
