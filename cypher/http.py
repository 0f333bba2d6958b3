"""The HTTP conventions of API.md, on Flask's extension points: JSON bodies in and out, base64url
fields, and the one error shape."""

from __future__ import annotations

import binascii
import json
import logging
import sqlite3
from collections.abc import Callable, Iterable
from typing import IO, Any, Literal, NoReturn, cast, overload

from flask import Flask, Request, Response, current_app, jsonify, render_template, request
from flask.json.provider import DefaultJSONProvider
from flask.sansio.app import App
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from werkzeug.exceptions import HTTPException, MethodNotAllowed, RequestEntityTooLarge, SecurityError, TooManyRequests
from werkzeug.utils import cached_property
from werkzeug.wsgi import get_input_stream

from cypher import base64url
from cypher.services.errors import CypherError, InvalidMessage, InvalidRequest

log = logging.getLogger(__name__)

# A WSGI application, for the middleware at the edge (PEP 3333).
WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]
# A request or response body: a JSON object, its values whatever JSON holds.
JsonObject = dict[str, object]

# The API's code for each HTTP error werkzeug or Flask raises (routing, body size, rate limits).
HTTP_ERROR_CODES: dict[int, str] = {
    400: "invalid_request",
    404: "not_found",
    405: "method_not_allowed",
    413: "body_too_large",
    415: "unsupported_media_type",
    429: "rate_limited",
}
# A Host outside CYPHER_ALLOWED_HOSTS (werkzeug's SecurityError from Flask's TRUSTED_HOSTS check,
# and the gateway's own check): the name is not echoed back.
HOST_REFUSED_CODE = "invalid_host"
HOST_REFUSED_MESSAGE = "This server does not answer to the host name in the request (Host or X-Forwarded-Host)."

# When a client may try again after the database failed to answer: a restart or failover takes
# seconds, and SQLAlchemy's pool reconnects by itself once the database is back.
DATABASE_RETRY_AFTER_SECONDS = 5
DATABASE_UNAVAILABLE = "The database does not answer. Try again shortly (see Retry-After)."


# SQLite raises the same OperationalError for "no such table" (a bug: 500) as for a file it cannot
# open or write; these primary result codes are the database being unusable.
SQLITE_UNAVAILABLE = frozenset(
    {
        sqlite3.SQLITE_BUSY,
        sqlite3.SQLITE_LOCKED,
        sqlite3.SQLITE_READONLY,
        sqlite3.SQLITE_IOERR,
        sqlite3.SQLITE_FULL,
        sqlite3.SQLITE_CANTOPEN,
        sqlite3.SQLITE_PROTOCOL,
    }
)


def database_unavailable(error: BaseException) -> bool:
    """Whether `error` says the database could not be reached or used (down, restarting, a lost
    connection, a file that cannot be written, the pool exhausted), not that a statement is wrong."""
    if isinstance(error, PoolTimeout):
        return True
    if not isinstance(error, DBAPIError):
        return False
    if error.connection_invalidated:
        return True
    if not isinstance(error, OperationalError):
        return False
    sqlite_code: int | None = getattr(error.orig, "sqlite_errorcode", None)
    return sqlite_code is None or sqlite_code & 0xFF in SQLITE_UNAVAILABLE


def _not_json(value: object) -> NoReturn:
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


class ApiJSONProvider(DefaultJSONProvider):
    """JSON as the API writes and reads it.

    Bodies are compact ASCII with the keys in the order the view gave them and one newline, in debug
    mode too, so a client sees the same bytes from `flask run --debug` as from gunicorn. A value JSON
    has no type for (a datetime, say) is a TypeError: views format their own timestamps.
    """

    sort_keys = False
    compact = True
    default = staticmethod(_not_json)

    def __init__(self, app: App) -> None:
        super().__init__(app)
        # One encoder for every body; json.dumps would build one per call for these options.
        self._encoder = json.JSONEncoder(ensure_ascii=True, sort_keys=False, separators=(",", ":"))

    def dumps(self, obj: Any, **kwargs: Any) -> str:
        return super().dumps(obj, **kwargs) if kwargs else self._encoder.encode(obj)

    def loads(self, s: str | bytes, **kwargs: Any) -> Any:
        try:
            return super().loads(s, **kwargs)
        except RecursionError:  # absurdly nested arrays: as malformed as any other bad JSON
            raise ValueError("The JSON is nested too deeply.") from None

    def response(self, *args: Any, **kwargs: Any) -> Response:
        body = self._encoder.encode(self._prepare_response_obj(args, kwargs))
        # The provider knows the app as Flask's base App, whose response class werkzeug's typing names.
        return cast(Response, self._app.response_class(body + "\n", mimetype=self.mimetype))


