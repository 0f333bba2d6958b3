"""A user's whole journey through the HTTP API, for tests (flaskr's AuthActions, grown up):
OPAQUE registration, TOTP enrolment with codes from pyotp at the test clock's time, login."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pyotp
from flask.testing import FlaskClient

from cypher.services.clock import ManualClock
from tests.opaque_client import OpaqueActions

ORIGIN = "http://localhost"  # the test client's own origin


@dataclass
class Enrolled:
    username: str
    password: str
    secret: str
    recovery_codes: list[str]


class AuthActions:
    def __init__(self, client: FlaskClient, clock: ManualClock) -> None:
        self.client = client
        self.clock = clock
        self.opaque = OpaqueActions(client)

    def code(self, secret: str) -> str:
        """The current TOTP code; moves the clock to a fresh step first, since a step works once."""
        self.clock.advance(30)
        return pyotp.TOTP(secret).at(self.clock())

    def enrol(self, username: str, password: str) -> Enrolled:
        """Register with OPAQUE and complete TOTP enrolment: an active account."""
        finished = self.opaque.register(username, password)
        assert finished.status_code == 201, finished.get_json()
        body = finished.get_json()
        bearer = {"Authorization": f"Bearer {body['enrollmentToken']}"}
        setup = self.client.post("/totp/setup", json={}, headers=bearer)
        assert setup.status_code == 200, setup.get_json()
        secret = setup.get_json()["secret"]
        verified = self.client.post("/totp/verify-setup", json={"code": self.code(secret)}, headers=bearer)
        assert verified.status_code == 200, verified.get_json()
        # Enrolment opened a session; log it out, so that a test counts only the sessions it opens.
        enrolled = {"Authorization": f"Bearer {verified.get_json()['accessToken']}"}
        assert self.client.post("/api/logout", json={}, headers=enrolled).status_code == 200
        return Enrolled(body["username"], password, secret, verified.get_json()["recoveryCodes"])

    def pass_auth(self, user: Enrolled) -> str:
        response = self.opaque.login(user.username, user.password)
        assert response is not None and response.status_code == 200, response and response.get_json()
        return str(response.get_json()["passAuthToken"])

    def login(self, user: Enrolled, **second_factor: str) -> Any:
        """Password step, then TOTP (or the given recoveryCode); returns the verify-login response."""
        body = {"passAuthToken": self.pass_auth(user), **(second_factor or {"code": self.code(user.secret)})}
        return self.client.post("/totp/verify-login", json=body)

    def session(self, user: Enrolled) -> dict[str, Any]:
        """Log in and return the token body (the client's cookies now hold the session too)."""
        response = self.login(user)
        assert response.status_code == 200, response.get_json()
        return dict(response.get_json())
