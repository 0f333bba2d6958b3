"""Chunked request bodies (Transfer-Encoding: chunked, no Content-Length) over a real socket, to
the development server and to gunicorn: read like any other body, and held to the same limit
(CYPHER_MAX_BODY_BYTES, 64 KiB) rather than cut at it."""

from __future__ import annotations

import http.client
import json
import socket
from pathlib import Path

import pytest
from flask import Flask

from tests.gunicorn_server import gunicorn
from tests.live_server import LiveServer
from tests.opaque_client import b64, start_registration

pytestmark = pytest.mark.slow

CHUNK_BYTES = 8192
OVER_THE_LIMIT = 80 * 1024


def post_chunked(port: int, path: str, body: bytes) -> tuple[int, dict[str, object]]:
    """POST `body` in chunks of CHUNK_BYTES on a connection of its own; the status and JSON answer."""
    with socket.create_connection(("127.0.0.1", port), timeout=30) as connection:
        head = (
            f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\n"
            "Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
        )
        connection.sendall(head.encode("ascii"))
        try:
            for start in range(0, len(body), CHUNK_BYTES):
                chunk = body[start : start + CHUNK_BYTES]
                connection.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            connection.sendall(b"0\r\n\r\n")
        except (BrokenPipeError, ConnectionResetError):
            pass  # a server may answer and stop reading before the body ends; its answer is read below
        response = http.client.HTTPResponse(connection)
        response.begin()
        return response.status, json.loads(response.read())


def _registration_init(username: str, padding: int = 0) -> bytes:
    body = {"username": username, "registrationRequest": b64(start_registration("a long passphrase").request)}
    return json.dumps(body).encode() + b" " * padding


def _check_chunked_bodies(port: int) -> None:
    status, answer = post_chunked(port, "/register/init", _registration_init("chunky"))
    assert status == 200, answer
    assert answer["username"] == "chunky" and isinstance(answer["registrationResponse"], str)

    status, answer = post_chunked(port, "/api/verify-access", b'{"accessToken": "not.a.token"}')
    assert (status, answer["code"]) == (401, "invalid_token")
    assert answer["error"] != "Send an access token."  # the token in the body was read, and refused

    status, answer = post_chunked(port, "/register/init", _registration_init("too.big", padding=OVER_THE_LIMIT))
    assert (status, answer["code"]) == (413, "body_too_large")
    status, answer = post_chunked(port, "/api/verify-access", b'{"accessToken": "x"}' + b" " * OVER_THE_LIMIT)
    assert (status, answer["code"]) == (413, "body_too_large")  # a body that may be left out is limited too

    # The refused name was never read: it can be registered.
    status, answer = post_chunked(port, "/register/init", _registration_init("too.big"))
    assert status == 200, answer


def test_the_development_server_reads_and_limits_chunked_bodies(app: Flask) -> None:
    with LiveServer(app) as server:
        _check_chunked_bodies(server.port)


def test_gunicorn_reads_and_limits_chunked_bodies(tmp_path: Path) -> None:
    with gunicorn(tmp_path, {}, workers=1) as server:
        _check_chunked_bodies(server.port)