class ApiRequest(Request):
    """Flask's request, holding every body to MAX_CONTENT_LENGTH however it arrives, and refusing
    a body that is not JSON with the API's own error."""

    @cached_property
    def stream(self) -> IO[bytes]:
        # Without a Content-Length (a chunked body) werkzeug stops reading at the limit and hands
        # over what it read, cut short; one byte more tells a body over the limit from one at it.
        limit = self.max_content_length
        return get_input_stream(self.environ, max_content_length=None if limit is None else limit + 1)

    @overload
    def get_data(self, cache: bool = ..., as_text: Literal[False] = ..., parse_form_data: bool = ...) -> bytes: ...

    @overload
    def get_data(self, cache: bool = ..., as_text: Literal[True] = ..., parse_form_data: bool = ...) -> str: ...

    def get_data(self, cache: bool = True, as_text: bool = False, parse_form_data: bool = False) -> bytes | str:
        data = super().get_data(cache=cache, as_text=False, parse_form_data=parse_form_data)
        limit = self.max_content_length
        if limit is not None and len(data) > limit:
            raise RequestEntityTooLarge()
        return data.decode(errors="replace") if as_text else data

    def on_json_loading_failed(self, e: ValueError | None) -> NoReturn:
        if e is None:  # not a JSON media type: 400 as for any malformed body, not werkzeug's 415
            raise InvalidRequest("Send a JSON object with Content-Type: application/json.")
        raise InvalidRequest("The body is not valid JSON.")


def json_body() -> JsonObject:
    """The request body as a JSON object, or InvalidRequest."""
    body = request.get_json()
    if not isinstance(body, dict):
        raise InvalidRequest("The body must be a JSON object.")
    return body


def optional_json_body() -> JsonObject:
    """Like json_body, for endpoints whose every field may instead come from a header or cookie:
    no body at all is an empty object."""
    return json_body() if request.get_data() else {}


def string_field(body: JsonObject, name: str, max_length: int) -> str:
    value = body.get(name)
    if not isinstance(value, str) or not value:
        raise InvalidRequest(f"{name} is required and must be a string.")
    if len(value) > max_length:
        raise InvalidRequest(f"{name} is too long.")
    if "\x00" in value:  # PostgreSQL refuses NUL in text; no field of ours can hold one
        raise InvalidRequest(f"{name} holds a NUL character.")
    return value


def optional_string_field(body: JsonObject, name: str, max_length: int) -> str | None:
    if body.get(name) is None:
        return None
    return string_field(body, name, max_length)


def base64url_field(body: JsonObject, name: str, decoded_length: int) -> bytes:
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


def error_response(status: int, code: str, message: str) -> Response:
    """The API's error shape."""
    response = jsonify({"error": message, "code": code})
    response.status_code = status
    return response


def database_unavailable_response() -> Response:
    response = error_response(503, "database_unavailable", DATABASE_UNAVAILABLE)
    response.headers["Retry-After"] = str(DATABASE_RETRY_AFTER_SECONDS)
    return response


def install_http_conventions(app: Flask) -> None:
    """The API's JSON, request bodies and error answers, on `app`."""
    app.json = ApiJSONProvider(app)
    app.request_class = ApiRequest
    app.register_error_handler(CypherError, _domain_error)
    app.register_error_handler(HTTPException, _http_error)
    app.register_error_handler(DBAPIError, _database_error)
    app.register_error_handler(PoolTimeout, _database_error)
    app.register_error_handler(Exception, _unexpected_error)


def _domain_error(error: CypherError) -> Response:
    response = error_response(error.status, error.code, error.message)
    if error.retry_after is not None:
        response.headers["Retry-After"] = str(error.retry_after)
    return response


def _http_error(error: HTTPException) -> Response:
    if isinstance(error, SecurityError):
        return error_response(400, HOST_REFUSED_CODE, HOST_REFUSED_MESSAGE)
    status = error.code or 500
    if status == 404 and _wants_a_page():
        return Response(render_template("not_found.html", path=request.path), status=404)
    message = error.description or error.name
    if status == 413:
        message = f"The request body is larger than {current_app.config['MAX_CONTENT_LENGTH']} bytes."
    if status == 429:
        message = "Too many requests from this address. Try again later (see Retry-After)."
    response = error_response(status, HTTP_ERROR_CODES.get(status, "http_error"), message)
    if isinstance(error, MethodNotAllowed) and error.valid_methods:
        response.headers["Allow"] = ", ".join(error.valid_methods)
    if isinstance(error, TooManyRequests) and error.retry_after is not None:
        response.headers["Retry-After"] = str(error.retry_after)  # whole seconds (ratelimit.py)
    return response


def _database_error(error: Exception) -> Response:
    if not database_unavailable(error):
        return _unexpected_error(error)
    # The DB-API error's class only: SQLAlchemy's text carries the statement and its parameters.
    cause = getattr(error, "orig", None) or error
    log.warning("database unavailable on %s %s: %s", request.method, request.path, type(cause).__name__)
    return database_unavailable_response()


def _wants_a_page() -> bool:
    """A browser navigating to a mistyped address gets a page; an API client (fetch sends */*)
    keeps the JSON error."""
    accept = request.accept_mimetypes
    return request.method == "GET" and accept.best_match(["application/json", "text/html"]) == "text/html"


def _unexpected_error(error: Exception) -> Response:
    # The operator's log keeps the cause with its traceback; the client learns nothing of it.
    log.error("unhandled error on %s %s", request.method, request.path, exc_info=error)
    return error_response(500, "internal_error", "Internal server error.")
