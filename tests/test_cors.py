"""CORS answers only CYPHER_ALLOWED_ORIGINS, with credentials; the Origin check accepts them too."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient

from cypher.config import ConfigError, load_config
from cypher.services.clock import ManualClock
from tests.auth_actions import AuthActions
from tests.conftest import PARTNER
from tests.test_opaque_api import _error

OWN_ORIGIN = "http://localhost"  # the test client's host


def _preflight(client: FlaskClient, origin: str) -> dict[str, str]:
    response = client.options("/api/logout", headers={"Origin": origin, "Access-Control-Request-Method": "POST"})
    return dict(response.headers)


def test_only_listed_origins_get_cors_with_credentials(partner_app: Flask, client: FlaskClient) -> None:
    allowed = _preflight(partner_app.test_client(), PARTNER)
    assert allowed["Access-Control-Allow-Origin"] == PARTNER
    assert allowed["Access-Control-Allow-Credentials"] == "true"
    assert "Access-Control-Allow-Origin" not in _preflight(partner_app.test_client(), "https://evil.example")
    # With no origins configured (the default app), nobody gets CORS at all.
    assert "Access-Control-Allow-Origin" not in _preflight(client, PARTNER)


def test_a_listed_origin_passes_the_origin_check(partner_app: Flask, clock: ManualClock) -> None:
    client = partner_app.test_client()
    actions = AuthActions(client, clock)
    actions.session(actions.enrol("carol", "a long enough passphrase"))
    _error(client.post("/api/logout", headers={"Origin": "https://evil.example"}), 403, "origin_rejected")
    assert client.post("/api/logout", headers={"Origin": PARTNER}).status_code == 200


def test_a_request_without_an_origin_gets_no_cors_headers(partner_app: Flask) -> None:
    # flask-cors would otherwise list every allowed origin to any client; only CORS requests carry Origin.
    response = partner_app.test_client().post("/api/logout")
    assert not any(name.startswith("Access-Control-") for name in response.headers.keys())


@pytest.mark.parametrize(
    ("raw", "complaint"),
    [
        ("https://app.example.com/login", "is not an origin"),
        ("ftp://app.example.com", "is not an origin"),
        ("https://*.example.com", "without patterns"),  # flask-cors would match it as a regex, at the start only
        ("https://app.example.com$", "without patterns"),
        ("https://[::1]:8443", "without patterns"),
    ],
)
def test_allowed_origins_are_exact_origins(tmp_path: Path, raw: str, complaint: str) -> None:
    with pytest.raises(ConfigError, match=complaint):
        load_config(tmp_path, {"CYPHER_ALLOWED_ORIGINS": f"https://ok.example.com, {raw}"})
    listed = load_config(tmp_path, {"CYPHER_ALLOWED_ORIGINS": "https://app.example.com/, http://localhost:5000"})
    assert listed["ALLOWED_ORIGINS"] == ["https://app.example.com", "http://localhost:5000"]


@pytest.mark.parametrize("origin", [PARTNER, OWN_ORIGIN])
def test_the_login_gets_cors_for_listed_origins(make_app: Callable[..., Flask], origin: str) -> None:
    """The login's POSTs answer CORS like every endpoint, Cypher's own origin included when it is
    listed (production lists it)."""
    app = make_app(ALLOWED_ORIGINS=[OWN_ORIGIN, PARTNER])
    response = app.test_client().post(
        "/login/init", json={"username": "alice", "startLoginRequest": "x"}, headers={"Origin": origin}
    )
    _error(response, 400, "invalid_message")
    assert response.headers["Access-Control-Allow-Origin"] == origin
    assert response.headers["Access-Control-Allow-Credentials"] == "true"
    assert "Origin" in response.headers["Vary"]
