"""The security headers every response gets at the WSGI edge (cypher/security_headers.py)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask.testing import FlaskClient
from werkzeug.test import Client

from cypher.security_headers import CONTENT_SECURITY_POLICY, SecurityHeaders


def _app_answering(headers: list[tuple[str, str]]) -> Callable[..., list[bytes]]:
    def wsgi_app(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        start_response("200 OK", list(headers))
        return [b"ok"]

    return wsgi_app


def test_every_response_gets_them_and_html_gets_a_csp() -> None:
    plain = Client(SecurityHeaders(_app_answering([("Content-Type", "application/json")]), production=False)).get("/")
    assert plain.headers["X-Content-Type-Options"] == "nosniff"
    assert plain.headers["Referrer-Policy"] == "no-referrer"
    assert plain.headers["X-Frame-Options"] == "DENY"
    assert "Content-Security-Policy" not in plain.headers
    assert "Strict-Transport-Security" not in plain.headers
    page = Client(SecurityHeaders(_app_answering([("Content-Type", "text/html; charset=utf-8")]), False)).get("/")
    assert page.headers["Content-Security-Policy"] == CONTENT_SECURITY_POLICY


def test_production_adds_hsts() -> None:
    response = Client(SecurityHeaders(_app_answering([]), production=True)).get("/")
    assert response.headers["Strict-Transport-Security"].startswith("max-age=")


def test_a_header_the_view_set_is_left_as_it_is() -> None:
    own = [("Content-Type", "text/html"), ("x-frame-options", "SAMEORIGIN"), ("Content-Security-Policy", "x")]
    response = Client(SecurityHeaders(_app_answering(own), production=False)).get("/")
    assert response.headers.getlist("X-Frame-Options") == ["SAMEORIGIN"]
    assert response.headers.getlist("Content-Security-Policy") == ["x"]


def test_the_application_sends_them(client: FlaskClient) -> None:
    page = client.get("/login")
    assert page.headers["Content-Security-Policy"] == CONTENT_SECURITY_POLICY
    assert page.headers["X-Frame-Options"] == "DENY"
    error = client.get("/no/such/page")
    assert error.status_code == 404 and error.headers["X-Content-Type-Options"] == "nosniff"
